#!/bin/bash -eu
# SPDX-License-Identifier: Apache-2.0
# OSS-Fuzz: projects/svakit/build.sh. The build lives in the repository.
exec bash "$SRC/svakit/tests-c/fuzz/oss-fuzz/build.sh"
