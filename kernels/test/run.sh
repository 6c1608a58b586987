#!/usr/bin/env bash
# kernels/test/run.sh — builds the CPU-emulation test harness of kernels/ and runs it.
#
#   bash kernels/test/run.sh            # build (incrementally) and run every test
#   bash kernels/test/run.sh attention  # run tests whose name contains "attention"
#   bash kernels/test/run.sh -v         # print every comparison
#
# Needs only a C++20 compiler (CXX, default g++) and a POSIX shell; no CUDA.
# Every kernels/*.cu is compiled as C++ against kernels/emu/cuda_emu.h, plus the
# emulation runtime and the tests in kernels/test/, and linked into
# $BUILD_DIR/bk_kernel_tests (BUILD_DIR defaults to build/kernels-emu in the
# repository). The unity file kernels/emu/bkemu_all.cc, which the Go side can
# compile as its single cgo translation unit, is checked to list every .cu, is
# compiled, and is linked with test/capi_smoke.c (plain C against bkemu.h).
# The last line printed is "N passed, M failed"; the exit status is non-zero
# on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kernels=$(cd "$here/.." && pwd)
repo=$(cd "$kernels/.." && pwd)
build=${BUILD_DIR:-$repo/build/kernels-emu}
cxx=${CXX:-g++}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
mkdir -p "$build/obj"

# Flags: -O2 (the tests run ~10x slower at -O0), warnings as errors for our
# own code; -Wno-unknown-pragmas because CUDA's "#pragma unroll" means nothing
# to GCC; -fno-strict-aliasing because kernels read float arrays as float4 (the
# vector types are also may_alias).
cxxflags=(-std=c++20 -O2 -g -pthread -fno-strict-aliasing -Wall -Wextra -Werror -Wno-unknown-pragmas
  -Wno-unused-parameter ${BKEMU_CXXFLAGS:-})

# Every .cu must appear in the unity file.
missing=0
for cu in "$kernels"/*.cu; do
  name=$(basename "$cu")
  if ! grep -q "#include \"../$name\"" "$kernels/emu/bkemu_all.cc"; then
    echo "kernels/emu/bkemu_all.cc does not include $name" >&2
    missing=1
  fi
done
[ "$missing" = 0 ] || exit 1

headers=("$kernels"/*.cuh "$kernels"/emu/*.h "$here"/*.h)
newest_header=$(ls -t "${headers[@]}" | head -n1)

sources=("$kernels"/emu/cuda_emu.cc "$kernels"/*.cu "$here"/*.cc)
objects=()
pids=()
fail=0
start=$(date +%s)
for src in "${sources[@]}"; do
  rel=${src#"$kernels"/}
  obj="$build/obj/${rel//\//_}.o"
  objects+=("$obj")
  if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "$obj" -nt "$newest_header" ]; then
    continue
  fi
  lang=()
  case "$src" in *.cu) lang=(-x c++) ;; esac
  "$cxx" "${cxxflags[@]}" "${lang[@]}" -c "$src" -o "$obj" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || fail=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { echo "compilation failed" >&2; exit 1; }

# The unity translation unit, as cgo would build it, linked with a plain C
# program using only bkemu.h (rebuilt when any kernel source changes).
cc=${CC:-gcc}
unity_bin="$build/capi_smoke"
if [ ! -x "$unity_bin" ] || [ -n "$(find "$kernels" -newer "$unity_bin" \( -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -name '*.cc' -o -name '*.c' \) -print -quit)" ]; then
  "$cxx" "${cxxflags[@]}" -c "$kernels/emu/bkemu_all.cc" -o "$build/obj/bkemu_all.o" &
  p1=$!
  "$cc" -std=c11 -O2 -Wall -Wextra -Werror -c "$here/capi_smoke.c" -o "$build/obj/capi_smoke.o" || fail=1
  wait "$p1" || fail=1
  [ "$fail" = 0 ] || { echo "unity build failed" >&2; exit 1; }
  "$cxx" "${cxxflags[@]}" "$build/obj/capi_smoke.o" "$build/obj/bkemu_all.o" -o "$unity_bin"
fi
"$unity_bin" || { echo "C API smoke test failed" >&2; exit 1; }

"$cxx" "${cxxflags[@]}" "${objects[@]}" -o "$build/bk_kernel_tests"
echo "built $build/bk_kernel_tests in $(( $(date +%s) - start )) s"
exec "$build/bk_kernel_tests" "$@"
