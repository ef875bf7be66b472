#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Line coverage of Sources/SVAKit from every suite together:
#   1. swift test --enable-code-coverage (the Swift Testing suites);
#   2. the cmocka suites (ctest), run against a libsvakit.a built by CMake
#      from the same sources with Swift -profile-generate
#      -profile-coverage-mapping and C -fprofile-instr-generate
#      -fcoverage-mapping (the toolchain's clang, whose profile runtime
#      matches the Swift compiler's);
#   3. a replay of the fuzz inputs (tests-c/fuzz/corpus and crashes, plus
#      .build-ci/fuzz/corpus when a fuzz run left one), through
#      tests-c/fuzz/fuzz_abi.c linked against that library.
# Each build's line records are exported (llvm-cov export -format=lcov: the
# SwiftPM test binary with its profile; the cmocka suites and the fuzz
# replay, which share one libsvakit.a, together with their merged profile,
# llvm-profdata merge) and their union is reported per file, for
# Sources/SVAKit and without Sources/SVAKit/ABI. (One llvm-cov report over
# both builds' binaries does not merge them: a function compiled into both
# keeps one build's record, so the other build's counts for it are lost;
# ABI/Handle.swift then shows 22% where the C suites alone cover all of it.)
# Build trees go to .build-cov/ (ignored by git).
#
#   scripts/coverage.sh                   # the report (.build-cov/report.txt)
#   COVERAGE_SHOW=1 scripts/coverage.sh   # and the uncovered lines with their
#                                         # text (.build-cov/uncovered.txt)
#   COVERAGE_FUZZ=0 scripts/coverage.sh   # without the fuzz replay
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.build-cov
bin=${LLVM_BIN:-/opt/swift/usr/bin}
clang=$bin/clang
swiftc=$bin/swiftc
prof=$out/profiles

step() { printf '==> %s\n' "$*"; }

rm -rf "$prof"
mkdir -p "$prof"

step "swift test --enable-code-coverage"
# SwiftPM (6.x) fails a second coverage run in the same scratch path with
# "unknown build description"; without its build database it builds again
# (incrementally).
rm -f "$out/swift/build.db" "$out/swift/debug.yaml"
swift test --enable-code-coverage --scratch-path "$out/swift" >"$out/swift-test.log" 2>&1 ||
  { tail -20 "$out/swift-test.log" >&2; exit 1; }
swift_bin=$out/swift/debug/SVAKitPackageTests.xctest
cp "$out/swift/debug/codecov/default.profdata" "$prof/swift.profdata"

step "cmake: libsvakit.a and the cmocka suites, instrumented"
cmake -S . -B "$out/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER="$clang" -DCMAKE_Swift_COMPILER="$swiftc" \
  "-DCMAKE_Swift_FLAGS=-profile-generate -profile-coverage-mapping" \
  "-DCMAKE_C_FLAGS=-fprofile-instr-generate -fcoverage-mapping" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fprofile-instr-generate" >/dev/null
ninja -C "$out/cmake" -j 2 >"$out/cmake-build.log" 2>&1 || { tail -20 "$out/cmake-build.log" >&2; exit 1; }

step "ctest (one profile per process)"
(cd "$out/cmake" && LLVM_PROFILE_FILE="$prof/ctest-%p.profraw" ctest --output-on-failure >"$out/ctest.log" 2>&1) ||
  { tail -30 "$out/ctest.log" >&2; exit 1; }
cbins=()
for t in "$out"/cmake/tests-c/test_*; do
  [ -x "$t" ] && cbins+=("$t")
done

if [ "${COVERAGE_FUZZ:-1}" != 0 ]; then
  # What a C program links beside the archive (as scripts/fuzz.sh does).
  info=$("$swiftc" -print-target-info)
  resource=$(printf '%s' "$info" | sed -n 's/.*"runtimeResourcePath": *"\([^"]*\)".*/\1/p' | head -1)
  triple=$(printf '%s' "$info" | sed -n 's/.*"triple": *"\([^"]*\)".*/\1/p' | head -1)
  rtdir=$resource/linux
  step "fuzz inputs replayed against the instrumented library"
  "$clang" -g -O1 -std=gnu11 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -fuse-ld=lld \
    -Iinclude tests-c/fuzz/fuzz_abi.c "$out/cmake/libsvakit.a" "$rtdir/${triple%%-*}/swiftrt.o" \
    -L"$rtdir" -lswiftSynchronization -lswiftCore -lm -Wl,-rpath,"$rtdir" -o "$out/fuzz_abi"
  dirs=(tests-c/fuzz/corpus tests-c/fuzz/crashes)
  [ -d .build-ci/fuzz/corpus ] && dirs+=(.build-ci/fuzz/corpus)
  n=$(find "${dirs[@]}" -type f | wc -l)
  echo "    $n inputs from ${dirs[*]}"
  SWIFT_BACKTRACE=enable=no LLVM_PROFILE_FILE="$prof/fuzz-%p.profraw" \
    "$out/fuzz_abi" -runs=0 "${dirs[@]}" >"$out/fuzz-replay.log" 2>&1 ||
    { tail -20 "$out/fuzz-replay.log" >&2; exit 1; }
  cbins+=("$out/fuzz_abi")
fi

step "merging"
# The CMake build's processes into one profile; then each build's line
# records (lcov), with its own binaries and profile.
"$bin/llvm-profdata" merge -sparse "$prof"/*.profraw -o "$out/cmake.profdata"
"$bin/llvm-cov" export -format=lcov "$swift_bin" -instr-profile "$prof/swift.profdata" \
  "$root/Sources/SVAKit" >"$out/swift.lcov"
cobjects=("${cbins[0]}")
for b in "${cbins[@]:1}"; do cobjects+=(-object "$b"); done
"$bin/llvm-cov" export -format=lcov "${cobjects[@]}" -instr-profile "$out/cmake.profdata" \
  "$root/Sources/SVAKit" >"$out/cmake.lcov"

# The union: a line is counted when either build has a record for it, and
# covered when either build's runs executed it. (Per line, once: lcov's
# LF/LH summaries count a line once per function that spans it.)
union='
  /^SF:/ { f = substr($0, 4); sub(root, "", f); next }
  /^DA:/ { split(substr($0, 4), a, ","); k = f SUBSEP a[1]; seen[k] = 1; if (a[2] > 0) hit[k] = 1 }
  END {
    for (k in seen) {
      split(k, p, SUBSEP); lines[p[1]]++
      if (k in hit) covered[p[1]]++; else print p[1] ":" p[2] > "/dev/stderr"
    }
    for (f in lines) printf "%s %d %d\n", f, lines[f], covered[f]
  }'
awk -v root="$root/Sources/SVAKit/" "$union" "$out/swift.lcov" "$out/cmake.lcov" 2>"$out/uncovered.list" |
  sort >"$out/merged.txt"

step "line coverage of Sources/SVAKit (Swift suites + cmocka suites + fuzz replay)"
awk '
  BEGIN { printf "%-44s %7s %7s %8s\n", "Sources/SVAKit/", "lines", "missed", "cover" }
  { printf "%-44s %7d %7d %7.2f%%\n", $1, $2, $2 - $3, 100 * $3 / $2
    t += $2; c += $3; if ($1 !~ /^ABI\//) { t2 += $2; c2 += $3 } }
  END {
    printf "%-44s %7d %7d %7.2f%%\n", "TOTAL", t, t - c, 100 * c / t
    printf "%-44s %7d %7d %7.2f%%\n", "TOTAL without ABI/", t2, t2 - c2, 100 * c2 / t2
  }' "$out/merged.txt" | tee "$out/report.txt"
for build in swift cmake; do
  awk -v root="$root/Sources/SVAKit/" "$union" "$out/$build.lcov" 2>/dev/null |
    awk -v b=$build '{ t += $2; c += $3 } END { printf "(the %s build alone: %.2f%% of %d lines)\n", b, 100 * c / t, t }'
done
if [ "${COVERAGE_SHOW:-0}" != 0 ]; then
  sort -t: -k1,1 -k2,2n "$out/uncovered.list" | while IFS=: read -r f l; do
    printf '%s:%s: %s\n' "$f" "$l" "$(sed -n "${l}p" "Sources/SVAKit/$f")"
  done >"$out/uncovered.txt"
  echo "uncovered lines: $out/uncovered.txt"
fi
