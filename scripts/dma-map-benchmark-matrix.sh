#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The IOMMU_DEBUG_PAGEALLOC matrix of the v5 cover letter, on the engine
# (docs/BENCHMARKS.md, "IOMMU_DEBUG_PAGEALLOC and dma_map_benchmark"):
# `svakit dma-map-benchmark` at 4 KiB and 1 MiB (-g 1, -g 256) on 1 and 4
# threads, in three states -- compiled out (a build with
# --disable-default-traits), compiled in with the key off (--sanitizer off),
# and on (--sanitizer linux, fast, window) -- plus the 1 GiB buffer mapped
# with 262,144 4 KiB pages (--pages 262144, 1 thread). Writes every run's
# JSON to docs/data/dma-map-benchmark.json and prints markdown tables (also
# written to docs/data/dma-map-benchmark.md); then
# `svakit bench dma --json --cdf` (the lazy window's distribution) to
# docs/data/bench-dma.json. scripts/plots.sh draws both.
#
# Usage: scripts/dma-map-benchmark-matrix.sh [--seconds N] [--milliseconds N]
#          [--repeat N] [--policy strict|lazy] [--no-build] [--no-window]
#          [--callgrind] [--out FILE]
#   --seconds N       each cell runs N s (default 2; the kernel tool's default is 20)
#   --milliseconds N  each cell runs N ms instead (quick checks)
#   --repeat N        run the whole matrix N times, states interleaved within a
#                     cell so drift hits them alike; the tables show the best
#   --no-build        use the binaries already built
#   --no-window       skip `bench dma`
#   --callgrind       also count instructions per map and per unmap under
#                     callgrind (valgrind), every state, 4K, 1M and 1G
#                     (docs/data/dma-map-benchmark-callgrind.json): the
#                     comparison a loaded machine's clock cannot make
#   --callgrind-only  only that (no timed matrix, no bench dma)
# Timed cells run with the states interleaved; the tables show the best
# (lowest) of the repeats, which a shared, loaded machine disturbs least, and
# the JSON keeps every run. The 1 GiB cell runs 4x as long (each loop
# writes 1 GiB).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=2 milliseconds="" repeat=1 policy=strict build=1 window=1 callgrind=0 timed=1
out=docs/data/dma-map-benchmark.json
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --milliseconds) milliseconds=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --policy) policy=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --no-window) window=0; shift ;;
        --callgrind) callgrind=1; shift ;;
        --callgrind-only) callgrind=1 timed=0 window=0; shift ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '3,35p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 64 ;;
    esac
done

# Two builds: the default traits (IOMMUDebugPagealloc in) and none (out),
# in a scratch path of its own so both binaries exist side by side.
in_scratch=.build
out_scratch=.build-no-debug-pagealloc
# A package without the trait (before the sanitizer) has no compiled-out
# build: SwiftPM refuses --disable-default-traits then, and the state is
# recorded as missing.
has_trait=0
grep -q 'IOMMUDebugPagealloc' Package.swift && has_trait=1
if [ "$build" = 1 ]; then
    swift build -c release --product svakit >&2
    if [ "$has_trait" = 1 ]; then
        # SwiftPM 6.3 sometimes fails here with "unknown build description"
        # after Package.swift changed; its cached description goes, then once more.
        swift build -c release --product svakit --disable-default-traits --scratch-path "$out_scratch" >&2 || {
            rm -f "$out_scratch/release.yaml" "$out_scratch/build.db"
            swift build -c release --product svakit --disable-default-traits --scratch-path "$out_scratch" >&2
        }
    fi
fi
svakit_in=$in_scratch/release/svakit
svakit_out=$out_scratch/release/svakit
[ "$has_trait" = 1 ] || { echo "Package.swift has no IOMMUDebugPagealloc trait: no compiled-out state" >&2; svakit_out=/nonexistent; }
for b in "$svakit_in" "$svakit_out"; do
    [ "$b" = /nonexistent ] || [ -x "$b" ] || { echo "missing $b (run without --no-build)" >&2; exit 1; }
done


# A state: its name, the binary, the --sanitizer value.
states=("compiled-out:$svakit_out:off" "key-off:$svakit_in:off" "linux:$svakit_in:linux"
        "fast:$svakit_in:fast" "window:$svakit_in:window")
# A cell: its name and the options that make it.
cells=("4K-1t:-g 1 -t 1" "4K-4t:-g 1 -t 4" "1M-1t:-g 256 -t 1" "1M-4t:-g 256 -t 4" "1G-1t:--pages 262144 -t 1")

mkdir -p "$(dirname "$out")"
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for r in $(seq 1 "$([ "$timed" = 1 ] && echo "$repeat" || echo 0)"); do
    for cell in "${cells[@]}"; do
        name=${cell%%:*} opts=${cell#*:}
        scale=1
        [ "$name" = 1G-1t ] && scale=4
        if [ -n "$milliseconds" ]; then t=$((milliseconds * scale)); duration=(--milliseconds $((t > 300000 ? 300000 : t)))
        else t=$((seconds * scale)); duration=(-s $((t > 300 ? 300 : t))); fi
        for state in "${states[@]}"; do
            IFS=: read -r sname bin san <<<"$state"
            echo "run $r/$repeat: $name $sname" >&2
            # shellcheck disable=SC2086
            if [ -x "$bin" ] && json=$("$bin" dma-map-benchmark $opts "${duration[@]}" --policy "$policy" --sanitizer "$san" --json); then
                printf '{"repeat": %d, "cell": "%s", "state": "%s", "report": %s}\n' "$r" "$name" "$sname" "$json" >>"$runs"
            else
                # A state this engine does not have yet (no sanitizer mode):
                # recorded as missing, not as a figure.
                printf '{"repeat": %d, "cell": "%s", "state": "%s", "report": null}\n' "$r" "$name" "$sname" >>"$runs"
            fi
        done
    done
done

cg_out=docs/data/dma-map-benchmark-callgrind.json
if [ "$callgrind" = 1 ]; then
    command -v valgrind >/dev/null || { echo "callgrind needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
    cg=$(mktemp -d)
    # Instructions per call: the inclusive count of Machine.dmaMapPage and
    # Machine.dmaUnmapPage over a short run, divided by the run's loops
    # (one map and one unmap each). Valgrind 3.19 cannot read the Swift
    # binary's DWARF 5, so it runs a copy without debug info (the symbol
    # table stays; swift demangle names the functions). FROM_DEVICE (-d 2):
    # no buffer writes between the calls, so more loops in the time; the
    # calls' own instructions do not depend on the direction.
    : >"$cg/runs"
    for g in 1 256 262144; do
        ms=1500
        [ "$g" = 262144 ] && ms=8000
        for state in "compiled-out:$svakit_out:off" "key-off:$svakit_in:off" "linux:$svakit_in:linux" \
                     "fast:$svakit_in:fast" "window:$svakit_in:window"; do
            IFS=: read -r sname bin san <<<"$state"
            [ -x "$bin" ] || continue
            objcopy --strip-debug "$bin" "$cg/svakit"
            f="$cg/$sname-$g"
            echo "callgrind: -g $g $sname" >&2
            if valgrind --tool=callgrind --callgrind-out-file="$f.out" "$cg/svakit" dma-map-benchmark --pages "$g" \
                -d 2 --milliseconds "$ms" --policy "$policy" --sanitizer "$san" --json >"$f.json" 2>"$f.log"; then
                callgrind_annotate --inclusive=yes --threshold=100 "$f.out" 2>/dev/null | swift demangle --simplified >"$f.txt"
                echo "$sname $g $f" >>"$cg/runs"
            fi
        done
    done
    python3 - "$cg/runs" "$cg_out" <<'EOF'
import json, re, sys
rows = []
for line in open(sys.argv[1]):
    state, g, path = line.split()
    loops = json.load(open(path + ".json"))["metrics"]["loops"]
    text = open(path + ".txt").read()
    def per_call(sym):
        for l in text.splitlines():
            m = re.match(r"\s*([\d,]+) .*\?\?\?:" + re.escape(sym) + r"\(", l)
            if m:
                return int(m.group(1).replace(",", "")) / loops
        return None
    rows.append({"state": state, "pages": int(g), "loops": loops,
                 # Machine's thin wrappers are inlined into the caller since
                 # the layer split (issue 20); the DMA layer's calls are not.
                 "map_ir": per_call("Machine.dmaMapPage") or per_call("DMADomains.mapPage"),
                 "unmap_ir": per_call("Machine.dmaUnmapPage") or per_call("DMADomains.unmapPage")})
json.dump({"tool": "valgrind --tool=callgrind (inclusive Ir per call)", "rows": rows}, open(sys.argv[2], "w"), indent=1)
print("\nInstructions per call (callgrind, inclusive)\n")
print("| pages | state | loops | map Ir | unmap Ir | map+unmap Ir per page |")
print("|---|---|---|---|---|---|")
for r in rows:
    f = lambda v: "-" if v is None else f"{v:,.0f}"
    both = None if r["map_ir"] is None or r["unmap_ir"] is None else (r["map_ir"] + r["unmap_ir"]) / r["pages"]
    print(f"| {r['pages']} | {r['state']} | {r['loops']} | {f(r['map_ir'])} | {f(r['unmap_ir'])} | "
          + ("-" if both is None else f"{both:,.1f}") + " |")
EOF
    rm -rf "$cg"
fi

if [ "$timed" = 1 ]; then
python3 - "$runs" "$out" "$seconds" "${milliseconds:-0}" "$repeat" "$policy" <<'EOF' | tee "${out%.json}.md"
import json, platform, statistics, subprocess, sys, time
runs_path, out, seconds, ms, repeat, policy = sys.argv[1:]
runs = [json.loads(l) for l in open(runs_path)]
def swift_version():
    try:
        return subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:
        return None
doc = {
    "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": {"machine": platform.machine(), "kernel": platform.release(), "cpus": len(__import__("os").sched_getaffinity(0)),
             "swift": swift_version()},
    "seconds": int(seconds), "milliseconds": int(ms), "repeat": int(repeat), "policy": policy,
    "runs": runs,
}
# One run per line: readable, and a diff shows which runs changed.
head = json.dumps({k: v for k, v in doc.items() if k != "runs"}, indent=1)[:-2]
with open(out, "w") as f:
    f.write(head + ',\n "runs": [\n' + ",\n".join("  " + json.dumps(r) for r in runs) + "\n ]\n}\n")

cells = ["4K-1t", "4K-4t", "1M-1t", "1M-4t", "1G-1t"]
states = ["compiled-out", "key-off", "linux", "fast", "window"]
def med(cell, state, key):
    xs = [r["report"]["metrics"][key] for r in runs
          if r["cell"] == cell and r["state"] == state and r["report"] is not None]
    return min(xs) if xs else None
def us(v):
    return "-" if v is None else "%.1f" % (v / 10.0)
def ns(v, d=1):
    return "-" if v is None else f"{v:,.{d}f}"

print(f"dma-map-benchmark, policy {policy}, {ms + ' ms' if ms != '0' else seconds + ' s'} per cell (1G: 4x), best of {repeat}\n")
print("As the kernel tool prints it: map/unmap average latency (us, 100 ns units truncated)\n")
print("| case | " + " | ".join(states) + " |")
print("|---" * (len(states) + 1) + "|")
for c in cells:
    print(f"| {c} | " + " | ".join(f"{us(med(c, s, 'avg_map_100ns'))}/{us(med(c, s, 'avg_unmap_100ns'))}" for s in states) + " |")
print("\nBeyond the kernel tool: map/unmap average latency (ns, exact sums)\n")
print("| case | " + " | ".join(states) + " |")
print("|---" * (len(states) + 1) + "|")
for c in cells:
    print(f"| {c} | " + " | ".join(f"{ns(med(c, s, 'map_ns'))}/{ns(med(c, s, 'unmap_ns'))}" for s in states) + " |")
print("\nmap+unmap ns per 4 KiB page\n")
print("| case | " + " | ".join(states) + " |")
print("|---" * (len(states) + 1) + "|")
for c in cells:
    print(f"| {c} | " + " | ".join(ns(med(c, s, 'map_unmap_ns_per_4k_page'), 2) for s in states) + " |")

def total(c, s):
    a, b = med(c, s, "map_ns"), med(c, s, "unmap_ns")
    return None if a is None or b is None else a + b
def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else "%.3f" % (a / b)
print("\nTargets (issue 12)\n")
print("| target | case | measured |")
print("|---|---|---|")
for c in cells:
    print(f"| key off vs compiled out <= 1.02 (map+unmap) | {c} | {ratio(total(c, 'key-off'), total(c, 'compiled-out'))} |")
for s in ["linux", "fast", "window"]:
    for c in ["1M-1t", "1M-4t"]:
        print(f"| key on ({s}) vs key off <= 1.5 (map+unmap) | {c} | {ratio(total(c, s), total(c, 'key-off'))} |")
pages = {"4K-1t": 1, "4K-4t": 1, "1M-1t": 256, "1M-4t": 256, "1G-1t": 262144}
for s in ["linux", "fast", "window"]:
    for c in ["1M-1t", "1G-1t"]:
        on, off = total(c, s), total(c, "key-off")
        v = "-" if on is None or off is None else "%.2f ns" % ((on - off) / pages[c])
        print(f"| key on ({s}) adds <= 25 ns per 4K page | {c} | {v} |")
for s in states:
    g1, m1 = med("1G-1t", s, "map_unmap_ns_per_4k_page"), med("1M-1t", s, "map_unmap_ns_per_4k_page")
    print(f"| 1G per-page cost within 1.5x of 1M ({s}) | 1G-1t / 1M-1t | {ratio(g1, m1)} |")
EOF
echo "wrote $out" >&2
fi

if [ "$window" = 1 ]; then
    "$svakit_in" bench dma --json --cdf --ops 6400 >docs/data/bench-dma.json
    echo "wrote docs/data/bench-dma.json" >&2
fi
