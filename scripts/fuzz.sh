#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the libFuzzer target tests-c/fuzz/fuzz_abi.c and runs it for
# SECONDS (default 60) on the checked-in seed corpus tests-c/fuzz/corpus/.
#
#   scripts/fuzz.sh [SECONDS]
#
# The target is built by tests-c/fuzz/oss-fuzz/build.sh, the script OSS-Fuzz
# and ClusterFuzzLite run, with $CC, $CFLAGS, $LIB_FUZZING_ENGINE and $OUT
# set as they set them (ASan + UBSan here), so every run checks the
# packaging too: libsvakit.a with the Swift under ASan and sanitizer
# coverage (inline 8-bit counters, PC table, comparison tracing), so that
# libFuzzer sees the engine's branches and not only the decoder's, the
# Swift runtime linked statically, the seed corpus zipped. The tree
# (.build-ci/fuzz/svakit-fuzz) is reused between runs.
# SVAKIT_FUZZ_LIB=asan links .build-ci/asan/libsvakit.a instead (reused
# when present, built otherwise): no engine coverage, no extra build.
#
# Environment:
#   SVAKIT_FUZZ_LIB=coverage|asan   which library (above); default coverage
#   SVAKIT_FUZZ_FRESH=1             a new machine for every input (default: one
#                                   pooled machine per configuration, reset after
#                                   each input, svakit_machine_reset)
#   SVAKIT_FUZZ_RESET_CHECK=1       run each input on a reset machine and on a new
#                                   one and compare (the replays below set it)
#   SVAKIT_FUZZ_PROFILE=1           where an input's time goes, printed at exit
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
  step "building $out/fuzz_abi with tests-c/fuzz/oss-fuzz/build.sh (as OSS-Fuzz does: \$CC, \$CFLAGS, \$LIB_FUZZING_ENGINE, \$OUT)"
  san="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
  CC=$clang CXX=$clang++ SWIFTC=$swiftc SANITIZER=address WORK=$out OUT=$out \
    CFLAGS="$san -fsanitize=fuzzer-no-link -Wall -Wextra -Werror" \
    CXXFLAGS="$san -fsanitize=fuzzer-no-link -fuse-ld=lld" LIB_FUZZING_ENGINE=-fsanitize=fuzzer \
    bash tests-c/fuzz/oss-fuzz/build.sh
  ;;
asan)
  lib=$root/.build-ci/asan/libsvakit.a
  if [ ! -f "$root/.build-ci/asan/build.ninja" ]; then
    cmake -S . -B "$root/.build-ci/asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSVAKIT_SANITIZE=ON >/dev/null
  fi
  step "building $lib"
  ninja -C "$root/.build-ci/asan" -j 2 svakit | tail -1
  # What a C program needs beside the archive (cmake/SwiftRuntime.cmake).
  info=$("$swiftc" -print-target-info)
  resource=$(printf '%s' "$info" | sed -n 's/.*"runtimeResourcePath": *"\([^"]*\)".*/\1/p' | head -1)
  triple=$(printf '%s' "$info" | sed -n 's/.*"triple": *"\([^"]*\)".*/\1/p' | head -1)
  rtdir=$resource/linux
  step "building $out/fuzz_abi"
  "$clang" -g -O1 -std=gnu11 -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
    -fuse-ld=lld -Iinclude tests-c/fuzz/fuzz_abi.c \
    "$lib" "$rtdir/${triple%%-*}/swiftrt.o" -L"$rtdir" -lswiftSynchronization -lswiftCore -lm -Wl,-rpath,"$rtdir" \
    -o "$out/fuzz_abi.new"
  mv "$out/fuzz_abi.new" "$out/fuzz_abi"
  ;;
*) echo "SVAKIT_FUZZ_LIB must be coverage or asan" >&2; exit 2 ;;
esac

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
# And each on a reset machine and on a new one, whose traces must agree
# (SVAKIT_FUZZ_RESET_CHECK: svakit_machine_reset leaves nothing behind).
step "replaying tests-c/fuzz/corpus and tests-c/fuzz/crashes (audit after every call, reset vs new machine)"
if ! SVAKIT_FUZZ_AUDIT_EVERY=1 SVAKIT_FUZZ_RESET_CHECK=1 "$out/fuzz_abi" -runs=0 -artifact_prefix="$out/artifacts/" \
  tests-c/fuzz/corpus tests-c/fuzz/crashes \
  >"$out/replay.log" 2>&1; then
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

# The corpus the run grew, hundreds of varied programs, each on a reset
# machine and on a new one: the differential check of svakit_machine_reset.
step "replaying the corpus the run grew on reset and on new machines (SVAKIT_FUZZ_RESET_CHECK=1)"
if ! SVAKIT_FUZZ_RESET_CHECK=1 "$out/fuzz_abi" -runs=0 -artifact_prefix="$out/artifacts/" "$out/corpus" \
  >"$out/reset-check.log" 2>&1; then
  echo "fuzz_abi FAILED the reset check: the tail of $out/reset-check.log:" >&2
  grep -E 'fuzz_abi:|ERROR: |SUMMARY|Fatal error|runtime error|Running:' "$out/reset-check.log" | tail -20 >&2
  exit 1
fi
echo "fuzz_abi: $(ls "$out/corpus" | wc -l) inputs ran alike on reset and new machines"
