// kernels/mma.cuh — warp-level tensor-core instructions (sm_80+) for blipcuda's
// kernels, one source for nvcc and for the CPU emulation.
//
//   bk::mma_m16n8k16_f32<T>(d, a, b)   d += A·B, mma.sync.aligned.m16n8k16.row.col
//                                      .f32.T.T.f32, T = __half (.f16) or
//                                      __nv_bfloat16 (.bf16); d: 4 floats, a: 4
//                                      registers (8 elements), b: 2 (4 elements)
//   bk::ldmatrix_x4(r, p)              ldmatrix.sync.aligned.m8n8.x4.shared.b16
//   bk::ldmatrix_x4_trans(r, p)        ... .x4.trans ...
//   bk::pack2<T>(lo, hi)               two floats → one 32-bit register of T×2
//                                      (round to nearest even; lo in the low half,
//                                      the lower-index element of a fragment pair)
//
// Under nvcc these are inline PTX, compiled only for __CUDA_ARCH__ >= 800
// (sm_80, sm_86, sm_89, sm_90: every architecture the fatbin targets; the
// bodies are empty below sm_80, where no kernel using them is built). Without
// nvcc they are the warp collectives of kernels/emu/cuda_emu.h (section
// "Warp-level matrix instructions"), with identical register semantics; the
// fragment layouts (PTX ISA 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with
// floating point type" and 9.7.14.5.15 "ldmatrix") are written out there and
// pinned by kernels/test/test_emu_mma.cc.
//
// Every lane of the warp must execute each of these together (no divergence),
// and ldmatrix row addresses must be 16-byte aligned shared memory.
// Hopper wgmma (sm_90a) is not used: the fatbin's sm_90 code is plain sm_90,
// where mma.sync runs at the Ampere rate.
#pragma once

#include "common.cuh"

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace bk {

template <class T>
struct MmaKind;
template <>
struct MmaKind<__half> {
  static constexpr bool bf16 = false;
};
template <>
struct MmaKind<__nv_bfloat16> {
  static constexpr bool bf16 = true;
};

// d = A·B + d (d is both C and D).
template <class T>
__device__ __forceinline__ void mma_m16n8k16_f32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef __CUDACC__
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (MmaKind<T>::bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#endif
#else
  const unsigned b[2] = {b0, b1};
  ::bkemu::mma_m16n8k16_f32(d, a, b, d, MmaKind<T>::bf16 ? ::bkemu::kMmaBF16 : ::bkemu::kMmaF16);
#endif
}

// Lanes 8j..8j+7 pass the addresses of rows 0..7 of matrix j (j = 0..3); r[j]
// receives the lane's fragment of matrix j.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
#ifdef __CUDACC__
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
#else
  ::bkemu::ldmatrix_m8n8<4, false>(r, smem_row);
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
#ifdef __CUDACC__
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
#else
  ::bkemu::ldmatrix_m8n8<4, true>(r, smem_row);
#endif
}

// 16-bit patterns of T (round to nearest even from float) and back.
template <class T>
__device__ __forceinline__ unsigned short f32_to_bits(float x);
template <>
__device__ __forceinline__ unsigned short f32_to_bits<__half>(float x) {
  return __half_as_ushort(__float2half_rn(x));
}
template <>
__device__ __forceinline__ unsigned short f32_to_bits<__nv_bfloat16>(float x) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}
template <class T>
__device__ __forceinline__ float bits_to_f32(unsigned short b);
template <>
__device__ __forceinline__ float bits_to_f32<__half>(unsigned short b) {
  return __half2float(__ushort_as_half(b));
}
template <>
__device__ __forceinline__ float bits_to_f32<__nv_bfloat16>(unsigned short b) {
  return __bfloat162float(__ushort_as_bfloat16(b));
}

template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return uint32_t(f32_to_bits<T>(lo)) | (uint32_t(f32_to_bits<T>(hi)) << 16);
}

}  // namespace bk
