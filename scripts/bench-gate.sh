#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The gate benchmark in C: ns per iteration, then instructions per iteration
# of each loop counted by valgrind's callgrind (deterministic: the same count
# on every run, whatever else the machine does).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -q valgrind; }
out=.build-bench
cmake -S . -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSVAKIT_BUILD_TESTS=OFF >/dev/null
ninja -C "$out" svakit_gate_bench >/dev/null
"$out/svakit_gate_bench"
n=10000000
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" --dump-instr=no \
  --toggle-collect=loop_empty --toggle-collect=loop_gate --toggle-collect=loop_call \
  "$out/svakit_gate_bench" $n >/dev/null 2>&1
# main runs each loop 5 times with n iterations.
callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null |
  awk -v n=$n '$0 !~ /=>/ && match($0, /gate_bench\.c:loop_[a-z]+/) {
         name = substr($0, RSTART + 13, RLENGTH - 13); gsub(",", "", $1); ir[name] = $1 / (5 * n) }
       END { for (k in ir) printf "%-11s %.2f instructions per iteration\n", k, ir[k];
             printf "gate cost   %.2f instructions (loop_gate - loop_empty)\n", ir["loop_gate"] - ir["loop_empty"] }'
