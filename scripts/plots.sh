#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Draws docs/img/*.svg from docs/data/*.json (scripts/plots.py). Installs
# python3-matplotlib with apt-get if no python3 has matplotlib (needs root);
# Debian's package is for /usr/bin/python3, which may not be the python3 on
# PATH (pyenv). Not part of scripts/test.sh; run after
# scripts/dma-map-benchmark-matrix.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import matplotlib' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
    echo "installing python3-matplotlib" >&2
    apt-get update >&2 && apt-get install -y python3-matplotlib >&2
    py=/usr/bin/python3
fi
exec "$py" scripts/plots.py "$@"
