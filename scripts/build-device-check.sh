#!/usr/bin/env bash
# scripts/build-device-check.sh DIR — prepares DIR for scripts/device-check.sh
# on a GPU machine that has no Go toolchain: test binaries of ./cuda, ./ops
# and the root package built here with default tags (the real driver path,
# the fatbin embedded), the blipcuda binary, and the files those tests read
# (the tiny models, the kernel sources whose hash the fatbin test checks),
# laid out as the repository so the tests find them by relative path.
#
#   bash scripts/build-device-check.sh /tmp/devcheck
#   # copy /tmp/devcheck to the GPU machine, then there:
#   bash /tmp/devcheck/device-check.sh /tmp/devcheck      # report under $OUT
#
# With the device tool (which copies the working tree and up to 64 MiB of
# ignored paths named in `carry`): build into the ignored build/ folder,
#   bash scripts/build-device-check.sh build/device-check      # ~30 MiB (must stay < 64)
# then run `bash scripts/device-check.sh build/device-check` with
# carry ["build/device-check"] and a timeout of about 480 s (the steps are
# bounded at 400 s), and commit $OUT/device-check/report.md as
# bench/device-check-<date>.md.
#
# The same directory runs the comparison with transformers (bench test binary,
# CLI, bench/transformers_gpu.py and gpu_report.py, the captions, the
# bert-base-uncased vocabulary, the reference images): a second call on the
# same warm machine, `bash scripts/compare-gpu.sh build/device-check` with the
# same carry and a timeout of 600 s (it keeps itself under 540 s), then
# commit $OUT/compare/report.md as bench/gpu-compare-<date>.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: build-device-check.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$root"
tree="$dir/tree"
rm -rf "$tree" "$dir/out"   # out/: what a local run of the checks left
mkdir -p "$tree/cuda" "$tree/ops" "$tree/model" "$tree/eval" "$tree/kernels" "$tree/testdata/tokenizer/bert-base-uncased" \
  "$tree/testdata/sample" "$tree/bench/testdata" "$dir/bin"
export CGO_ENABLED=1
# No symbol table or DWARF (-s -w): a third smaller, panics still name functions.
ldflags="-s -w"
go test -c -ldflags "$ldflags" -o "$dir/bin/cuda.test" ./cuda
go test -c -ldflags "$ldflags" -o "$dir/bin/ops.test" ./ops
go test -c -ldflags "$ldflags" -o "$dir/bin/model.test" ./model
go test -c -ldflags "$ldflags" -o "$dir/bin/blipcuda.test" .
go test -c -ldflags "$ldflags" -o "$dir/bin/bench.test" ./bench
go test -c -ldflags "$ldflags" -o "$dir/bin/eval.test" ./eval
go build -ldflags "$ldflags" -o "$dir/bin/blipcuda" ./cmd/blipcuda
# Compressed for the carry (about 2.5× smaller); device-check.sh and
# compare-gpu.sh unpack them first (gzip is everywhere).
gzip -9 -n -f "$dir"/bin/*.test "$dir/bin/blipcuda"
cp cuda/kernels.sha256 cuda/blipkernels.fatbin cuda/cudadecl.h "$tree/cuda/"
cp kernels/*.cu kernels/*.cuh "$tree/kernels/"
cp -r testdata/models "$tree/testdata/"
cp testdata/sample/beach.png "$tree/testdata/sample/"
cp testdata/tokenizer/bert-base-uncased/vocab.txt "$tree/testdata/tokenizer/bert-base-uncased/"
cp bench/transformers_gpu.py bench/gpu_report.py "$tree/bench/"
cp bench/testdata/captions.txt "$tree/bench/testdata/"
cp scripts/device-check.sh scripts/compare-gpu.sh "$dir/"
go version >"$dir/GOVERSION"
git rev-parse HEAD >"$dir/REVISION" 2>/dev/null || true
git status --short >>"$dir/REVISION" 2>/dev/null || true
size=$(du -sm "$dir" | cut -f1)
echo "$dir: ${size} MiB" >&2
if [ "$size" -ge 64 ]; then
  echo "build-device-check.sh: $dir is ${size} MiB, over the device tool's 64 MiB carry limit" >&2
  exit 1
fi
echo "$dir"
