#!/usr/bin/env bash
# kernels/standin/build.sh — builds the stand-in CUDA libraries (no CUDA
# toolkit, no GPU: the host C++ compiler only) and prints their directory.
#
#   bash kernels/standin/build.sh          # → build/standin (BUILD_DIR overrides)
#   BLIPCUDA_CUDA_LIBS="$(bash kernels/standin/build.sh)" go test ./cuda ./ops ./model
#
# Output, each directory a complete library set for BLIPCUDA_CUDA_LIBS:
#   $out/                libcuda.so.1, libcublas.so.13, libcublasLt.so.13
#   $out/old-driver/     a CUDA 11.3 driver (no cuGraphInstantiateWithFlags,
#                        cuEventElapsedTime_v2, cuFuncGetParamInfo) + cuBLAS 13, no cuBLASLt
#   $out/no-lt/          the driver and cuBLAS without cuBLASLt
#   $out/broken-driver/  a driver without cuMemsetD8Async (a symbol blipcuda requires)
#   $out/test_blas       the stand-in cuBLAS's own tests (textbook examples)
#   $out/test_driver     the stand-in driver's own tests (run with cuda/blipkernels.fatbin)
# The kernels are the emulation's (kernels/emu/bkemu_all.cc, compiled as
# position-independent code); the driver accepts only the fatbin whose
# SHA-256 is that of cuda/blipkernels.fatbin at build time. Incremental: an
# output is rebuilt when a file it depends on is newer. CXX, JOBS, BUILD_DIR
# as for kernels/test/run.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${BUILD_DIR:-$repo/build/standin}
cxx=${CXX:-g++}
mkdir -p "$out/obj" "$out/old-driver" "$out/no-lt" "$out/broken-driver"
flags=(-std=c++20 -O2 -fPIC -pthread -fno-strict-aliasing -fvisibility=hidden -Wall -Wextra -Werror
  -Wno-unknown-pragmas -Wno-unused-parameter)
sha=$(sha256sum "$repo/cuda/blipkernels.fatbin" | cut -c1-64)

# newer OUT DEP...: true when OUT is missing or older than a dependency.
newer() {
  local o=$1 d
  shift
  [ -e "$o" ] || return 0
  for d in "$@"; do [ "$d" -nt "$o" ] && return 0; done
  return 1
}

emu_deps=("$repo"/kernels/*.cu "$repo"/kernels/*.cuh "$repo"/kernels/emu/*)
if newer "$out/obj/bkemu_all.o" "${emu_deps[@]}"; then
  "$cxx" "${flags[@]}" -c "$repo/kernels/emu/bkemu_all.cc" -o "$out/obj/bkemu_all.o.tmp"
  mv "$out/obj/bkemu_all.o.tmp" "$out/obj/bkemu_all.o"
fi

drv_deps=("$here/libcuda.cc" "$here/cuerrors.def" "$repo/cuda/cudadecl.h" "$repo/kernels/emu/bkemu.h"
  "$repo/cuda/blipkernels.fatbin" "$out/obj/bkemu_all.o")
# driver DIR EXTRA_FLAGS...: a libcuda.so.1 into DIR.
driver() {
  local dir=$1
  shift
  if newer "$dir/libcuda.so.1" "${drv_deps[@]}"; then
    "$cxx" "${flags[@]}" -DBKSTANDIN_FATBIN_SHA256="\"$sha\"" "$@" -shared -Wl,-soname,libcuda.so.1 \
      -o "$dir/libcuda.so.1.tmp" "$here/libcuda.cc" "$out/obj/bkemu_all.o" -lm
    mv "$dir/libcuda.so.1.tmp" "$dir/libcuda.so.1"
  fi
}
driver "$out" &
p1=$!
driver "$out/old-driver" -DBKSTANDIN_DRIVER_VERSION=11030 &
p2=$!
driver "$out/broken-driver" -DBKSTANDIN_OMIT_MEMSET_ASYNC &
p3=$!

blas_deps=("$here/cublas.cc" "$repo/cuda/cudadecl.h")
if newer "$out/libcublasLt.so.13" "${blas_deps[@]}"; then
  "$cxx" "${flags[@]}" -DBKSTANDIN_LT -shared -Wl,-soname,libcublasLt.so.13 -o "$out/libcublasLt.so.13.tmp" \
    "$here/cublas.cc" -ldl
  mv "$out/libcublasLt.so.13.tmp" "$out/libcublasLt.so.13"
fi
if newer "$out/libcublas.so.13" "${blas_deps[@]}"; then
  "$cxx" "${flags[@]}" -shared -Wl,-soname,libcublas.so.13 -o "$out/libcublas.so.13.tmp" "$here/cublas.cc" -ldl
  mv "$out/libcublas.so.13.tmp" "$out/libcublas.so.13"
fi
wait $p1 $p2 $p3
if newer "$out/test_blas" "${blas_deps[@]}" "$here/test_blas.cc" "$here/check.h"; then
  "$cxx" -std=c++20 -O1 -Wall -Wextra -Werror -o "$out/test_blas" "$here/test_blas.cc" -ldl -pthread
fi
if newer "$out/test_driver" "$here/test_driver.cc" "$here/check.h" "$repo/cuda/cudadecl.h"; then
  "$cxx" -std=c++20 -O1 -Wall -Wextra -Werror -o "$out/test_driver" "$here/test_driver.cc" -ldl
fi
for d in old-driver no-lt broken-driver; do
  ln -sf ../libcublas.so.13 "$out/$d/libcublas.so.13"
done
ln -sf ../libcuda.so.1 "$out/no-lt/libcuda.so.1"
ln -sf ../libcublasLt.so.13 "$out/broken-driver/libcublasLt.so.13"
echo "$out"
