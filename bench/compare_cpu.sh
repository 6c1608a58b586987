#!/usr/bin/env bash
# Compare blipcuda's CPU backend with transformers (CPU, float32, eager) on
# this machine, in one run: the same workloads, the same random-weight base
# architecture, the same thread count. Prints a Markdown table for
# bench/RESULTS.md.
#
#   bash bench/compare_cpu.sh [python]     # python: an interpreter with torch + transformers
#
# Env: REPS (default 5) timed repetitions per workload on each side.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
REPS=${REPS:-5}
threads=$(nproc)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "# transformers ($PY), $threads threads, $REPS reps" >&2
BENCH_THREADS=$threads "$PY" bench/transformers_cpu.py "$REPS" > "$out/hf.json"

echo "# blipcuda (go test -bench), GOMAXPROCS=$threads" >&2
GOMAXPROCS=$threads go test -run '^$' -bench 'ImageEncode/base|ITM|TextEmbeddings|Match' \
  -benchtime "${REPS}x" -count 1 ./bench/ | tee "$out/go.txt" >&2

"$PY" - "$out/hf.json" "$out/go.txt" <<'PYEOF'
import json, re, sys, platform, subprocess
hf = json.load(open(sys.argv[1]))
go = {}
for line in open(sys.argv[2]):
    m = re.match(r"Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        go[m.group(1)] = float(m.group(3)) / 1e9
rows = [("ViT-B/16 image encode (1 image, ITC embedding)", "ImageEncode/base", "image_encode_base"),
        ("ITM, 16 captions vs cached image features", "ITM/base/captions=16", "itm_base_16"),
        ("ITC text embeddings, 16 captions", "TextEmbeddings", "text_embeddings_base_16"),
        ("1 image × 16 captions, ITM + ITC end to end", "Match", "match_base_16")]
cpu = "unknown"
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip(); break
except OSError:
    pass
gov = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
print(f"CPU: {cpu}, {hf['threads']} threads; {gov}; torch {hf['torch']}, transformers {hf['transformers']}; "
      f"median of {hf['reps']} (transformers) / mean of {hf['reps']} (go test) runs.\n")
print("| workload | blipcuda (ms) | transformers (ms) | blipcuda / transformers |")
print("|---|---:|---:|---:|")
for label, g, h in rows:
    if g in go and h in hf:
        print(f"| {label} | {go[g]*1e3:.1f} | {hf[h]*1e3:.1f} | {go[g]/hf[h]:.2f}× |")
PYEOF
