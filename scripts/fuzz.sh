#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the libFuzzer target tests-c/fuzz/fuzz_abi.c and runs it for
# SECONDS (default 60) on the checked-in seed corpus tests-c/fuzz/corpus/.
#
#   scripts/fuzz.sh [SECONDS]
#
# The library: libsvakit.a under ASan, as .build-ci/asan builds it. By
# default it comes from .build-ci/fuzz, the same configuration plus Swift
# sanitizer coverage as libFuzzer wants it (inline 8-bit counters, PC table,
# comparison tracing), so that libFuzzer
# sees the engine's branches and not only the decoder's; that tree is
# configured once and reused (the engine builds in well under a minute).
# SVAKIT_FUZZ_LIB=asan links .build-ci/asan/libsvakit.a instead (reused
# when present, built otherwise): no engine coverage, no extra build.
#
# Environment:
#   SVAKIT_FUZZ_LIB=coverage|asan   which library (above); default coverage
#   SVAKIT_FUZZ_LENIENT=1           skip the once-known-bad call shapes (all fixed;
#                                   the reproducers in tests-c/fuzz/crashes run first)
#   SVAKIT_FUZZ_JOBS=N              parallel fuzzing jobs (default 1)
#   SVAKIT_FUZZ_AUDIT_EVERY=N       the full audit (svakit_machine_check) after every
#                                   N-th call while fuzzing (default 16; 0: only at
#                                   the end of each input; 1: after every call).
#                                   The O(1) counter check runs after every call,
#                                   and the checked-in inputs are replayed first
#                                   with the audit after every call
#                                   (tests-c/fuzz/README.md, "Cost")
#   FUZZ_ARGS="..."                 extra libFuzzer flags
#
# New corpus entries go to .build-ci/fuzz/corpus (not checked in); crashes
# to .build-ci/fuzz/artifacts/. Exits nonzero on any crash, sanitizer
# report or failed check. Replay one input, with the call trace:
#   SWIFT_BACKTRACE=enable=no SVAKIT_FUZZ_TRACE=1 .build-ci/fuzz/fuzz_abi tests-c/fuzz/crashes/NAME
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
out=$root/.build-ci/fuzz
clang=${CLANG:-/opt/swift/usr/bin/clang}
swiftc=${SWIFTC:-/opt/swift/usr/bin/swiftc}
mode=${SVAKIT_FUZZ_LIB:-coverage}

step() { printf '==> %s\n' "$*"; }

mkdir -p "$out"
case "$mode" in
coverage)
  lib=$out/libsvakit.a
  # Configuring an existing tree again is quick and rebuilds nothing when
  # the flags are the same.
  flags="-sanitize=address -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp"
  step "configuring $out (the ASan build plus Swift sanitizer coverage)"
  cmake -S . -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSVAKIT_SANITIZE=ON -DSVAKIT_BUILD_TESTS=OFF \
    "-DCMAKE_Swift_FLAGS=$flags" >/dev/null
  # The Swift driver's incremental build does not notice new flags.
  if [ "$(cat "$out/.swift-flags" 2>/dev/null)" != "$flags" ]; then
    ninja -C "$out" -t clean >/dev/null
    printf '%s' "$flags" >"$out/.swift-flags"
  fi
  step "building $lib"
  ninja -C "$out" -j 2 svakit | tail -1
  ;;
asan)
  lib=$root/.build-ci/asan/libsvakit.a
  if [ ! -f "$root/.build-ci/asan/build.ninja" ]; then
    cmake -S . -B "$root/.build-ci/asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSVAKIT_SANITIZE=ON >/dev/null
  fi
  step "building $lib"
  ninja -C "$root/.build-ci/asan" -j 2 svakit | tail -1
  ;;
*) echo "SVAKIT_FUZZ_LIB must be coverage or asan" >&2; exit 2 ;;
esac

# What a C program needs beside the archive (cmake/SwiftRuntime.cmake).
info=$("$swiftc" -print-target-info)
resource=$(printf '%s' "$info" | sed -n 's/.*"runtimeResourcePath": *"\([^"]*\)".*/\1/p' | head -1)
triple=$(printf '%s' "$info" | sed -n 's/.*"triple": *"\([^"]*\)".*/\1/p' | head -1)
rtdir=$resource/linux
swiftrt=$rtdir/${triple%%-*}/swiftrt.o

step "building $out/fuzz_abi"
"$clang" -g -O1 -std=gnu11 -Wall -Wextra -Werror \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
  -fuse-ld=lld -Iinclude tests-c/fuzz/fuzz_abi.c \
  "$lib" "$swiftrt" -L"$rtdir" -lswiftSynchronization -lswiftCore -lm -Wl,-rpath,"$rtdir" \
  -o "$out/fuzz_abi.new"
mv "$out/fuzz_abi.new" "$out/fuzz_abi"

mkdir -p "$out/corpus" "$out/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The Swift runtime's own crash backtracer trips over ASan; libFuzzer and
# ASan report crashes already.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
jobs=${SVAKIT_FUZZ_JOBS:-1}
log=$out/fuzz.log

# The seed corpus and the reproducers, with the full audit after every call:
# the known inputs keep the deepest check whatever the fuzzing pass uses.
step "replaying tests-c/fuzz/corpus and tests-c/fuzz/crashes (audit after every call)"
if ! SVAKIT_FUZZ_AUDIT_EVERY=1 "$out/fuzz_abi" -runs=0 tests-c/fuzz/corpus tests-c/fuzz/crashes >"$out/replay.log" 2>&1; then
  echo "fuzz_abi FAILED on a checked-in input: the tail of $out/replay.log:" >&2
  grep -E 'fuzz_abi:|ERROR: |SUMMARY|Fatal error|runtime error|Running:' "$out/replay.log" | tail -20 >&2
  exit 1
fi
export SVAKIT_FUZZ_AUDIT_EVERY=${SVAKIT_FUZZ_AUDIT_EVERY:-16}
step "fuzzing for ${secs}s ($mode library, $jobs job(s), full audit every ${SVAKIT_FUZZ_AUDIT_EVERY} calls and at each input's end); log: $log"
set +e
# shellcheck disable=SC2086
"$out/fuzz_abi" -max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
  -max_len=768 -artifact_prefix="$out/artifacts/" \
  $( [ "$jobs" -gt 1 ] && echo "-fork=$jobs" ) ${FUZZ_ARGS:-} \
  "$out/corpus" tests-c/fuzz/corpus tests-c/fuzz/crashes >"$log" 2>&1
rc=$?
set -e

last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
cov=$(printf '%s' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
ft=$(printf '%s' "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
corp=$(printf '%s' "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
echo "fuzz_abi: ${execs:-?} executions in ${secs}s (${rate:-?}/s), coverage: ${cov:-?} edges," \
  "${ft:-?} features, corpus ${corp:-?}"
if [ $rc -ne 0 ]; then
  echo "fuzz_abi FAILED (exit $rc): the tail of $log:" >&2
  grep -E 'fuzz_abi:|ERROR: |SUMMARY|Fatal error|runtime error|Test unit written|artifact_prefix' "$log" | head -20 >&2
  exit 1
fi
echo "fuzz_abi: no crash"
