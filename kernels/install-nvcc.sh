#!/usr/bin/env bash
# kernels/install-nvcc.sh — installs nvcc 13.0 from PyPI into a virtual
# environment (no CUDA toolkit, no GPU, no root needed) and prints its path.
#
#   bash kernels/install-nvcc.sh [VENV_DIR]       # default VENV_DIR: ~/.cache/blipcuda-nvcc
#   cmake -S . -B build -DBLIPCUDA_NVCC="$(bash kernels/install-nvcc.sh)"
#
# Why every package is pinned: the GPU machines run a CUDA 13.0 driver, which
# JITs PTX up to ISA 9.0 — what nvcc 13.0 emits. `pip install
# nvidia-cuda-nvcc==13.0.88` alone pulls the newest nvidia-nvvm (cicc), whose
# PTX 9.5 the 13.0 ptxas rejects ("Unsupported .version 9.5"). nvvm, crt
# (crt/*.h) and runtime (cuda_runtime.h, included implicitly by nvcc) must be
# the same release, and cccl provides <nv/target>, which cuda_fp16.h and
# cuda_bf16.h (the float16/bfloat16 kernels) include. About 290 MB installed.
set -euo pipefail
venv=${1:-${HOME}/.cache/blipcuda-nvcc}
python=${PYTHON:-python3}
nvcc="$venv/lib/python$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')/site-packages/nvidia/cu13/bin/nvcc"
# A venv from before the cccl pin lacks <nv/target>: top it up.
if [ ! -x "$nvcc" ] || [ ! -e "$(dirname "$nvcc")/../include/nv/target" ]; then
  [ -x "$venv/bin/pip" ] || "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet \
    "nvidia-cuda-nvcc==13.0.88" \
    "nvidia-nvvm==13.0.88" \
    "nvidia-cuda-crt==13.0.88" \
    "nvidia-cuda-runtime==13.0.96" \
    "nvidia-cuda-cccl==13.0.85" >&2
fi
"$nvcc" --version >&2
echo "$nvcc"
