// kernels/test/test_half_gemm.cc — bk_gemm_nt[_small]_{f16,bf16} against a
// float64 reference on the rounded inputs, and bit-exactly against the RNE of
// the _f32 kernel on the same inputs (float32 accumulation, bias + GELU in
// float32, one rounding at the store).
//
// Threshold (CHECK_ROUNDED, see test_half.h): NMSE ≤ u² and every element
// within u·|ref| + atol, u = 2^-11 (f16) / 2^-8 (bf16), atol = 1e-5·max|ref|:
// float32 sums of K products of uniform[-1,1] values err by ~sqrt(K)·2^-24
// relative to the partial sums (measured for the f32 kernel: NMSE ≤ 1e-13 at
// K = 3072), far below one output rounding.
#include "ref.h"
#include "test_half.h"

namespace {

using bkh::kname;

struct GemmCase {
  int M, N, K;
  int lda_pad, ldb_pad, ldc_pad;
  int batch;
  bool bias;
  int act;
  bool broadcast_b;
  int offset;
};

template <class T>
void gemm_case(bool small, const GemmCase& c, uint64_t seed) {
  const std::string kern = kname<T>(small ? "bk_gemm_nt_small" : "bk_gemm_nt");
  const char* k32 = small ? "bk_gemm_nt_small_f32" : "bk_gemm_nt_f32";
  const int tile = small ? 64 : 128;
  bkt::Rng r(seed);
  const int lda = c.K + c.lda_pad, ldb = c.K + c.ldb_pad, ldc = c.N + c.ldc_pad;
  const long long sA = (long long)c.M * lda + 5, sB = c.broadcast_b ? 0 : (long long)c.N * ldb + 3,
                  sC = (long long)c.M * ldc + 1;
  const size_t nA = size_t(sA) * c.batch, nB = c.broadcast_b ? size_t(c.N) * ldb : size_t(sB) * c.batch,
               nC = size_t(sC) * c.batch;
  const std::vector<float> A = bkh::random_rounded<T>(r, nA), B = bkh::random_rounded<T>(r, nB),
                           bias = bkh::random_rounded<T>(r, c.N);
  bkt::Buf<T> bA(nA, c.offset), bB(nB, c.offset), bC(nC, c.offset), bbias(c.N, c.offset);
  bA.fill(bkh::to_t<T>(A));
  bB.fill(bkh::to_t<T>(B));
  bbias.fill(bkh::to_t<T>(bias));
  const std::vector<float> C0(nC, 1234.5f);  // untouched between rows (ldc padding) and batches
  bC.fill(bkh::to_t<T>(C0));
  bkt::Buf<float> fA(nA, c.offset), fB(nB, c.offset), fC(nC, c.offset), fbias(c.N, c.offset);
  fA.fill(A);
  fB.fill(B);
  fbias.fill(bias);
  fC.fill(C0);
  const dim3 grid(bkt::ceil_div(c.N, tile), bkt::ceil_div(c.M, tile), c.batch);
  LAUNCH(kern.c_str(), grid, dim3(256), 0, bC.p(), (const T*)bA.p(), (const T*)bB.p(),
         c.bias ? (const T*)bbias.p() : (const T*)nullptr, c.M, c.N, c.K, lda, ldb, ldc, sA, sB, sC, c.act);
  LAUNCH(k32, grid, dim3(256), 0, fC.p(), (const float*)fA.p(), (const float*)fB.p(),
         c.bias ? (const float*)fbias.p() : (const float*)nullptr, c.M, c.N, c.K, lda, ldb, ldc, sA, sB, sC, c.act);
  const std::vector<double> ref = bkt::gemm_ref(C0, A.data(), B.data(), c.bias ? bias.data() : nullptr, c.M, c.N, c.K,
                                                lda, ldb, ldc, sA, sB, sC, c.batch, c.act);
  const std::string what = bkt::fmt("%s M=%d N=%d K=%d ld+=(%d,%d,%d) batch=%d bias=%d act=%d bcastB=%d off=%d",
                                    kern.c_str(), c.M, c.N, c.K, c.lda_pad, c.ldb_pad, c.ldc_pad, c.batch, c.bias,
                                    c.act, c.broadcast_b, c.offset);
  // Written elements against the reference; everything else (ldc padding,
  // gaps between batches) must keep the sentinel's bits.
  std::vector<double> ref_c;
  std::vector<T> got_c;
  const T sentinel = T(1234.5f);
  for (size_t i = 0; i < nC; ++i) {
    if (ref[i] == 1234.5) {
      if (bkh::bits(bC[i]) != bkh::bits(sentinel)) {
        bkt::fail(__FILE__, __LINE__, what + bkt::fmt(": wrote outside C at %zu", i));
        break;
      }
    } else {
      ref_c.push_back(ref[i]);
      got_c.push_back(bC[i]);
    }
  }
  CHECK_ROUNDED(what, ref_c, got_c.data(), got_c.size(), 1e-5 * bkh::max_abs(ref_c));
  CHECK_BITS(what + " = RNE(f32 kernel)", bC.p(), bkh::rne<T>(fC.p(), nC).data(), nC);
  CHECK_GUARDS(bC);
}

template <class T>
void gemm_all(uint64_t seed) {
  // BLIP: text QKV/out Linear (35 × 768 → 768), fc1 + GELU (→ 3072), fc2 with
  // K = 3072, a 577-row vision tile (N reduced), ViT-L width (K = 1024).
  gemm_case<T>(true, {35, 768, 768, 0, 0, 0, 1, true, 0, false, 0}, seed++);
  gemm_case<T>(false, {35, 3072, 768, 0, 0, 0, 1, true, 1, false, 0}, seed++);
  gemm_case<T>(true, {70, 96, 3072, 0, 0, 0, 1, true, 0, false, 0}, seed++);
  gemm_case<T>(false, {577, 160, 768, 0, 0, 0, 1, true, 1, false, 0}, seed++);
  gemm_case<T>(false, {40, 130, 1024, 0, 0, 0, 1, true, 0, false, 0}, seed++);
  // Edges, K = 0, odd leading dimensions, unaligned (offset 1, 2: scalar; 4: vector).
  const GemmCase edges[] = {
      {1, 1, 1, 0, 0, 0, 1, false, 0, false, 0},  {1, 1, 0, 0, 0, 0, 1, true, 1, false, 0},
      {3, 5, 7, 0, 0, 0, 1, true, 0, false, 0},   {65, 63, 33, 0, 0, 0, 1, true, 1, false, 0},
      {129, 130, 17, 0, 0, 0, 1, false, 0, false, 0}, {37, 41, 43, 1, 3, 2, 1, true, 1, false, 0},
      {37, 41, 44, 0, 0, 0, 1, true, 1, false, 1}, {37, 41, 44, 0, 0, 0, 1, true, 1, false, 2},
      {31, 40, 12, 4, 4, 4, 1, true, 0, false, 4},
  };
  for (bool small : {false, true})
    for (const GemmCase& c : edges) gemm_case<T>(small, c, seed++);
  // Batched with strides, one B for every batch (stride 0).
  for (bool small : {false, true}) {
    gemm_case<T>(small, {33, 17, 24, 0, 0, 0, 3, true, 0, false, 0}, seed++);
    gemm_case<T>(small, {33, 17, 24, 0, 0, 0, 4, true, 1, true, 0}, seed++);
  }
}

}  // namespace

TEST(half_gemm) {
  gemm_all<__half>(1);
  gemm_all<__nv_bfloat16>(1);
}
