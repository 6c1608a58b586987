// kernels/common.cuh — shared device helpers of blipcuda's kernels.
//
// Every kernels/*.cu includes this file first. It compiles two ways:
//   nvcc (GPU)            : plain CUDA C++.
//   g++ -std=c++20 -x c++ : CPU emulation; kernels/emu/cuda_emu.h supplies the
//                           CUDA dialect (see that file).
//
// ABI conventions for every kernel (the host launches them BY NAME through the
// driver API, cuModuleGetFunction + cuLaunchKernel, or bkemu_launch):
//   - `extern "C" __global__`, name bk_<op>[_<variant>]_<dtype>, dtype f32, f16
//     or bf16: one templated body, one extern "C" wrapper per dtype, with the
//     same parameter list except the tensor pointer types.
//   - Parameters are plain C types only: T*, const T* (T = float, __half or
//     __nv_bfloat16 for the tensors of the _f32, _f16, _bf16 variant), const
//     int*, int*, int, long long, float (scalars such as eps and scale stay
//     float in every variant). Counts are int (elements < 2^31 per tensor);
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
#include <cuda_bf16.h>
#include <cuda_fp16.h>
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
// Element types. Every kernel exists for three storage types (the whole
// backend uses one for every tensor): float (_f32), __half (_f16) and
// __nv_bfloat16 (_bf16). Bodies are templated on the element type T and
// compute in float32: load with to_f32 (exact), store with from_f32<T> (one
// round-to-nearest-even conversion; identity for float).
// ---------------------------------------------------------------------------
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

// Four 16-bit elements as one 8-byte access (ld/st.64), converted to/from
// float4. p must be 8-byte aligned (vec_aligned<T>).
struct alignas(8) Half4 {
  __half2 lo, hi;
};
struct alignas(8) Bf164 {
  __nv_bfloat162 lo, hi;
};
// Loaded as two 32-bit words, each converted as a __half2 (the same for
// bfloat16 below): with a Half4 value load ptxas spilled 8 bytes in
// bk_attention_d32_f16 on sm_86/sm_89.
__device__ __forceinline__ float4 load4(const __half* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  __half2 lo, hi;
  memcpy(&lo, &u.x, 4);
  memcpy(&hi, &u.y, 4);
  const float2 a = __half22float2(lo), b = __half22float2(hi);
  return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ void store4(__half* p, float4 v) {
  Half4 h;
  h.lo = __floats2half2_rn(v.x, v.y);
  h.hi = __floats2half2_rn(v.z, v.w);
  *reinterpret_cast<Half4*>(p) = h;
}
// bfloat16 → float32 is exact bit placement (the 16 bits become the high half
// of the float), done on the 32-bit words: no 16-bit registers (ptxas spilled
// those in bk_attention_d32_bf16 with __bfloat1622float2).
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                     __uint_as_float(u.y & 0xffff0000u));
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, float4 v) {
  Bf164 h;
  h.lo = __floats2bfloat162_rn(v.x, v.y);
  h.hi = __floats2bfloat162_rn(v.z, v.w);
  *reinterpret_cast<Bf164*>(p) = h;
}

// True when p may be accessed as 4 consecutive elements of T at once
// (load4/store4): aligned to 4·sizeof(T) bytes (16 for float, 8 for the
// 16-bit types). NULL counts as aligned.
template <class T>
__device__ __forceinline__ bool vec_aligned(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & (4 * sizeof(T) - 1)) == 0;
}

// Raw copies (no conversion, bit-exact for every type, NaN payloads included):
// 16 bytes = 16 / sizeof(T) elements at once; both pointers 16-byte aligned.
template <class T>
constexpr int kCopyVec = int(16 / sizeof(T));
__device__ __forceinline__ void copy16(void* dst, const void* src) {
  *reinterpret_cast<float4*>(dst) = *reinterpret_cast<const float4*>(src);
}
// 4 elements of T at once (float4 for float, 8 bytes for 16-bit types); both
// pointers vec_aligned<T>.
template <class T>
__device__ __forceinline__ void copy4(T* dst, const T* src) {
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float4*>(dst) = *reinterpret_cast<const float4*>(src);
  } else {
    *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(src);
  }
}

}  // namespace bk
