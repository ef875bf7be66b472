#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Draws docs/BENCHMARKS.md's plots from docs/data/*.json (run through
scripts/plots.sh, which installs matplotlib if it is missing):

- docs/img/dma-map-latency.svg: `svakit dma-map-benchmark` map and unmap
  latency (ns, exact averages; the best of the repeats) against the pages per
  buffer (1, 256, 262,144), log-log, one line per IOMMU_DEBUG_PAGEALLOC
  state, 1 thread solid and 4 threads dashed
  (docs/data/dma-map-benchmark.json, scripts/dma-map-benchmark-matrix.sh);
- docs/img/lazy-window-cdf.svg: the lazy window (unmap to the release its
  covering flush allows) as a CDF per flush-queue kind, per-CPU rings
  against the single ring (docs/data/bench-dma.json, `svakit bench dma
  --json --cdf`).
"""
import json
import os
import re
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
data = os.path.join(root, "docs", "data")
img = os.path.join(root, "docs", "img")
os.makedirs(img, exist_ok=True)
# --png DIR: also a PNG of each plot in DIR (to look at; not committed).
png_dir = sys.argv[sys.argv.index("--png") + 1] if "--png" in sys.argv else None


def save(fig, name):
    out = os.path.join(img, name + ".svg")
    fig.savefig(out, metadata={"Date": None})
    print(f"wrote {out}")
    if png_dir:
        fig.savefig(os.path.join(png_dir, name + ".png"), dpi=80)
plt.rcParams["svg.hashsalt"] = "svakit"  # stable ids: the SVG changes only when the data does
plt.rcParams["svg.fonttype"] = "none"

STATES = [("compiled-out", "compiled out"), ("key-off", "compiled in, key off"),
          ("linux", "key on: linux (Linux 7.0)"), ("fast", "key on: fast"), ("window", "key on: window-aware")]
PAGES = {"4K": 1, "1M": 256, "1G": 262144}


def latency_plot():
    path = os.path.join(data, "dma-map-benchmark.json")
    if not os.path.exists(path):
        print(f"skip: no {path}", file=sys.stderr)
        return
    doc = json.load(open(path))
    runs = [r for r in doc["runs"] if r["report"] is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, op in zip(axes, ["map", "unmap"]):
        for i, (state, label) in enumerate(STATES):
            for threads, style in [(1, "-"), (4, "--")]:
                xs, ys = [], []
                for size, pages in PAGES.items():
                    vals = [r["report"]["metrics"][f"{op}_ns"] for r in runs
                            if r["state"] == state and r["cell"] == f"{size}-{threads}t"]
                    if vals:
                        xs.append(pages)
                        ys.append(min(vals))
                if xs:
                    ax.plot(xs, ys, style, marker="o", color=f"C{i}",
                            label=f"{label}" if threads == 1 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("4 KiB pages per buffer (-g / --pages)")
        ax.set_title(f"dma_{op}_single")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("average latency, ns (exact, not 100 ns units)")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="grey", linestyle="--"))
    labels.append("4 threads (dashed; 1 GiB: 1 thread only)")
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    seconds = f"{doc['milliseconds']} ms" if doc.get("milliseconds") else f"{doc['seconds']} s" + " (1 GiB: 4x)"
    fig.suptitle(f"svakit dma-map-benchmark, policy {doc['policy']}, {seconds} per point, "
                 f"best of {doc['repeat']}", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    save(fig, "dma-map-latency")


def window_plot():
    path = os.path.join(data, "bench-dma.json")
    if not os.path.exists(path):
        print(f"skip: no {path}", file=sys.stderr)
        return
    doc = json.load(open(path))
    metrics = doc["metrics"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    kinds = [("lazy_percpu", "per-CPU rings (DMA-FQ)"), ("lazy_single", "single ring (shadowed flush)"),
             ("lazy_quarantine", "per-CPU rings + quarantine")]
    for i, (kind, label) in enumerate(kinds):
        pts = []
        for k, v in metrics.items():
            m = re.fullmatch(rf"window_{kind}_q(\d{{4}})_ns", k)
            if m and v is not None:
                pts.append((v / 1e6, int(m.group(1)) / 1000))
        if not pts:
            continue
        pts.sort(key=lambda p: p[1])
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color=f"C{i}",
                label=f"{label}, n={metrics.get(f'window_{kind}_released', '?')}")
    ax.set_xscale("log")
    ax.set_xlabel("window: dma_unmap to the release its covering flush allows (ms, log)")
    ax.set_ylabel("fraction of unmaps")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    cfg = doc["config"]
    ax.set_title(f"svakit bench dma --cdf: {cfg['rate']} map/unmap per s per CPU, {cfg['cpus']} CPUs, "
                 f"{cfg['window_ms']} ms", fontsize=10)
    fig.tight_layout()
    save(fig, "lazy-window-cdf")


latency_plot()
window_plot()
