// kernels/test/test_gemm.cc — bk_gemm_nt_f32 and bk_gemm_nt_small_f32 against a
// float64 reference: edge tiles in every dimension, K = 0, unaligned leading
// dimensions, bias/GELU epilogue, batches with strides (including a broadcast
// operand), and the patch-embedding layout that writes rows 1..T of [B, 1+T, D].
//
// Threshold: NMSE ≤ 1e-11. float32 sums of K products of uniform[-1,1] values
// carry a relative error ~ sqrt(K)·2^-24; measured NMSE is ~1e-14 for K = 768
// and below 1e-13 for K = 3072. Any tiling or edge bug gives NMSE ≥ 1e-4.
#include "harness.h"
#include "ref.h"

namespace {

struct GemmCase {
  int M, N, K;
  int lda_pad, ldb_pad, ldc_pad;  // leading dimension = K (or N) + pad
  int batch;
  bool bias;
  int act;
  bool broadcast_b;  // strideB = 0
  int offset;
};

void run_gemm(const char* kernel, int tile, const GemmCase& c, uint64_t seed) {
  bkt::Rng r(seed);
  const int lda = c.K + c.lda_pad, ldb = c.K + c.ldb_pad, ldc = c.N + c.ldc_pad;
  const long long sA = (long long)c.M * lda + 5, sB = c.broadcast_b ? 0 : (long long)c.N * ldb + 3,
                  sC = (long long)c.M * ldc + 1;
  const size_t nA = size_t(sA) * c.batch, nB = c.broadcast_b ? size_t(c.N) * ldb : size_t(sB) * c.batch,
               nC = size_t(sC) * c.batch;
  std::vector<float> A = bkt::random_vec(r, nA), B = bkt::random_vec(r, nB), bias = bkt::random_vec(r, c.N);
  bkt::Buf<float> bA(nA, c.offset), bB(nB, c.offset), bC(nC, c.offset), bbias(c.N, c.offset);
  bA.fill(A);
  bB.fill(B);
  bbias.fill(bias);
  std::vector<float> C0(nC);
  for (auto& v : C0) v = 1234.5f;  // untouched between rows (ldc padding) and batches
  bC.fill(C0);
  const dim3 grid(bkt::ceil_div(c.N, tile), bkt::ceil_div(c.M, tile), c.batch);
  LAUNCH(kernel, grid, dim3(256), 0, bC.p(), (const float*)bA.p(), (const float*)bB.p(),
         c.bias ? (const float*)bbias.p() : (const float*)nullptr, c.M, c.N, c.K, lda, ldb, ldc, sA, sB, sC, c.act);
  const std::vector<double> ref = bkt::gemm_ref(C0, A.data(), B.data(), c.bias ? bias.data() : nullptr, c.M, c.N, c.K,
                                                lda, ldb, ldc, sA, sB, sC, c.batch, c.act);
  const std::string what = bkt::fmt("%s M=%d N=%d K=%d ld+=(%d,%d,%d) batch=%d bias=%d act=%d bcastB=%d off=%d",
                                    kernel, c.M, c.N, c.K, c.lda_pad, c.ldb_pad, c.ldc_pad, c.batch, c.bias, c.act,
                                    c.broadcast_b, c.offset);
  CHECK_CLOSE(what, ref, bC.p(), nC, 1e-11);
  for (size_t i = 0; i < nC; ++i)
    if (ref[i] == 1234.5 && bC[i] != 1234.5f) {
      bkt::fail(__FILE__, __LINE__, what + bkt::fmt(": wrote outside C at %zu", i));
      break;
    }
  CHECK_GUARDS(bC);
}

const struct {
  const char* name;
  int tile;
} kKernels[] = {{"bk_gemm_nt_f32", 128}, {"bk_gemm_nt_small_f32", 64}};

}  // namespace

TEST(gemm_edges) {
  uint64_t seed = 1;
  const GemmCase cases[] = {
      {1, 1, 1, 0, 0, 0, 1, false, 0, false, 0},     {1, 1, 0, 0, 0, 0, 1, true, 1, false, 0},
      {3, 5, 7, 0, 0, 0, 1, true, 0, false, 0},      {65, 63, 33, 0, 0, 0, 1, true, 1, false, 0},
      {129, 130, 17, 0, 0, 0, 1, false, 0, false, 0}, {128, 128, 8, 0, 0, 0, 1, true, 0, false, 0},
      {64, 64, 16, 0, 0, 0, 1, false, 0, false, 0},  {200, 3, 100, 0, 0, 0, 1, true, 1, false, 0},
      {2, 300, 9, 0, 0, 0, 1, true, 0, false, 0},    {37, 41, 43, 1, 3, 2, 1, true, 1, false, 0},
      {37, 41, 44, 0, 0, 0, 1, true, 1, false, 1},   {31, 40, 12, 4, 4, 4, 1, true, 0, false, 0},
  };
  for (const auto& k : kKernels)
    for (const GemmCase& c : cases) run_gemm(k.name, k.tile, c, seed++);
}

TEST(gemm_batched) {
  uint64_t seed = 50;
  const GemmCase cases[] = {
      {33, 17, 24, 0, 0, 0, 3, true, 0, false, 0},
      {33, 17, 24, 0, 0, 0, 4, true, 1, true, 0},  // one B for every batch (stride 0)
      {70, 70, 70, 2, 0, 6, 2, false, 0, false, 0},
  };
  for (const auto& k : kKernels)
    for (const GemmCase& c : cases) run_gemm(k.name, k.tile, c, seed++);
}

TEST(gemm_model_shapes) {
  // Text Linear (35 tokens × 768 → 768, and → 3072 with GELU) and a 577-row
  // vision tile (N reduced to keep the emulated run short).
  run_gemm("bk_gemm_nt_small_f32", 64, {35, 768, 768, 0, 0, 0, 1, true, 0, false, 0}, 100);
  run_gemm("bk_gemm_nt_f32", 128, {35, 3072, 768, 0, 0, 0, 1, true, 1, false, 0}, 101);
  run_gemm("bk_gemm_nt_f32", 128, {577, 160, 768, 0, 0, 0, 1, true, 1, false, 0}, 102);
  run_gemm("bk_gemm_nt_small_f32", 64, {70, 96, 3072, 0, 0, 0, 1, true, 0, false, 0}, 103);
}

TEST(gemm_patch_embed_layout) {
  // PatchEmbed without a copy: im2col rows of image b times w[D, K]ᵀ + bias,
  // written to rows 1..T of out [B, 1+T, D] (ldc = D, strideC = (1+T)·D); then
  // bk_vit_tokens_f32 writes the class rows. Checked against direct convolution.
  const int B = 2, C = 3, H = 32, W = 48, P = 16, D = 40;
  const int gh = H / P, gw = W / P, T = gh * gw, K = C * P * P;
  bkt::Rng r(77);
  std::vector<float> px = bkt::random_vec(r, size_t(B) * C * H * W), w = bkt::random_vec(r, size_t(D) * K),
                     bias = bkt::random_vec(r, D), cls = bkt::random_vec(r, D);
  bkt::Buf<float> bpx(px.size()), bw(w.size()), bb(D), bc(D), cols(size_t(B) * T * K), out(size_t(B) * (T + 1) * D);
  bpx.fill(px);
  bw.fill(w);
  bb.fill(bias);
  bc.fill(cls);
  LAUNCH("bk_im2col_patch_f32", dim3(64), dim3(256), 0, cols.p(), (const float*)bpx.p(), B, C, H, W, P);
  LAUNCH("bk_gemm_nt_small_f32", dim3(bkt::ceil_div(D, 64), bkt::ceil_div(T, 64), B), dim3(256), 0, out.p() + D,
         (const float*)cols.p(), (const float*)bw.p(), (const float*)bb.p(), T, D, K, K, K, D, (long long)T * K, 0LL,
         (long long)(T + 1) * D, 0);
  LAUNCH("bk_vit_tokens_f32", dim3(B * (T + 1)), dim3(128), 0, out.p(), (const float*)nullptr, (const float*)bc.p(), B,
         T, D);
  std::vector<double> ref(out.n);
  for (int b = 0; b < B; ++b) {
    for (int d = 0; d < D; ++d) ref[size_t(b) * (T + 1) * D + d] = cls[d];
    for (int rr = 0; rr < gh; ++rr)
      for (int q = 0; q < gw; ++q)
        for (int d = 0; d < D; ++d) {
          double s = bias[d];
          for (int ci = 0; ci < C; ++ci)
            for (int y = 0; y < P; ++y)
              for (int x = 0; x < P; ++x)
                s += double(px[((size_t(b) * C + ci) * H + rr * P + y) * W + q * P + x]) *
                     w[size_t(d) * K + (ci * P + y) * P + x];
          ref[(size_t(b) * (T + 1) + 1 + rr * gw + q) * D + d] = s;
        }
  }
  CHECK_CLOSE("patch embed (im2col + gemm + vit_tokens)", ref, out.p(), out.n, 1e-11);
  CHECK_GUARDS(out);
}
