// kernels/test/test_layernorm.cc — bk_layernorm_{warp,block}_f32 against a
// float64 reference, with and without residual and sum, aliased outputs,
// unaligned rows, constant rows, and widths around every internal boundary.
//
// Threshold: NMSE ≤ 1e-10. The outputs are O(1); float32 rounding of the
// result and of the float32 statistics gives NMSE ~1e-14 (measured ≤ 3e-14),
// so 1e-10 flags any indexing or reduction bug (those give NMSE ≥ 1e-4) while
// leaving room for a GPU's FMA contraction. sum must be bit-exact (it is one
// float32 add in both).
#include "harness.h"
#include "ref.h"

namespace {

struct LnCase {
  int rows, D;
  bool residual, sum;
  int offset;  // element offset of every buffer (1 breaks 16-byte alignment)
  float eps;
};

void run_case(const char* kernel, const LnCase& c, uint64_t seed) {
  bkt::Rng rng(seed);
  const size_t n = size_t(c.rows) * c.D;
  std::vector<float> x = bkt::random_vec(rng, n, -1.0f, 1.0f), res = bkt::random_vec(rng, n, -1.0f, 1.0f);
  for (auto& v : x) v += 3.0f;  // a mean far from 0 exercises the shifted statistics
  const std::vector<float> g = bkt::random_vec(rng, c.D, 0.5f, 1.5f), be = bkt::random_vec(rng, c.D, -0.5f, 0.5f);
  std::vector<float> sum;
  const std::vector<double> ref =
      bkt::layernorm_ref(x.data(), c.residual ? res.data() : nullptr, g.data(), be.data(), c.rows, c.D, c.eps, &sum);
  const std::vector<double> refsum(sum.begin(), sum.end());

  bkt::Buf<float> bx(n, c.offset), br(n, c.offset), bg(c.D, c.offset), bb(c.D, c.offset), bo(n, c.offset),
      bs(n, c.offset);
  bx.fill(x);
  br.fill(res);
  bg.fill(g);
  bb.fill(be);
  const bool warp = std::strstr(kernel, "warp") != nullptr;
  const dim3 grid = warp ? dim3(bkt::ceil_div(c.rows, 4)) : dim3(c.rows);
  const dim3 block = warp ? dim3(128) : dim3(256);
  LAUNCH(kernel, grid, block, 0, bo.p(), c.sum ? bs.p() : (float*)nullptr, (const float*)bx.p(),
         c.residual ? (const float*)br.p() : (const float*)nullptr, (const float*)bg.p(), (const float*)bb.p(),
         c.rows, c.D, c.eps);
  const std::string what = bkt::fmt("%s rows=%d D=%d res=%d sum=%d off=%d", kernel, c.rows, c.D, c.residual, c.sum,
                                    c.offset);
  CHECK_CLOSE(what, ref, bo.p(), n, 1e-10);
  if (c.sum) CHECK_EQUAL(what + " sum", refsum, bs.p(), n);
  CHECK_GUARDS(bo);
  CHECK_GUARDS(bs);
  EXPECT(bx.vec() == x && br.vec() == res, "%s: inputs modified", what.c_str());
}

const int kWarpWidths[] = {1, 2, 3, 4, 5, 31, 32, 33, 64, 127, 128, 129, 255, 256, 384, 768, 1000, 1023, 1024};
const int kBlockWidths[] = {1, 3, 4, 255, 256, 257, 768, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 5000, 9001};

}  // namespace

TEST(layernorm_warp_widths) {
  uint64_t seed = 1;
  for (int D : kWarpWidths)
    for (int rows : {1, 5})
      for (int mode = 0; mode < 3; ++mode)  // plain, +residual, +residual+sum
        run_case("bk_layernorm_warp_f32", {rows, D, mode >= 1, mode == 2, 0, 1e-5f}, seed++);
}

TEST(layernorm_block_widths) {
  uint64_t seed = 100;
  for (int D : kBlockWidths)
    for (int mode = 0; mode < 3; ++mode)
      run_case("bk_layernorm_block_f32", {3, D, mode >= 1, mode == 2, 0, 1e-12f}, seed++);
}

TEST(layernorm_vision_and_text_shapes) {
  // ViT: 577 tokens × 768 (eps 1e-5, pre-LN residual stream with sum);
  // BERT: 35 tokens × 768 (eps 1e-12, post-LN, no sum); ViT-L width 1024.
  run_case("bk_layernorm_warp_f32", {577, 768, false, false, 0, 1e-5f}, 7);
  run_case("bk_layernorm_warp_f32", {577, 768, true, true, 0, 1e-5f}, 8);
  run_case("bk_layernorm_warp_f32", {70, 768, true, false, 0, 1e-12f}, 9);
  run_case("bk_layernorm_warp_f32", {577, 1024, true, true, 0, 1e-5f}, 10);
  run_case("bk_layernorm_block_f32", {577, 768, true, true, 0, 1e-5f}, 11);
}

TEST(layernorm_unaligned_rows) {
  // Offset by one float: the float4 paths must fall back to scalar loads.
  for (const char* k : {"bk_layernorm_warp_f32", "bk_layernorm_block_f32"}) {
    run_case(k, {9, 768, true, true, 1, 1e-5f}, 20);
    run_case(k, {9, 64, false, false, 3, 1e-5f}, 21);
  }
}

TEST(layernorm_aliasing) {
  // out == x (LayerNorm in place) and sum == residual, out == x (AddLayerNorm).
  for (const char* k : {"bk_layernorm_warp_f32", "bk_layernorm_block_f32"}) {
    for (int D : {768, 33}) {
      const int rows = 6;
      bkt::Rng rng(D);
      const size_t n = size_t(rows) * D;
      std::vector<float> x = bkt::random_vec(rng, n), res = bkt::random_vec(rng, n);
      std::vector<float> g = bkt::random_vec(rng, D, 0.5f, 1.5f), be = bkt::random_vec(rng, D);
      std::vector<float> sum;
      const std::vector<double> ref =
          bkt::layernorm_ref(x.data(), res.data(), g.data(), be.data(), rows, D, 1e-5f, &sum);
      const std::vector<double> refsum(sum.begin(), sum.end());
      bkt::Buf<float> bx(n), br(n), bg(D), bb(D);
      bx.fill(x);
      br.fill(res);
      bg.fill(g);
      bb.fill(be);
      const bool warp = std::strstr(k, "warp") != nullptr;
      LAUNCH(k, warp ? dim3(bkt::ceil_div(rows, 4)) : dim3(rows), warp ? dim3(128) : dim3(256), 0, bx.p(), br.p(),
             (const float*)bx.p(), (const float*)br.p(), (const float*)bg.p(), (const float*)bb.p(), rows, D, 1e-5f);
      CHECK_CLOSE(bkt::fmt("%s alias D=%d out", k, D), ref, bx.p(), n, 1e-10);
      CHECK_EQUAL(bkt::fmt("%s alias D=%d sum", k, D), refsum, br.p(), n);

      const std::vector<double> ref2 = bkt::layernorm_ref(x.data(), nullptr, g.data(), be.data(), rows, D, 1e-5f);
      bx.fill(x);
      LAUNCH(k, warp ? dim3(bkt::ceil_div(rows, 4)) : dim3(rows), warp ? dim3(128) : dim3(256), 0, bx.p(),
             (float*)nullptr, (const float*)bx.p(), (const float*)nullptr, (const float*)bg.p(),
             (const float*)bb.p(), rows, D, 1e-5f);
      CHECK_CLOSE(bkt::fmt("%s in place D=%d", k, D), ref2, bx.p(), n, 1e-10);
    }
  }
}

TEST(layernorm_constant_rows_tiny_eps) {
  // A constant row has mean = the value and variance 0 exactly, so even with
  // eps = 1e-12 (rstd = 1e6) the output is exactly beta.
  for (const char* k : {"bk_layernorm_warp_f32", "bk_layernorm_block_f32"}) {
    for (int D : {768, 37, 5000}) {
      if (D > 1024 && std::strstr(k, "warp")) continue;
      const int rows = 3;
      std::vector<float> x(size_t(rows) * D);
      for (int r = 0; r < rows; ++r)
        for (int j = 0; j < D; ++j) x[size_t(r) * D + j] = 0.1f * float(r + 1) + 3.7f;
      bkt::Rng rng(D);
      std::vector<float> g = bkt::random_vec(rng, D, 0.5f, 1.5f), be = bkt::random_vec(rng, D);
      bkt::Buf<float> bx(x.size()), bg(D), bb(D), bo(x.size());
      bx.fill(x);
      bg.fill(g);
      bb.fill(be);
      const bool warp = std::strstr(k, "warp") != nullptr;
      LAUNCH(k, warp ? dim3(1) : dim3(rows), warp ? dim3(128) : dim3(256), 0, bo.p(), (float*)nullptr,
             (const float*)bx.p(), (const float*)nullptr, (const float*)bg.p(), (const float*)bb.p(), rows, D,
             1e-12f);
      std::vector<double> ref(x.size());
      for (size_t i = 0; i < x.size(); ++i) ref[i] = be[i % D];
      CHECK_EQUAL(bkt::fmt("%s constant rows D=%d", k, D), ref, bo.p(), x.size());
    }
  }
}

TEST(layernorm_grid_tail_rows) {
  // rows not a multiple of 4: the last block of the warp variant has idle warps.
  for (int rows : {1, 2, 3, 6, 7, 577})
    run_case("bk_layernorm_warp_f32", {rows, 96, true, true, 0, 1e-5f}, 300 + rows);
}
