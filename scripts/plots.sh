#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Draws docs/img/*.svg from docs/data/*.json (scripts/plots.py). Installs
# python3-matplotlib with apt-get if it is missing (needs root). Not part of
# scripts/test.sh; run after scripts/dma-map-benchmark-matrix.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import matplotlib' 2>/dev/null; then
    echo "installing python3-matplotlib" >&2
    apt-get update >&2 && apt-get install -y python3-matplotlib >&2
fi
exec python3 scripts/plots.py "$@"
