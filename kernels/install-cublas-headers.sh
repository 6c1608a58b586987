#!/usr/bin/env bash
# kernels/install-cublas-headers.sh — the cuBLAS and cuBLASLt headers
# (cublas_api.h, cublas_v2.h, cublasLt.h) of CUDA 13.0 from PyPI, without a
# CUDA toolkit, and prints the directory that holds them.
#
#   bash kernels/install-cublas-headers.sh [DIR]   # default DIR: ~/.cache/blipcuda-cublas-headers
#   BLIPCUDA_CUBLAS_INCLUDE="$(bash kernels/install-cublas-headers.sh)" go test ./cuda -run Header
#
# The nvidia-cublas wheel is the only registry package with these headers; it
# also carries the libraries (a 420 MB download, 590 MB unpacked). Only the
# six headers are kept: the wheel is downloaded to a temporary directory and
# deleted. Pinned to 13.0.0.19, the cuBLAS of CUDA 13.0 (the nvcc of
# install-nvcc.sh and the GPU machines' driver).
set -euo pipefail
dir=${1:-${HOME}/.cache/blipcuda-cublas-headers}
python=${PYTHON:-python3}
if [ ! -f "$dir/cublas_api.h" ] || [ ! -f "$dir/cublasLt.h" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # A throwaway venv: the system Python may have no pip module.
  "$python" -m venv "$tmp/venv" >&2
  "$tmp/venv/bin/pip" download --quiet --no-deps -d "$tmp" "nvidia-cublas==13.0.0.19" >&2
  mkdir -p "$dir"
  "$python" - "$tmp" "$dir" <<'PY'
import glob, os, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(os.path.join(tmp, "nvidia_cublas-*.whl"))
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("nvidia/cu13/include/") and n.endswith(".h"):
            with open(os.path.join(out, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
fi
echo "$dir"
