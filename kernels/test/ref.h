// kernels/test/ref.h — float64 references and input generators shared by the
// float32 and float16/bfloat16 kernel tests. Every reference takes float
// inputs (for the 16-bit kernels: the rounded values, kept as float) and
// returns doubles for CHECK_CLOSE / CHECK_ROUNDED.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "harness.h"

namespace bkt {

// Exact GELU (erf form) in float64.
inline double gelu64(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// Padding mask like BERT's: (1 − attention_mask)·(−10000) with per-batch
// lengths; row 0 is unmasked, row b > 0 keeps 1 + r.below(Lk) keys.
inline std::vector<float> padding_mask(int rows, int Lk, Rng& r) {
  std::vector<float> m(size_t(rows) * Lk, 0.0f);
  for (int b = 0; b < rows; ++b) {
    const int len = b == 0 ? Lk : 1 + r.below(Lk);
    for (int j = len; j < Lk; ++j) m[size_t(b) * Lk + j] = -10000.0f;
  }
  return m;
}

// float64 softmax(q·kᵀ·scale + mask)·v, out [B, Lq, H·Dh]. Row (b, i) of head
// h reads q[(b·Lq + i)·ldq + h·Dh ..], k/v rows of batch kv_batch == 1 ? 0 : b
// (strides ldk, ldv), and mask row mask_batch == 1 ? 0 : b of a [·, Lk] mask
// (nullptr: none).
//
// The score is formed in float32 as the kernels and the Go reference form it:
// float32(dot)·scale, rounded, + mask, rounded. With a −10000 mask that
// rounding (ulp(10000) ≈ 1e-3) is what the softmax of a fully masked row sees,
// so a float64 score would not be the right target. A row whose every score
// is −inf gives NaN here (the kernels document 0 there; tests check it
// separately).
inline std::vector<double> attention_ref(int B, int H, int Lq, int Lk, int Dh, int kv_batch, int mask_batch,
                                         const float* q, const float* k, const float* v, const float* mask, int ldq,
                                         int ldk, int ldv, float scale) {
  const int W = H * Dh;
  std::vector<double> out(size_t(B) * Lq * W, 0.0);
  std::vector<double> s(Lk);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < Lq; ++i) {
        const int kb = kv_batch == 1 ? 0 : b;
        const float* qi = q + (size_t(b) * Lq + i) * ldq + size_t(h) * Dh;
        double mx = -INFINITY;
        for (int j = 0; j < Lk; ++j) {
          const float* kj = k + (size_t(kb) * Lk + j) * ldk + size_t(h) * Dh;
          double d = 0;
          for (int e = 0; e < Dh; ++e) d += double(qi[e]) * kj[e];
          float x = float(d) * scale;
          if (mask) x += mask[size_t(mask_batch == 1 ? 0 : b) * Lk + j];
          s[j] = x;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int j = 0; j < Lk; ++j) sum += (s[j] = std::exp(s[j] - mx));
        double* o = &out[(size_t(b) * Lq + i) * W + size_t(h) * Dh];
        for (int j = 0; j < Lk; ++j) {
          const float* vj = v + (size_t(kb) * Lk + j) * ldv + size_t(h) * Dh;
          for (int e = 0; e < Dh; ++e) o[e] += s[j] / sum * vj[e];
        }
      }
  return out;
}

// float64 batched C = A·Bᵀ (+ bias) (GELU if act) over the whole C buffer:
// element (z, m, n) at z·sC + m·ldc + n is Σ_k A[z·sA + m·lda + k]·B[z·sB +
// n·ldb + k]; every other element keeps C0's value (nC = C0.size()).
inline std::vector<double> gemm_ref(const std::vector<float>& C0, const float* A, const float* B, const float* bias,
                                    int M, int N, int K, int lda, int ldb, int ldc, long long sA, long long sB,
                                    long long sC, int batch, int act) {
  std::vector<double> ref(C0.begin(), C0.end());
  for (int z = 0; z < batch; ++z)
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = 0;
        const float* a = &A[size_t(z) * sA + size_t(m) * lda];
        const float* b = &B[size_t(z) * sB + size_t(n) * ldb];
        for (int k = 0; k < K; ++k) s += double(a[k]) * b[k];
        if (bias) s += bias[n];
        ref[size_t(z) * sC + size_t(m) * ldc + n] = act ? gelu64(s) : s;
      }
  return ref;
}

// float64 LayerNorm of s = x (+ res, one float32 add as in the kernels) over
// rows of D: (s − mean)·rstd·g + b with the population variance and rstd =
// 1/√(var + eps). res may be nullptr; sum (if not nullptr) receives s.
inline std::vector<double> layernorm_ref(const float* x, const float* res, const float* g, const float* b, int rows,
                                         int D, float eps, std::vector<float>* sum = nullptr) {
  std::vector<double> out(size_t(rows) * D);
  std::vector<float> s(size_t(rows) * D);
  for (int r = 0; r < rows; ++r) {
    float* sr = &s[size_t(r) * D];
    double m = 0;
    for (int j = 0; j < D; ++j) {
      const size_t i = size_t(r) * D + j;
      sr[j] = res ? x[i] + res[i] : x[i];
      m += sr[j];
    }
    m /= D;
    double q = 0;
    for (int j = 0; j < D; ++j) q += (sr[j] - m) * (sr[j] - m);
    const double rstd = 1 / std::sqrt(q / D + double(eps));
    for (int j = 0; j < D; ++j) out[size_t(r) * D + j] = (sr[j] - m) * rstd * g[j] + b[j];
  }
  if (sum) *sum = std::move(s);
  return out;
}

}  // namespace bkt
