#!/usr/bin/env bash
# scripts/device-check.sh DIR — the GPU checks of the CUDA backend, in about
# five minutes, on a machine with a CUDA 13.0 driver (nvcc, Python, torch and
# transformers may be there; Go is not needed). DIR comes from
# scripts/build-device-check.sh. Writes $OUT/device-check/report.md plus one
# log per step; exits non-zero when a step failed.
#
# Steps (each under its own timeout; the sum stays below 400 s, a GPU run
# normally takes well under half):
#   1. nvidia-smi, driver and device                                   (10 s)
#   2. cuda package tests on the device (graphs, header, errors)       (30 s)
#   3. the op-by-op differential suite in float32/float16/bfloat16, every
#      GEMM and attention path, CUDA-graph capture                     (70 s)
#   4. whole-model parity of the tiny models on the device, float32 and
#      float16/bfloat16 against transformers                           (45 s)
#   4b. captured forward passes equal the eager ones bit for bit       (30 s)
#   5. compute-sanitizer memcheck over the differential suite (f32, f16) (60 s)
#   5b. compute-sanitizer racecheck over the attention kernels         (45 s)
#   6. op benchmarks at BLIP shapes, F32/F16/BF16, with floors         (45 s)
#   7. `blipcuda eval`'s phases on the GPU (base architecture, random
#      weights: image encode, text encode, ITM re-rank per pair)        (60 s)
set -uo pipefail
dir=$(cd "${1:?usage: device-check.sh DIR}" && pwd)
out="${OUT:-$dir/out}/device-check"
mkdir -p "$out"
report="$out/report.md"
bin="$dir/bin"
tree="$dir/tree"
status=0
# The binaries travel gzipped (build-device-check.sh): unpack them once.
for gz in "$dir"/bin/*.gz; do
  [ -e "$gz" ] || continue
  gzip -d -f "$gz" && chmod +x "${gz%.gz}"
done

start=$(date +%s)

{
  echo "# blipcuda device check"
  echo
  echo "revision: $(head -1 "$dir/REVISION" 2>/dev/null || echo unknown)"
  echo "date: $(date -u +%FT%TZ)"
  echo
} >"$report"

# step NAME SECONDS DIR CMD... — runs CMD in DIR with a timeout, logs it,
# and adds a line to the report.
step() {
  local name=$1 secs=$2 wd=$3
  shift 3
  local log="$out/$name.log" t0 rc
  t0=$(date +%s)
  (cd "$wd" && timeout --kill-after=5 "$secs" "$@") >"$log" 2>&1
  rc=$?
  local took=$(($(date +%s) - t0))
  local verdict=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then verdict="TIMEOUT (${secs}s)"; status=1
  elif [ $rc -ne 0 ]; then verdict="FAILED (exit $rc)"; status=1
  elif grep -qE 'no CUDA (backend|device)' "$log"; then verdict="SKIPPED: the tests found no CUDA device"; status=1
  fi
  echo "- **$name**: $verdict in ${took}s — \`$*\` (log: $name.log)" >>"$report"
  grep -E '^(--- FAIL|FAIL|panic|=== NAME)|ERROR SUMMARY|out of memory' "$log" | head -20 | sed 's/^/    /' >>"$report"
}

step 1-nvidia-smi 10 "$dir" nvidia-smi
step 2-cuda-tests 30 "$tree/cuda" "$bin/cuda.test" -test.v -test.count=1
# Every op in float32, float16 and bfloat16 (cuBLAS, cuBLASLt's bias
# epilogue, the bk_gemm_nt kernels, tensor-core and CUDA-core attention)
# against the CPU, and CUDA-graph capture/replay.
step 3-ops-differential 70 "$tree/ops" "$bin/ops.test" -test.v -test.count=1 -test.run 'TestBackendOps|TestCUDA'
step 4-model-parity 45 "$tree" "$bin/blipcuda.test" -test.v -test.count=1 -test.run 'TestCUDAMatchParity|TestNewBackend|TestMatchParity|TestCUDAHalfPrecision'
step 4b-graphs 30 "$tree/model" "$bin/model.test" -test.v -test.count=1 -test.run 'TestGraphsMatchEager'

sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ]; then
  # float32 and float16 cover every kernel template (bfloat16 is the same
  # code); racecheck the attention kernels' shared-memory tiles.
  step 5-memcheck 60 "$tree/ops" "$sanitizer" --tool memcheck --error-exitcode 99 --print-limit 20 \
    "$bin/ops.test" -test.count=1 -test.run 'TestBackendOps/(blas|f16|kernelgemm|f16-simt)/'
  step 5b-racecheck 45 "$tree/ops" "$sanitizer" --tool racecheck --error-exitcode 99 --print-limit 20 \
    "$bin/ops.test" -test.count=1 -test.run 'TestBackendOps/(blas|f16|f16-simt)/Attention'
else
  echo "- **5-memcheck**, **5b-racecheck**: skipped, no compute-sanitizer on PATH or in /usr/local/cuda/bin" >>"$report"
fi

step 6-bench 45 "$tree/ops" "$bin/ops.test" -test.run '^$' -test.bench 'CUDAOps' -test.benchtime 10x
# The evaluation's phases (eval/bench_test.go) on the device; the ITC top-k
# is CPU work, benchmarked in CI's machine class, so it is left out here.
step 7-eval-bench 60 "$tree/eval" env BLIPCUDA_BENCH_DEVICE=cuda "$bin/eval.test" -test.run '^$' \
  -test.bench 'Phase(Images|Texts|ITM)$' -test.benchtime 10x
{
  echo
  echo "## Benchmarks (GPU timings, stream-synchronised)"
  echo
  echo "floor-us: max(FLOPs / compute ceiling, bytes / bandwidth) with the measured H100/H200 ceilings of"
  echo "bench/CEILINGS.md; pct-floor = floor / measured (see ops/backend_ops_bench_test.go)."
  echo
  echo '```'
  grep -E '^Benchmark' "$out/6-bench.log" || echo "(none)"
  echo '```'
  echo
  echo "## blipcuda eval's phases on the GPU (float32, base architecture, coco-h: a COCO 5k run's hours, extrapolated)"
  echo
  echo '```'
  grep -E '^Benchmark' "$out/7-eval-bench.log" || echo "(none)"
  echo '```'
  echo
  echo "## Device"
  echo
  echo '```'
  grep -E 'CUDA backend:|Driver Version|H100|H200|A100|NVIDIA' "$out/1-nvidia-smi.log" "$out/3-ops-differential.log" | head -8
  echo '```'
  echo
  echo "total: $(($(date +%s) - start))s, status $status"
} >>"$report"
cat "$report"
exit $status
