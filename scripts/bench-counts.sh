#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Heap allocations on the engine's hot paths, checked against
# Benchmarks/Thresholds/ (ordo-one/benchmark's static thresholds, p90 of
# mallocCountTotal per sample of 1,000 operations): zero for the gate with
# the key off, an IOTLB-hit translate, a full walk and a 4 KiB map+unmap;
# 1,000 for the control, which proves the counter is live. Counts only,
# never times. Exit 0 when every count equals its threshold.
#
# Not part of scripts/test.sh: from a fresh clone it builds the benchmark
# harness and its dependencies, and the library again in release (several
# minutes on the 2-core machine; docs/BENCHMARKS.md). After a change that
# moves a count on purpose:
#   (cd Benchmarks && swift package --allow-writing-to-package-directory \
#      benchmark thresholds update --metric mallocCountTotal)
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"
swift package benchmark thresholds check --metric mallocCountTotal --no-progress
