#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/kernel-source.sh DEST: puts the Linux files the differential tests
# compile (tests-c/kernel/, docs/TESTING.md "Against Linux's own code") under
# DEST/linux-source-6.12, extracted from Debian's linux-source-6.12 package
# (the 6.12.118 tree as /usr/src/linux-source-6.12.tar.xz), which it installs
# when missing. Only the paths that tests-c/kernel/*/FILES list are extracted;
# no kernel file is ever committed to this repository. Idempotent: a stamp
# records the list it extracted.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: scripts/kernel-source.sh DEST}
tarball=/usr/src/linux-source-6.12.tar.xz
# The docs restate 6.12.118: ask for exactly that package, and say so loudly
# when the mirror only has another (the tests then run against it).
want=6.12.118-1~deb12u1
if [ ! -f "$tarball" ]; then
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "linux-source-6.12=$want" \
    || $sudo apt-get install -y -q --no-install-recommends linux-source-6.12
fi
have=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo unknown)
if [ "$have" != "$want" ]; then
  echo "kernel-source: WARNING: linux-source-6.12 is $have, not $want (docs/KERNEL-MODEL.md cites $want)" >&2
fi
shopt -s nullglob
lists=(tests-c/kernel/*/FILES)
files=$( ( [ ${#lists[@]} -eq 0 ] || cat "${lists[@]}" ) | sed -e 's/#.*//' -e '/^[[:space:]]*$/d' | sort -u)
stampText=$(printf 'linux-source-6.12 %s\n%s' "$have" "$files")
stamp="$dest/linux-source-6.12/.svakit-files"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stampText" ]; then exit 0; fi
rm -rf "$dest/linux-source-6.12"
mkdir -p "$dest"
mkdir -p "$dest/linux-source-6.12"
if [ -n "$files" ]; then
  # shellcheck disable=SC2046
  tar -xJf "$tarball" -C "$dest" $(printf 'linux-source-6.12/%s\n' $files)
fi
printf '%s' "$stampText" > "$stamp"
echo "kernel-source: $(printf "%s\n" $files | grep -c .) paths of linux-source-6.12 $have under $dest"
