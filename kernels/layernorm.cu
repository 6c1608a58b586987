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
//   bk_layernorm_warp_f32   69 registers, no shared memory
//   bk_layernorm_block_f32  48 registers, 132 B static shared
#include "common.cuh"

namespace bk_ln {

using namespace bk;

constexpr int kWarpRows = 4;         // rows per block in the warp variant
constexpr int kWarpThreads = kWarpRows * kWarp;
constexpr int kWarpMaxD = 1024;      // 32 values per lane
constexpr int kBlockThreads = 256;
constexpr int kBlockRegD = 4096;     // 16 values per thread in registers

__device__ __forceinline__ bool all_aligned(const float* out, const float* sum, const float* x, const float* res,
                                            const float* gamma, const float* beta) {
  return aligned16(out) && aligned16(sum) && aligned16(x) && aligned16(res) && aligned16(gamma) &&
         aligned16(beta);
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
__device__ __forceinline__ void ln_warp_row_vec(float* out, float* sum, const float* x, const float* res,
                                                const float* gamma, const float* beta, int D, float eps,
                                                long long row, int lane) {
  constexpr int V = kWarpMaxD / 4 / kWarp;  // float4 per lane: 8
  const int D4 = D / 4;
  const float* xr = x + row * D;
  const float* rr = res ? res + row * D : nullptr;
  float4 v[V];
  const float s0 = xr[0] + (rr ? rr[0] : 0.0f);
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
  float* orow = out + row * D;
  float* srow = sum ? sum + row * D : nullptr;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + i * kWarp;
    if (c < D4) {
      if (srow) store4(srow + 4 * c, v[i]);
      store4(orow + 4 * c, ln_apply4(v[i], mean, rstd, load4(gamma + 4 * c), load4(beta + 4 * c)));
    }
  }
}

__device__ __forceinline__ void ln_warp_row_scalar(float* out, float* sum, const float* x, const float* res,
                                                   const float* gamma, const float* beta, int D, float eps,
                                                   long long row, int lane) {
  constexpr int V = kWarpMaxD / kWarp;  // 32
  const float* xr = x + row * D;
  const float* rr = res ? res + row * D : nullptr;
  float v[V];
  const float s0 = xr[0] + (rr ? rr[0] : 0.0f);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + i * kWarp;
    if (c < D) v[i] = xr[c] + (rr ? rr[c] : 0.0f);
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
  float* orow = out + row * D;
  float* srow = sum ? sum + row * D : nullptr;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = lane + i * kWarp;
    if (c < D) {
      if (srow) srow[c] = v[i];
      orow[c] = (v[i] - mean) * rstd * gamma[c] + beta[c];
    }
  }
}

// ---------------------------------------------------------------------------
// Variant 2: one block per row.
// ---------------------------------------------------------------------------
__device__ __forceinline__ void ln_block_row(float* out, float* sum, const float* x, const float* res,
                                             const float* gamma, const float* beta, int D, float eps,
                                             long long row) {
  __shared__ float scratch[33];
  const int t = threadIdx.x;
  const float* xr = x + row * D;
  const float* rr = res ? res + row * D : nullptr;
  float* orow = out + row * D;
  float* srow = sum ? sum + row * D : nullptr;
  const float s0 = xr[0] + (rr ? rr[0] : 0.0f);
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
      if (c < D) v[i] = xr[c] + (rr ? rr[c] : 0.0f);
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
        if (srow) srow[c] = v[i];
        orow[c] = (v[i] - mean) * rstd * gamma[c] + beta[c];
      }
    }
    return;
  }

  // D > 4096: stream the row three times (it stays in L1/L2).
  float a = 0.0f;
  for (int c = t; c < D; c += kBlockThreads) a += (xr[c] + (rr ? rr[c] : 0.0f)) - s0;
  const float mean = s0 + block_sum<kBlockThreads>(a, scratch) / float(D);
  float q = 0.0f;
  for (int c = t; c < D; c += kBlockThreads) {
    const float d = (xr[c] + (rr ? rr[c] : 0.0f)) - mean;
    q += d * d;
  }
  const float rstd = 1.0f / sqrtf(block_sum<kBlockThreads>(q, scratch) / float(D) + eps);
  for (int c = t; c < D; c += kBlockThreads) {
    const float v = xr[c] + (rr ? rr[c] : 0.0f);
    if (srow) srow[c] = v;
    orow[c] = (v - mean) * rstd * gamma[c] + beta[c];
  }
}

}  // namespace bk_ln

// out, sum, x, residual: [rows, D]; gamma, beta: [D]. sum, residual nullable.
extern "C" __global__ void __launch_bounds__(bk_ln::kWarpThreads)
    bk_layernorm_warp_f32(float* out, float* sum, const float* x, const float* residual, const float* gamma,
                          const float* beta, int rows, int D, float eps) {
  using namespace bk_ln;
  const int lane = threadIdx.x % bk::kWarp;
  const long long row = (long long)blockIdx.x * kWarpRows + threadIdx.x / bk::kWarp;
  if (row >= rows) return;  // whole warps leave; no block barrier follows
  if (D % 4 == 0 && all_aligned(out, sum, x, residual, gamma, beta))
    ln_warp_row_vec(out, sum, x, residual, gamma, beta, D, eps, row, lane);
  else
    ln_warp_row_scalar(out, sum, x, residual, gamma, beta, D, eps, row, lane);
}
BK_KERNEL(bk_layernorm_warp_f32);

// out, sum, x, residual: [rows, D]; gamma, beta: [D]. sum, residual nullable.
extern "C" __global__ void __launch_bounds__(bk_ln::kBlockThreads)
    bk_layernorm_block_f32(float* out, float* sum, const float* x, const float* residual, const float* gamma,
                           const float* beta, int rows, int D, float eps) {
  if ((int)blockIdx.x >= rows) return;  // whole block
  bk_ln::ln_block_row(out, sum, x, residual, gamma, beta, D, eps, (long long)blockIdx.x);
}
BK_KERNEL(bk_layernorm_block_f32);
