// kernels/layernorm.cu — LayerNorm and fused residual-add + LayerNorm.
//
// Computes, for every row r of D elements:
//   s   = x[r] + residual[r]            (residual NULL: s = x[r])
//   sum[r] = s                          (only when sum != NULL)
//   out[r] = (s − mean(s)) · rstd · gamma + beta,
//   mean = Σ s / D,  var = Σ (s − mean)² / D (biased, as PyTorch),
//   rstd = 1 / sqrt(var + eps)
// which serves ops.LayerNorm (residual = sum = NULL) and ops.AddLayerNorm
// (BERT post-LN: out only; ViT pre-LN residual stream: sum and out).
//
// Numerics: the row is held in registers; statistics are float32 and
// two-pass (mean first, then the centred sum of squares), with the mean
// accumulated as Σ (s − s₀) + s₀ where s₀ is the row's first element: this
// makes a constant row give exactly mean = s₀ and var = 0 (out = beta even with
// eps = 1e-12), and loses nothing when |mean| ≫ std. Reductions are shuffle
// trees in a fixed order (deterministic). sum[r] is bit-identical to the
// float32 x + residual of the reference.
//
// Element types: bk_layernorm_{warp,block}_{f32,f16,bf16}, one templated
// body. In _f16/_bf16 every tensor (out, sum, x, residual, gamma, beta) is
// __half* / __nv_bfloat16*; eps stays float. Values are converted to float32
// on load; s = x + residual, the statistics and the normalisation are float32
// exactly as in _f32; sum[r] = RNE(float32 s) and out = RNE(float32 result),
// one rounding each (out is computed from the unrounded float32 s). Vector
// path: 4 elements per access (8 bytes for 16-bit types) when every pointer is
// 4·sizeof(T)-aligned and D % 4 == 0. Measured (emulation, vs float64 on the
// rounded inputs): NMSE ≤ 6.0e-8 (f16), ≤ 3.0e-6 (bf16): output rounding only.
//
// Aliasing: out may alias x or residual; sum may alias x or residual; out must
// not alias sum. (Each element is read by the thread that later writes it, and
// every read happens before the row's reductions complete.)
//
// Variants (both registered; the host picks by D):
//   1. bk_layernorm_warp_f32 — one warp per row, 4 rows per 128-thread block,
//      D ≤ 1024 (up to 32 values per lane in registers). For BLIP's D = 768
//      this is the fast path: no shared memory, no __syncthreads, 24 values per
//      lane loaded as 6 float4 when the rows are 16-byte aligned and D % 4 == 0
//      (checked inside; otherwise scalar loads, same results).
//   2. bk_layernorm_block_f32 — one 256-thread block per row, any D ≥ 1.
//      D ≤ 4096: the row lives in registers (≤ 16 per thread), one read of
//      global memory. D > 4096: three passes over global memory (mean,
//      variance, write); same maths.
//
// Launch rules (host):
//   bk_layernorm_warp_f32(out, sum, x, residual, gamma, beta, rows, D, eps)
//     block = (128,1,1); grid = (ceil(rows/4),1,1); shared = 0.
//     Preconditions: 1 ≤ D ≤ 1024, rows ≥ 1 (host skips rows = 0).
//   bk_layernorm_block_f32(same parameters)
//     block = (256,1,1); grid = (rows,1,1); shared = 0.
//     Preconditions: D ≥ 1, 1 ≤ rows ≤ 2^31−1.
//   Pointers: x, gamma, beta, out non-NULL; residual and sum may be NULL.
//   Host rule: D ≤ 1024 → warp variant, else block variant.
//
// Resources (nvcc 13.0 -O3 --resource-usage, sm_90; no spills on sm_80..sm_90):
//   bk_layernorm_warp_f32   69 registers, no shared memory (f16 / bf16: 64 / 64)
//   bk_layernorm_block_f32  48 registers, 132 B static shared (f16 / bf16: 48 / 48)
#include "common.cuh"

namespace bk_ln {

using namespace bk;

constexpr int kWarpRows = 4;         // rows per block in the warp variant
constexpr int kWarpThreads = kWarpRows * kWarp;
constexpr int kWarpMaxD = 1024;      // 32 values per lane
constexpr int kBlockThreads = 256;
constexpr int kBlockRegD = 4096;     // 16 values per thread in registers

template <class T>
__device__ __forceinline__ bool all_aligned(const T* out, const T* sum, const T* x, const T* res, const T* gamma,
                                            const T* beta) {
  return vec_aligned<T>(out) && vec_aligned<T>(sum) && vec_aligned<T>(x) && vec_aligned<T>(res) &&
         vec_aligned<T>(gamma) && vec_aligned<T>(beta);
}

// Final write of one float4 / one float.
__device__ __forceinline__ float4 ln_apply4(float4 v, float mean, float rstd, float4 g, float4 b) {
  float4 o;
  o.x = (v.x - mean) * rstd * g.x + b.x;
  o.y = (v.y - mean) * rstd * g.y + b.y;
  o.z = (v.z - mean) * rstd * g.z + b.z;
  o.w = (v.w - mean) * rstd * g.w + b.w;
  return o;
}

// ---------------------------------------------------------------------------
// Variant 1: one warp per row.
// ---------------------------------------------------------------------------
template <class T>
__device__ __forceinline__ void ln_warp_row_vec(T* out, T* sum, const T* x, const T* res, const T* gamma,
                                                const T* beta, int D, float eps, long long row, int lane) {
  constexpr int V = kWarpMaxD / 4 / kWarp;  // float4 per lane: 8
  const int D4 = D / 4;
  const T* xr = x + row * D;
  const T* rr = res ? res + row * D : nullptr;
  float4 v[V];
  const float s0 = to_f32(xr[0]) + (rr ? to_f32(rr[0]) : 0.0f);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + i * kWarp;
    if (c < D4) {
      v[i] = load4(xr + 4 * c);
      if (rr) {
        const float4 r = load4(rr + 4 * c);
        v[i].x += r.x;
        v[i].y += r.y;
        v[i].z += r.z;
        v[i].w += r.w;
      }
    }
  }
  float a = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i)
    if (lane + i * kWarp < D4) a += ((v[i].x - s0) + (v[i].y - s0)) + ((v[i].z - s0) + (v[i].w - s0));
  const float mean = s0 + warp_sum(a) / float(D);
  float q = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    if (lane + i * kWarp < D4) {
      const float dx = v[i].x - mean, dy = v[i].y - mean, dz = v[i].z - mean, dw = v[i].w - mean;
      q += (dx * dx + dy * dy) + (dz * dz + dw * dw);
    }
  }
  const float rstd = 1.0f / sqrtf(warp_sum(q) / float(D) + eps);
  T* orow = out + row * D;
  T* srow = sum ? sum + row * D : nullptr;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + i * kWarp;
    if (c < D4) {
      if (srow) store4(srow + 4 * c, v[i]);
      store4(orow + 4 * c, ln_apply4(v[i], mean, rstd, load4(gamma + 4 * c), load4(beta + 4 * c)));
    }
  }
}

template <class T>
__device__ __forceinline__ void ln_warp_row_scalar(T* out, T* sum, const T* x, const T* res, const T* gamma,
                                                   const T* beta, int D, float eps, long long row, int lane) {
  constexpr int V = kWarpMaxD / kWarp;  // 32
  const T* xr = x + row * D;
  const T* rr = res ? res + row * D : nullptr;
  float v[V];
  const float s0 = to_f32(xr[0]) + (rr ? to_f32(rr[0]) : 0.0f);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + i * kWarp;
    if (c < D) v[i] = to_f32(xr[c]) + (rr ? to_f32(rr[c]) : 0.0f);
  }
  float a = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i)
    if (lane + i * kWarp < D) a += v[i] - s0;
  const float mean = s0 + warp_sum(a) / float(D);
  float q = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    if (lane + i * kWarp < D) {
      const float d = v[i] - mean;
      q += d * d;
    }
  }
  const float rstd = 1.0f / sqrtf(warp_sum(q) / float(D) + eps);
  T* orow = out + row * D;
  T* srow = sum ? sum + row * D : nullptr;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + i * kWarp;
    if (c < D) {
      if (srow) srow[c] = from_f32<T>(v[i]);
      orow[c] = from_f32<T>((v[i] - mean) * rstd * to_f32(gamma[c]) + to_f32(beta[c]));
    }
  }
}

// ---------------------------------------------------------------------------
// Variant 2: one block per row.
// ---------------------------------------------------------------------------
template <class T>
__device__ __forceinline__ void ln_block_row(T* out, T* sum, const T* x, const T* res, const T* gamma,
                                             const T* beta, int D, float eps, long long row) {
  __shared__ float scratch[33];
  const int t = threadIdx.x;
  const T* xr = x + row * D;
  const T* rr = res ? res + row * D : nullptr;
  T* orow = out + row * D;
  T* srow = sum ? sum + row * D : nullptr;
  const float s0 = to_f32(xr[0]) + (rr ? to_f32(rr[0]) : 0.0f);
  const bool vec = (D % 4 == 0) && all_aligned(out, sum, x, res, gamma, beta);

  if (D <= kBlockRegD && vec) {
    constexpr int V = kBlockRegD / 4 / kBlockThreads;  // 4 float4 per thread
    const int D4 = D / 4;
    float4 v[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int c = t + i * kBlockThreads;
      if (c < D4) {
        v[i] = load4(xr + 4 * c);
        if (rr) {
          const float4 r = load4(rr + 4 * c);
          v[i].x += r.x;
          v[i].y += r.y;
          v[i].z += r.z;
          v[i].w += r.w;
        }
      }
    }
    float a = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (t + i * kBlockThreads < D4) a += ((v[i].x - s0) + (v[i].y - s0)) + ((v[i].z - s0) + (v[i].w - s0));
    const float mean = s0 + block_sum<kBlockThreads>(a, scratch) / float(D);
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i) {
      if (t + i * kBlockThreads < D4) {
        const float dx = v[i].x - mean, dy = v[i].y - mean, dz = v[i].z - mean, dw = v[i].w - mean;
        q += (dx * dx + dy * dy) + (dz * dz + dw * dw);
      }
    }
    const float rstd = 1.0f / sqrtf(block_sum<kBlockThreads>(q, scratch) / float(D) + eps);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int c = t + i * kBlockThreads;
      if (c < D4) {
        if (srow) store4(srow + 4 * c, v[i]);
        store4(orow + 4 * c, ln_apply4(v[i], mean, rstd, load4(gamma + 4 * c), load4(beta + 4 * c)));
      }
    }
    return;
  }

  if (D <= kBlockRegD) {
    constexpr int V = kBlockRegD / kBlockThreads;  // 16
    float v[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int c = t + i * kBlockThreads;
      if (c < D) v[i] = to_f32(xr[c]) + (rr ? to_f32(rr[c]) : 0.0f);
    }
    float a = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (t + i * kBlockThreads < D) a += v[i] - s0;
    const float mean = s0 + block_sum<kBlockThreads>(a, scratch) / float(D);
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i) {
      if (t + i * kBlockThreads < D) {
        const float d = v[i] - mean;
        q += d * d;
      }
    }
    const float rstd = 1.0f / sqrtf(block_sum<kBlockThreads>(q, scratch) / float(D) + eps);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int c = t + i * kBlockThreads;
      if (c < D) {
        if (srow) srow[c] = from_f32<T>(v[i]);
        orow[c] = from_f32<T>((v[i] - mean) * rstd * to_f32(gamma[c]) + to_f32(beta[c]));
      }
    }
    return;
  }

  // D > 4096: stream the row three times (it stays in L1/L2).
  float a = 0.0f;
  for (int c = t; c < D; c += kBlockThreads) a += (to_f32(xr[c]) + (rr ? to_f32(rr[c]) : 0.0f)) - s0;
  const float mean = s0 + block_sum<kBlockThreads>(a, scratch) / float(D);
  float q = 0.0f;
  for (int c = t; c < D; c += kBlockThreads) {
    const float d = (to_f32(xr[c]) + (rr ? to_f32(rr[c]) : 0.0f)) - mean;
    q += d * d;
  }
  const float rstd = 1.0f / sqrtf(block_sum<kBlockThreads>(q, scratch) / float(D) + eps);
  for (int c = t; c < D; c += kBlockThreads) {
    const float v = to_f32(xr[c]) + (rr ? to_f32(rr[c]) : 0.0f);
    if (srow) srow[c] = from_f32<T>(v);
    orow[c] = from_f32<T>((v - mean) * rstd * to_f32(gamma[c]) + to_f32(beta[c]));
  }
}

// Row drivers shared by the dtype wrappers below.
template <class T>
__device__ __forceinline__ void ln_warp(T* out, T* sum, const T* x, const T* residual, const T* gamma, const T* beta,
                                        int rows, int D, float eps) {
  const int lane = threadIdx.x % kWarp;
  const long long row = (long long)blockIdx.x * kWarpRows + threadIdx.x / kWarp;
  if (row >= rows) return;  // whole warps leave; no block barrier follows
  if (D % 4 == 0 && all_aligned(out, sum, x, residual, gamma, beta))
    ln_warp_row_vec(out, sum, x, residual, gamma, beta, D, eps, row, lane);
  else
    ln_warp_row_scalar(out, sum, x, residual, gamma, beta, D, eps, row, lane);
}

template <class T>
__device__ __forceinline__ void ln_block(T* out, T* sum, const T* x, const T* residual, const T* gamma,
                                         const T* beta, int rows, int D, float eps) {
  if ((int)blockIdx.x >= rows) return;  // whole block
  ln_block_row(out, sum, x, residual, gamma, beta, D, eps, (long long)blockIdx.x);
}

}  // namespace bk_ln

// out, sum, x, residual: [rows, D]; gamma, beta: [D]. sum, residual nullable.
#define BK_LAYERNORM_WARP(NAME, T)                                                                            \
  extern "C" __global__ void __launch_bounds__(bk_ln::kWarpThreads)                                          \
      NAME(T* out, T* sum, const T* x, const T* residual, const T* gamma, const T* beta, int rows, int D,    \
           float eps) {                                                                                       \
    bk_ln::ln_warp<T>(out, sum, x, residual, gamma, beta, rows, D, eps);                                     \
  }                                                                                                           \
  BK_KERNEL(NAME)
#define BK_LAYERNORM_BLOCK(NAME, T)                                                                           \
  extern "C" __global__ void __launch_bounds__(bk_ln::kBlockThreads)                                         \
      NAME(T* out, T* sum, const T* x, const T* residual, const T* gamma, const T* beta, int rows, int D,    \
           float eps) {                                                                                       \
    bk_ln::ln_block<T>(out, sum, x, residual, gamma, beta, rows, D, eps);                                    \
  }                                                                                                           \
  BK_KERNEL(NAME)

BK_LAYERNORM_WARP(bk_layernorm_warp_f32, float);
BK_LAYERNORM_WARP(bk_layernorm_warp_f16, __half);
BK_LAYERNORM_WARP(bk_layernorm_warp_bf16, __nv_bfloat16);
BK_LAYERNORM_BLOCK(bk_layernorm_block_f32, float);
BK_LAYERNORM_BLOCK(bk_layernorm_block_f16, __half);
BK_LAYERNORM_BLOCK(bk_layernorm_block_bf16, __nv_bfloat16);
