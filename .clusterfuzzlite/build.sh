#!/bin/bash -eu
# SPDX-License-Identifier: Apache-2.0
# ClusterFuzzLite: builds fuzz_abi into $OUT (tests-c/fuzz/oss-fuzz/build.sh).
exec bash "$SRC/svakit/tests-c/fuzz/oss-fuzz/build.sh"
