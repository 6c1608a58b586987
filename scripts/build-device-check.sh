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
#   bash scripts/build-device-check.sh build/device-check      # ~51 MB
# then run `bash scripts/device-check.sh build/device-check` with
# carry ["build/device-check"] and a timeout of about 420 s (the steps are
# bounded at 300 s), and commit $OUT/device-check/report.md as
# bench/device-check-<date>.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: build-device-check.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$root"
tree="$dir/tree"
rm -rf "$tree"
mkdir -p "$tree/cuda" "$tree/ops" "$tree/kernels" "$tree/testdata" "$dir/bin"
export CGO_ENABLED=1
go test -c -o "$dir/bin/cuda.test" ./cuda
go test -c -o "$dir/bin/ops.test" ./ops
go test -c -o "$dir/bin/blipcuda.test" .
go build -o "$dir/bin/blipcuda" ./cmd/blipcuda
cp cuda/kernels.sha256 cuda/blipkernels.fatbin cuda/cudadecl.h "$tree/cuda/"
cp kernels/*.cu kernels/*.cuh "$tree/kernels/"
cp -r testdata/models "$tree/testdata/"
cp scripts/device-check.sh "$dir/"
git rev-parse HEAD >"$dir/REVISION" 2>/dev/null || true
git status --short >>"$dir/REVISION" 2>/dev/null || true
du -sh "$dir" >&2
echo "$dir"
