// kernels/common.cuh — shared device helpers of blipcuda's kernels.
//
// Every kernels/*.cu includes this file first. It compiles two ways:
//   nvcc (GPU)            : plain CUDA C++.
//   g++ -std=c++20 -x c++ : CPU emulation; kernels/emu/cuda_emu.h supplies the
//                           CUDA dialect (see that file).
//
// ABI conventions for every kernel (the host launches them BY NAME through the
// driver API, cuModuleGetFunction + cuLaunchKernel, or bkemu_launch):
//   - `extern "C" __global__`, name bk_<op>[_<variant>]_<dtype> (dtype f32 now;
//     f16/bf16 later reuse the templated bodies through new extern "C" wrappers).
//   - Parameters are plain C types only: float*, const float*, const int*, int*,
//     int, long long, float. Counts are int (elements < 2^31 per tensor);
//     offsets are computed in 64 bits inside.
//   - The launch configuration is a rule written next to each kernel: block
//     size, grid formula, dynamic shared bytes, preconditions. Kernels never
//     trap, assert or print; preconditions the host can violate are checked by
//     the host (the rule says which) or reported through an `int* err` word.
//   - Each kernel is followed by BK_KERNEL(name), which registers it for the
//     emulation's bkemu_launch and is a no-op under nvcc.
//   - Every kernel tolerates any grid at least as large as its rule says where
//     the rule says "grid-stride" (so the host may clamp grids).
#pragma once

#ifndef __CUDACC__
#include "emu/cuda_emu.h"
#endif

#ifdef __CUDACC__
#include <stdint.h>
#define BK_KERNEL(name) static_assert(true, "")
// Dynamic shared memory as a typed pointer: `BK_DYNAMIC_SHARED(float, smem);`
#define BK_DYNAMIC_SHARED(T, name)                              \
  extern __shared__ __align__(16) unsigned char bk_dyn_smem_[]; \
  T* name = reinterpret_cast<T*>(bk_dyn_smem_)
#else
#define BK_KERNEL(name) BKEMU_REGISTER_KERNEL(name)
#define BK_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::bkemu::dynamic_shared())
#endif

namespace bk {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Activation codes shared by the epilogue kernels (bias_act.cu, gemm.cu).
// Values match ops.Activation in Go: 0 = none, 1 = exact erf GELU.
constexpr int kActNone = 0;
constexpr int kActGELU = 1;

__device__ __forceinline__ int ceil_div(int a, int b) { return (a + b - 1) / b; }
__device__ __forceinline__ long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// True when p is 16-byte aligned (may be read/written as float4).
__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---------------------------------------------------------------------------
// Exact GELU, as PyTorch's float32 nn.functional.gelu(approximate='none'):
// 0.5·x·(1 + erf(x/√2)) with erff. For x < -4 the 1 + erf(...) cancels; the
// absolute error there stays below 1e-7·|x| (the outputs are ~0), well inside
// the float32 reference tolerance. erfcf(-x/√2) would avoid the cancellation,
// but PyTorch computes the erf form, which is what the model was checked with.
// ---------------------------------------------------------------------------
__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

__device__ __forceinline__ float apply_act(float x, int act) { return act == kActGELU ? gelu_erf(x) : x; }

// ---------------------------------------------------------------------------
// Warp and block reductions (shuffle based; every lane of the group must call).
// WIDTH is the group size, a power of two <= 32: the result is the reduction
// over each aligned group of WIDTH lanes, and every lane of the group gets it.
// The butterfly order is fixed, so results are deterministic.
// ---------------------------------------------------------------------------
template <int WIDTH = kWarp>
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = WIDTH / 2; m > 0; m >>= 1) v += __shfl_xor_sync(kFullMask, v, m, WIDTH);
  return v;
}

template <int WIDTH = kWarp>
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = WIDTH / 2; m > 0; m >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, m, WIDTH));
  return v;
}

// Sum over the whole block of NT threads (NT a multiple of 32, at most 1024).
// scratch: __shared__ float[33], reusable by the next call without a barrier.
// Ends with every thread holding the same total.
template <int NT>
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  static_assert(NT % kWarp == 0 && NT <= 1024, "block_sum: NT must be a multiple of 32, at most 1024");
  constexpr int NW = NT / kWarp;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < NW ? scratch[lane] : 0.0f;
    t = warp_sum(t);
    if (lane == 0) scratch[32] = t;
  }
  __syncthreads();
  return scratch[32];
}

// ---------------------------------------------------------------------------
// Element types. f32 is the only one instantiated now; f16/bf16 kernels will
// load with to_f32 and store with from_f32, computing in float32.
// ---------------------------------------------------------------------------
__device__ __forceinline__ float to_f32(float x) { return x; }
template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

}  // namespace bk
