#!/bin/bash -eu
# SPDX-License-Identifier: Apache-2.0
#
# Builds the fuzz target tests-c/fuzz/fuzz_abi.c for a distributed fuzzing
# engine: OSS-Fuzz (projects/svakit/build.sh runs it) and ClusterFuzzLite
# (.clusterfuzzlite/build.sh runs it). It follows their contract:
#
#   $CC, $CXX, $CFLAGS, $CXXFLAGS   the engine's compilers and flags (its
#                                   sanitizer and -fsanitize=fuzzer-no-link)
#   $LIB_FUZZING_ENGINE             what links the fuzzing engine (libFuzzer:
#                                   -fsanitize=fuzzer)
#   $SANITIZER                      address (default), undefined or coverage:
#                                   how the Swift engine is built beside it
#   $OUT                            where the target and its files go
#   $WORK                           scratch space (default /tmp)
#
# and writes $OUT/fuzz_abi (the Swift runtime linked statically: the bots
# have no toolchain), $OUT/fuzz_abi_seed_corpus.zip (tests-c/fuzz/corpus
# and the crash reproducers, tests-c/fuzz/crashes) and
# $OUT/fuzz_abi.options. The engine itself, libsvakit.a, is built with
# CMake and the Swift compiler on PATH (SWIFTC overrides), its Swift
# instrumented for the engine's coverage as the C is for the harness.
#
# scripts/fuzz.sh runs this script with these variables set as OSS-Fuzz
# sets them, then the target, on every test run (docs/TESTING.md, "Fuzzing").
src=$(cd "$(dirname "$0")/../../.." && pwd)
work=${WORK:-/tmp}/svakit-fuzz
swiftc=${SWIFTC:-$(command -v swiftc)}
: "${CC:?}" "${CXX:?}" "${OUT:?}" "${LIB_FUZZING_ENGINE:?}"
CFLAGS=${CFLAGS:-}
CXXFLAGS=${CXXFLAGS:-}

# The Swift engine's instrumentation. Swift has no UBSan (its own checks
# trap), so `undefined` gets coverage only.
cov="-sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp"
case "${SANITIZER:-address}" in
address) sflags="-sanitize=address $cov" ;;
coverage) sflags="-profile-generate -profile-coverage-mapping" ;;
*) sflags="$cov" ;;
esac

mkdir -p "$work" "$OUT"
# The Swift driver's incremental build does not notice new flags.
if [ "$(cat "$work/.swift-flags" 2>/dev/null)" != "$sflags $CC $CFLAGS" ]; then
  rm -rf "$work/lib"
  printf '%s' "$sflags $CC $CFLAGS" >"$work/.swift-flags"
fi
cmake -S "$src" -B "$work/lib" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSVAKIT_BUILD_TESTS=OFF \
  -DCMAKE_C_COMPILER="$CC" "-DCMAKE_C_FLAGS=$CFLAGS" -DCMAKE_Swift_COMPILER="$swiftc" \
  "-DCMAKE_Swift_FLAGS=$sflags" >/dev/null
ninja -C "$work/lib" svakit | tail -1

# The static Swift runtime: what -static-stdlib links (static-stdlib-args.lnk).
resource=$("$swiftc" -print-target-info | sed -n 's/.*"runtimeResourcePath": *"\([^"]*\)".*/\1/p' | head -1)
static=$(dirname "$resource")/swift_static/linux
# shellcheck disable=SC2086
$CC $CFLAGS -std=gnu11 -I"$src/include" -c "$src/tests-c/fuzz/fuzz_abi.c" -o "$work/fuzz_abi.o"
# shellcheck disable=SC2086
$CXX $CXXFLAGS "$work/fuzz_abi.o" "$work/lib/libsvakit.a" "$static/x86_64/swiftrt.o" \
  -L"$static" -lswiftSynchronization -lswiftCore -lstdc++ -ldl -lpthread -lm \
  $LIB_FUZZING_ENGINE -o "$OUT/fuzz_abi"

# The seed corpus and the reproducers of every crash class found so far.
python3 - "$OUT/fuzz_abi_seed_corpus.zip" "$src/tests-c/fuzz/corpus" "$src/tests-c/fuzz/crashes" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for d in sys.argv[2:]:
        for name in sorted(os.listdir(d)):
            z.write(os.path.join(d, name), os.path.basename(d) + "-" + name)
PY
cat >"$OUT/fuzz_abi.options" <<'OPT'
[libfuzzer]
max_len = 768
OPT
echo "fuzz_abi: built $OUT/fuzz_abi, $OUT/fuzz_abi_seed_corpus.zip, $OUT/fuzz_abi.options"
