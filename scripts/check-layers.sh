#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The layers' direction, enforced by the compiler: for each layer target, a
# file that names a type of a layer above it (or beside it: DMA never sees
# SVA) must fail to build, with the compiler's "cannot find ... in scope".
# Each probe is added to the layer's folder, built with `swift build
# --target`, and removed (also on failure or interrupt).
set -euo pipefail
cd "$(dirname "$0")/.."

probes=(
  # layer          a name from above it
  "SVAKitBase      FrameMemory"
  "SVAKitMemory    IOMMUCore"
  "SVAKitIOMMU     SVARegistry"
  "SVAKitIOMMU     DMADomains"
  "SVAKitDMA       SVARegistry"
  "SVAKitSVA       DMADomains"
  "SVAKitDMA       Machine"
  "SVAKitExplorer  FrameMemory"
)
probe=
# (An `if`, not `&&`: an EXIT trap's last status becomes the script's.)
cleanup() { if [ -n "$probe" ]; then rm -f "$probe"; fi; }
trap cleanup EXIT INT TERM

failures=0
for p in "${probes[@]}"; do
  read -r layer name <<<"$p"
  probe="Sources/$layer/UpwardProbe.swift"
  printf 'func upwardProbe() { _ = %s.self }\n' "$name" >"$probe"
  # The same traits as test.sh's build, so only the probed target rebuilds.
  if out=$(swift build --enable-all-traits --target "$layer" 2>&1); then
    echo "FAIL: $layer builds with a reference to $name"
    failures=$((failures + 1))
  elif grep -q "cannot find '$name' in scope" <<<"$out"; then
    echo "ok: $layer cannot see $name"
  else
    echo "FAIL: $layer failed to build for another reason:"; echo "$out" | grep error: | head -5
    failures=$((failures + 1))
  fi
  rm -f "$probe"; probe=
done
if [ "$failures" -ne 0 ]; then exit 1; fi
exit 0
