#!/usr/bin/env bash
# scripts/compare-gpu.sh DIR — blipcuda vs transformers on a GPU machine, in
# one run on one card: builds random-weight checkpoints of the real base and
# large architectures (Python), times transformers' BlipForImageTextRetrieval
# (float32 eager, float16/bfloat16 with sdpa where transformers allows it,
# float16 torch.compile), checks blipcuda's outputs against transformers'
# float32 (the CLI, float32/float16/bfloat16), times blipcuda (the bench test
# binary), and writes $OUT/compare/report.md and report.json (plus logs and
# the raw JSON of every step). Needs Python with torch + transformers and a
# CUDA driver; no Go: DIR comes from scripts/build-device-check.sh.
#
#   bash scripts/compare-gpu.sh build/device-check        # device tool: carry ["build/device-check"]
#
# Every step runs under its own timeout, each cut to what is left of DEADLINE
# (default 540 s, so the whole run fits one 600 s device call); the report is
# always written. Expected on an H100: ~4 minutes with COMPILE=1, ~3 without.
#
# Env (defaults):
#   PYTHON (python3)   CKPT_DIR (/tmp/blipcuda-compare: ~2.7 GB of checkpoints, never under $OUT)
#   MODELS (base,large)   PRECISIONS (float32,float16,bfloat16)   DEVICE (cuda)
#   HF_MODES (fp32-eager,fp16-sdpa,bf16-sdpa)   COMPILE (1: also fp16 torch.compile, base only)
#   COMPILE_TIMEOUT (75)   COMPILE_BUDGET_S (45: no new compiled workload after this)
#   PROFILE (1: per-operation GPU time of the first model, bench/profile_test.go)
#   PROFILE_PRECISIONS (float16,float32)
#   MATCH_RUNS (50)  RERANK_RUNS (10)  IMAGE_RUNS (3)   DEADLINE (540)
#   SMOKE (0; 1: tiny model on the CPU, tiny workloads: proves the pipeline without a GPU)
set -uo pipefail
dir=$(cd "${1:?usage: compare-gpu.sh DIR}" && pwd)
out="${OUT:-$dir/out}/compare"
rm -rf "$out"
mkdir -p "$out/logs" "$out/agree"
tree="$dir/tree"
bin="$dir/bin"
# The binaries travel gzipped (build-device-check.sh): unpack them once.
for gz in "$dir"/bin/*.gz; do
  [ -e "$gz" ] || continue
  gzip -d -f "$gz" && chmod +x "${gz%.gz}"
done
PY=${PYTHON:-python3}
CKPT=${CKPT_DIR:-/tmp/blipcuda-compare}
MODELS=${MODELS:-base,large}
PRECISIONS=${PRECISIONS:-float32,float16,bfloat16}
DEVICE=${DEVICE:-cuda}
HF_MODES=${HF_MODES:-fp32-eager,fp16-sdpa,bf16-sdpa}
COMPILE=${COMPILE:-1}
PROFILE=${PROFILE:-1}
PROFILE_PRECISIONS=${PROFILE_PRECISIONS:-float16,float32}
COMPILE_TIMEOUT=${COMPILE_TIMEOUT:-75}
COMPILE_BUDGET_S=${COMPILE_BUDGET_S:-45}
MATCH_RUNS=${MATCH_RUNS:-50}
RERANK_RUNS=${RERANK_RUNS:-10}
IMAGE_RUNS=${IMAGE_RUNS:-3}
DEADLINE=${DEADLINE:-540}
HF_ARGS=()
GO_ENV=()
if [ "${SMOKE:-0}" = 1 ]; then
  MODELS=tiny DEVICE=cpu HF_MODES=fp32-eager,bf16-sdpa COMPILE=0 PROFILE=0 MATCH_RUNS=5 RERANK_RUNS=2 IMAGE_RUNS=2
  HF_ARGS=(--image-batch 4 --rerank-captions 16 --warmup 1)
  GO_ENV=(BLIPCUDA_BENCH_IMAGES=4 BLIPCUDA_BENCH_RERANK_CAPTIONS=16)
fi
start=$(date +%s)
: >"$out/steps.tsv"

# step NAME SECONDS CMD... — runs CMD (in the current directory) with a
# timeout cut to the deadline, logs it to logs/NAME.log, records it in
# steps.tsv. Returns the command's status.
step() {
  local name=$1 secs=$2
  shift 2
  local left=$((DEADLINE - 15 - ($(date +%s) - start)))
  if [ "$left" -lt 5 ]; then
    printf '%s\tskipped (deadline)\t0\t%s\t%s\n' "$name" "$secs" "$*" >>"$out/steps.tsv"
    echo "== $name: skipped, deadline" >&2
    return 1
  fi
  [ "$secs" -gt "$left" ] && secs=$left
  local t0 rc verdict
  t0=$(date +%s)
  echo "== $name (timeout ${secs}s): $*" >&2
  timeout --kill-after=5 "$secs" "$@" >"$out/logs/$name.log" 2>&1
  rc=$?
  verdict=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then verdict="TIMEOUT"
  elif [ $rc -ne 0 ]; then verdict="FAILED (exit $rc)"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$verdict" "$(($(date +%s) - t0))" "$secs" "$*" >>"$out/steps.tsv"
  echo "   $verdict in $(($(date +%s) - t0))s" >&2
  tail -3 "$out/logs/$name.log" | sed 's/^/   | /' >&2
  return $rc
}

# 0. The card, the driver, the versions.
step 0-nvidia-smi 10 nvidia-smi
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
driver_cuda=$(grep -o 'CUDA Version: [0-9.]*' "$out/logs/0-nvidia-smi.log" 2>/dev/null | head -1 | sed 's/CUDA Version: //')
GPU="$gpu" DRIVER="$driver" DRIVER_CUDA="$driver_cuda" REV="$(head -1 "$dir/REVISION" 2>/dev/null)" \
  GOV="$(cat "$dir/GOVERSION" 2>/dev/null)" "$PY" - "$out/env.json" <<'PYEOF' || echo '{}' >"$out/env.json"
import json, os, sys, time
json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "revision": os.environ["REV"] or "unknown",
           "gpu": os.environ["GPU"] or "none found", "driver": os.environ["DRIVER"] or "?",
           "driver_cuda": os.environ["DRIVER_CUDA"] or "?", "go_version": os.environ["GOV"] or "?"},
          open(sys.argv[1], "w"), indent=1)
PYEOF

# The reference inputs: 4 PNG images (decoded identically on both sides) and
# 16 texts (the 14 match captions and two with punctuation and accents).
ref_images="$tree/testdata/models/images/scene.png,$tree/testdata/models/images/blocks.png,$tree/testdata/models/images/waves_rgba.png,$tree/testdata/sample/beach.png"
{
  head -14 "$tree/bench/testdata/captions.txt"
  echo 'Café au lait on a wooden table, naïve art in the background'
  echo 'An old man (with a hat) reads: "the news"; then sleeps...'
} >"$out/ref_texts.txt"

# 1. Checkpoints.
step 1-build-checkpoints 90 "$PY" "$tree/bench/transformers_gpu.py" build --out "$CKPT" --models "$MODELS" \
  --device "$DEVICE" --json "$out/build.json"

# 2. transformers, eager modes: timings and the reference outputs.
step 2-transformers 150 "$PY" "$tree/bench/transformers_gpu.py" time --ckpt "$CKPT" --models "$MODELS" \
  --modes "$HF_MODES" --device "$DEVICE" --out "$out/hf.json" --runs "$MATCH_RUNS" --rerank-runs "$RERANK_RUNS" \
  --image-runs "$IMAGE_RUNS" --ref-images "$ref_images" --ref-texts "$out/ref_texts.txt" "${HF_ARGS[@]}"

# 3. Agreement: blipcuda's CLI on the same inputs, every model × precision.
IFS=, read -ra images <<<"$ref_images"
for model in ${MODELS//,/ }; do
  for p in ${PRECISIONS//,/ }; do
    if step "3-agree-$model-$p" 30 "$bin/blipcuda" match --model "$CKPT/$model" --protocol hf --device "$DEVICE" \
      --precision "$p" --format json -q --texts "$out/ref_texts.txt" -o "$out/agree/$model-$p.json" "${images[@]}"; then :
    else cp "$out/logs/3-agree-$model-$p.log" "$out/agree/$model-$p.err"; fi
  done
done

# 4. blipcuda timings: one bench invocation per workload and model, so that a
# timeout loses one row, not the rest.
for model in ${MODELS//,/ }; do
  for w in Match:"$MATCH_RUNS":35 Rerank:"$RERANK_RUNS":35 Images:"$IMAGE_RUNS":45; do
    IFS=: read -r name runs secs <<<"$w"
    [ "$model" = large ] && [ "$name" = Images ] && secs=75
    lname=$(echo "$name" | tr 'A-Z' 'a-z')
    (cd "$tree/bench" && step "go-$lname-$model" "$secs" env BLIPCUDA_BENCH_CHECKPOINT="$CKPT/$model" \
      BLIPCUDA_BENCH_DEVICE="$DEVICE" BLIPCUDA_BENCH_PRECISION="$PRECISIONS" "${GO_ENV[@]}" \
      "$bin/bench.test" -test.v -test.run '^$' -test.bench "^BenchmarkCheckpoint$name\$" \
      -test.benchtime "${runs}x" -test.count 1 -test.timeout 0)
  done
done

# 4b. Where blipcuda's GPU time goes: per-operation profile of the base model
# (float16 and float32), graphs off (bench/profile_test.go).
if [ "$PROFILE" = 1 ]; then
  mkdir -p "$out/profile"
  pmodel=${MODELS%%,*}
  (cd "$tree/bench" && step "go-profile-$pmodel" 45 env BLIPCUDA_BENCH_CHECKPOINT="$CKPT/$pmodel" \
    BLIPCUDA_BENCH_PRECISION="$PROFILE_PRECISIONS" BLIPCUDA_PROFILE_OUT="$out/profile" \
    "$bin/bench.test" -test.v -test.run '^$' -test.bench '^BenchmarkCheckpointProfile$' \
    -test.benchtime 3x -test.count 1 -test.timeout 0)
fi

# 5. transformers with torch.compile (float16, base): optional, last, bounded.
if [ "$COMPILE" = 1 ]; then
  if [ $((DEADLINE - 15 - ($(date +%s) - start))) -ge 30 ]; then
    step 5-transformers-compile "$COMPILE_TIMEOUT" "$PY" "$tree/bench/transformers_gpu.py" time --ckpt "$CKPT" \
      --models base --modes fp16-compile --device "$DEVICE" --out "$out/hf_compile.json" --runs "$MATCH_RUNS" \
      --rerank-runs "$RERANK_RUNS" --image-runs "$IMAGE_RUNS" --compile-budget-s "$COMPILE_BUDGET_S" \
      --ref-images "$ref_images" --ref-texts "$out/ref_texts.txt"
  else
    printf '5-transformers-compile\tskipped (deadline)\t0\t%s\t\n' "$COMPILE_TIMEOUT" >>"$out/steps.tsv"
  fi
fi

# 6. The report (standard-library Python; the deadline keeps 15 s for it).
timeout 15 "$PY" "$tree/bench/gpu_report.py" "$out" >"$out/logs/6-report.log" 2>&1 || {
  echo "report failed:" >&2; cat "$out/logs/6-report.log" >&2; }
echo >&2
echo "total: $(($(date +%s) - start))s; report: $out/report.md" >&2
if ls "$out"/profile/*.md >/dev/null 2>&1; then
  {
    echo
    echo "## blipcuda GPU time by operation (graphs off; bench/profile_test.go)"
    for f in "$out"/profile/*.md; do
      echo
      echo "### $(basename "$f" .md)"
      echo
      cat "$f"
    done
  } >>"$out/report.md"
fi
cat "$out/report.md" 2>/dev/null
# The status: the report is the result; a failed step is in it.
grep -qvF "$(printf '\tok\t')" "$out/steps.tsv" && exit 1
exit 0
