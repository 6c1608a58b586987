// kernels/gemm.cu — fallback SGEMM with a fused bias + activation epilogue.
//
//   C[z][m, n] = act( Σ_k A[z][m, k] · B[z][n, k] + bias[n] )
//   A: [M, K] row-major (leading dimension lda), B: [N, K] row-major (ldb) —
//   PyTorch's Linear weight layout, so C = A·Bᵀ —, C: [M, N] (ldc).
//   Batch z = blockIdx.z with element strides strideA/B/C (0 broadcasts an
//   operand). bias: [N] or NULL; act: 0 none, 1 exact erf GELU.
//
// Serves ops.Linear (x·wᵀ + b, GELU fused) and the patch GEMM of ops.PatchEmbed
// when cuBLAS/cuBLASLt is not available; on a GPU the host normally uses
// cuBLASLt with the BIAS / GELU_BIAS epilogues. float32 FFMA throughout (no
// TF32), so it matches the CPU reference's float32 sums up to summation order:
// NMSE ~1e-13 for K = 3072 on uniform inputs.
//
// Algorithm (classic SIMT SGEMM): a BM×BN tile of C per 256-thread block; K in
// steps of BK. Each step loads an A tile (BM×BK) and a B tile (BN×BK) from
// global memory — one float4 along K per thread when aligned — into registers,
// then stores them transposed (k-major) into double-buffered shared memory, so
// the next tile's global loads overlap this tile's arithmetic and one
// __syncthreads per step suffices. Each thread keeps a TM×TN accumulator in
// registers, reading A and B fragments as float4 from shared memory (rows and
// columns split in groups of 4 spaced BM/2 (BN/2) apart, so the 16 threads
// along N read 256 contiguous bytes: no bank conflicts). Edge tiles are
// zero-filled on load and masked on store: any M, N, K ≥ 0 works.
//
// Variants:
//   1. bk_gemm_nt_f32       — BM = BN = 128, BK = 8,  TM = TN = 8. Large GEMMs.
//   2. bk_gemm_nt_small_f32 — BM = BN = 64,  BK = 16, TM = TN = 4. For grids the
//      large tile cannot fill (text rows M ≈ 35·B, N = 768: 4× more blocks).
//   Inside both: float4 global loads when lda (ldb) and strideA (strideB) are
//   multiples of 4 and A (B) is 16-byte aligned, else scalar loads; float4
//   stores when ldc, strideC are multiples of 4 and C is aligned.
//   Host rule: ceil(M/128)·ceil(N/128)·batch ≥ number of SMs → variant 1,
//   else variant 2 (both are always correct).
//
// Element types: bk_gemm_nt[_small]_{f32,f16,bf16}, one templated body, same
// parameters; in _f16/_bf16 C, A, B and bias are __half* / __nv_bfloat16*
// (ld* and stride* still count elements). Tiles are converted to float32 on
// the global load (shared memory and the FFMA loop are the f32 kernel's), the
// accumulator is float32, bias + GELU are applied in float32 and the result is
// rounded once (RNE) at the store. Vector loads/stores are 4 elements (8 bytes
// for 16-bit types) under the same rules with 4·sizeof(T)-byte alignment.
// No tensor cores: this is a correctness fallback, not the fast half GEMM.
// Measured (emulation, vs float64 on the rounded inputs, K up to 3072):
// NMSE ≤ 4.5e-8 (f16) / 3.0e-6 (bf16) on multi-element outputs, ≤ 8.2e-8 /
// 1.2e-5 on 1×1 outputs (one rounding error squared) — output rounding only.
//
// Launch rules (host):
//   bk_gemm_nt_f32(float* C, const float* A, const float* B, const float* bias,
//                  int M, int N, int K, int lda, int ldb, int ldc,
//                  long long strideA, long long strideB, long long strideC, int act)
//     block = (256,1,1); grid = (ceil(N/128), ceil(M/128), batch); shared = 0 (static 16 896 B).
//   bk_gemm_nt_small_f32(same parameters)
//     block = (256,1,1); grid = (ceil(N/64), ceil(M/64), batch); shared = 0 (static 17 408 B).
//   Preconditions: M, N ≥ 1, K ≥ 0 (K = 0 gives act(bias)); lda, ldb ≥ K;
//   ldc ≥ N; batch ≤ 65535; grid.y ≤ 65535 (M ≤ 8 388 480 for variant 1);
//   C must not overlap A, B or bias.
//
// Resources (nvcc 13.0 -O3 --resource-usage, sm_90; no spills on sm_80..sm_90):
//   bk_gemm_nt_f32        127 registers (2 blocks = 512 threads per SM), 16 896 B static shared
//   bk_gemm_nt_small_f32   63 registers, 17 408 B static shared
//   f16 and bf16: the same (127 / 63 registers, same static shared).
#include "common.cuh"

namespace bk_gemm {

using namespace bk;

// Loads 4 consecutive k of one row (zero beyond the edges).
template <class T>
__device__ __forceinline__ float4 load_k4(const T* base, int ld, int row, int rows, int k, int K, bool vec) {
  float4 r = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (row < rows) {
    const T* p = base + (long long)row * ld + k;
    if (vec && k + 3 < K) {
      r = load4(p);
    } else {
      if (k < K) r.x = to_f32(p[0]);
      if (k + 1 < K) r.y = to_f32(p[1]);
      if (k + 2 < K) r.z = to_f32(p[2]);
      if (k + 3 < K) r.w = to_f32(p[3]);
    }
  }
  return r;
}

template <int BM, int BN, int BK, int TM, int TN, class T>
__device__ __forceinline__ void gemm_nt(T* C, const T* A, const T* B, const T* bias, int M, int N, int K, int lda,
                                        int ldb, int ldc, long long strideA, long long strideB, long long strideC,
                                        int act) {
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int TX = BN / TN;  // threads along N
  constexpr int SA = BM + 4;   // shared row stride (floats) of the k-major A tile
  constexpr int SB = BN + 4;
  constexpr int KQ = BK / 4;  // float4 chunks per tile row
  constexpr int CA = BM * KQ / NT, CB = BN * KQ / NT;
  constexpr int GM = TM / 4, GN = TN / 4;  // groups of 4 rows / columns per thread
  static_assert(NT == 256, "gemm tiles are laid out for 256 threads");
  static_assert(BM * KQ % NT == 0 && BN * KQ % NT == 0 && TM % 4 == 0 && TN % 4 == 0, "tile shape");

  __shared__ __align__(16) float As[2][BK * SA];
  __shared__ __align__(16) float Bs[2][BK * SB];

  const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
  const long long z = blockIdx.z;
  A += z * strideA;
  B += z * strideB;
  C += z * strideC;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const bool vecA = lda % 4 == 0 && strideA % 4 == 0 && vec_aligned<T>(A);
  const bool vecB = ldb % 4 == 0 && strideB % 4 == 0 && vec_aligned<T>(B);
  const bool vecC = ldc % 4 == 0 && strideC % 4 == 0 && vec_aligned<T>(C);

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  float4 ra[CA], rb[CB];
  const int ntiles = (K + BK - 1) / BK;

  // Global → registers for the tile starting at k0.
#define BK_GEMM_GLOAD(k0)                                                                           \
  do {                                                                                              \
    _Pragma("unroll") for (int e = 0; e < CA; ++e) {                                                \
      const int c = tid + e * NT;                                                                   \
      ra[e] = load_k4(A, lda, m0 + c / KQ, M, (k0) + (c % KQ) * 4, K, vecA);                        \
    }                                                                                               \
    _Pragma("unroll") for (int e = 0; e < CB; ++e) {                                                \
      const int c = tid + e * NT;                                                                   \
      rb[e] = load_k4(B, ldb, n0 + c / KQ, N, (k0) + (c % KQ) * 4, K, vecB);                        \
    }                                                                                               \
  } while (0)
  // Registers → shared buffer `buf`, transposed to k-major.
#define BK_GEMM_SSTORE(buf)                                                                         \
  do {                                                                                              \
    _Pragma("unroll") for (int e = 0; e < CA; ++e) {                                                \
      const int c = tid + e * NT, r = c / KQ, k = (c % KQ) * 4;                                     \
      As[buf][(k + 0) * SA + r] = ra[e].x;                                                          \
      As[buf][(k + 1) * SA + r] = ra[e].y;                                                          \
      As[buf][(k + 2) * SA + r] = ra[e].z;                                                          \
      As[buf][(k + 3) * SA + r] = ra[e].w;                                                          \
    }                                                                                               \
    _Pragma("unroll") for (int e = 0; e < CB; ++e) {                                                \
      const int c = tid + e * NT, r = c / KQ, k = (c % KQ) * 4;                                     \
      Bs[buf][(k + 0) * SB + r] = rb[e].x;                                                          \
      Bs[buf][(k + 1) * SB + r] = rb[e].y;                                                          \
      Bs[buf][(k + 2) * SB + r] = rb[e].z;                                                          \
      Bs[buf][(k + 3) * SB + r] = rb[e].w;                                                          \
    }                                                                                               \
  } while (0)

  if (ntiles > 0) {
    BK_GEMM_GLOAD(0);
    BK_GEMM_SSTORE(0);
    __syncthreads();
  }
  for (int kt = 0; kt < ntiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < ntiles;
    if (more) BK_GEMM_GLOAD((kt + 1) * BK);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[TM], b[TN];
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        const float4 t = load4(&As[cur][kk * SA + g * (BM / GM) + ty * 4]);
        a[4 * g + 0] = t.x;
        a[4 * g + 1] = t.y;
        a[4 * g + 2] = t.z;
        a[4 * g + 3] = t.w;
      }
#pragma unroll
      for (int g = 0; g < GN; ++g) {
        const float4 t = load4(&Bs[cur][kk * SB + g * (BN / GN) + tx * 4]);
        b[4 * g + 0] = t.x;
        b[4 * g + 1] = t.y;
        b[4 * g + 2] = t.z;
        b[4 * g + 3] = t.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (more) BK_GEMM_SSTORE(cur ^ 1);
    __syncthreads();
  }
#undef BK_GEMM_GLOAD
#undef BK_GEMM_SSTORE

  // Epilogue: + bias, activation, masked store.
#pragma unroll
  for (int gj = 0; gj < GN; ++gj) {
    const int nb = n0 + gj * (BN / GN) + tx * 4;
    float bv[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) bv[e] = (bias != nullptr && nb + e < N) ? to_f32(bias[nb + e]) : 0.0f;
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int m = m0 + (i / 4) * (BM / GM) + ty * 4 + (i % 4);
      if (m >= M) continue;
      T* crow = C + (long long)m * ldc;
      float o[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) o[e] = apply_act(acc[i][4 * gj + e] + bv[e], act);
      if (vecC && nb + 3 < N) {
        store4(crow + nb, make_float4(o[0], o[1], o[2], o[3]));
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (nb + e < N) crow[nb + e] = from_f32<T>(o[e]);
      }
    }
  }
}

}  // namespace bk_gemm

// C: [batch][M, N] (ldc); A: [batch][M, K] (lda); B: [batch][N, K] (ldb); bias: [N] or NULL.
// NAME: 128×128 tiles; NAME_SMALL: the same contract with 64×64 tiles.
#define BK_GEMM_NT(NAME, NAME_SMALL, T)                                                                          \
  extern "C" __global__ void __launch_bounds__(256)                                                             \
      NAME(T* C, const T* A, const T* B, const T* bias, int M, int N, int K, int lda, int ldb, int ldc,         \
           long long strideA, long long strideB, long long strideC, int act) {                                  \
    bk_gemm::gemm_nt<128, 128, 8, 8, 8, T>(C, A, B, bias, M, N, K, lda, ldb, ldc, strideA, strideB, strideC,    \
                                           act);                                                                 \
  }                                                                                                              \
  BK_KERNEL(NAME);                                                                                               \
  extern "C" __global__ void __launch_bounds__(256)                                                             \
      NAME_SMALL(T* C, const T* A, const T* B, const T* bias, int M, int N, int K, int lda, int ldb, int ldc,   \
                 long long strideA, long long strideB, long long strideC, int act) {                            \
    bk_gemm::gemm_nt<64, 64, 16, 4, 4, T>(C, A, B, bias, M, N, K, lda, ldb, ldc, strideA, strideB, strideC,     \
                                          act);                                                                  \
  }                                                                                                              \
  BK_KERNEL(NAME_SMALL)

BK_GEMM_NT(bk_gemm_nt_f32, bk_gemm_nt_small_f32, float);
BK_GEMM_NT(bk_gemm_nt_f16, bk_gemm_nt_small_f16, __half);
BK_GEMM_NT(bk_gemm_nt_bf16, bk_gemm_nt_small_bf16, __nv_bfloat16);
