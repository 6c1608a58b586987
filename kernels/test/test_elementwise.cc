// kernels/test/test_elementwise.cc — bias_act.cu, embed.cu and patch.cu.
//
// Thresholds: data movement (gather, take_rows, vit_tokens, im2col) must be
// bit-exact; one float32 add (add, add_positions, bias_act without GELU) is
// bit-exact too (the reference does the same add). GELU: NMSE ≤ 1e-12 — erff
// vs float64 erf differ by ≲ 2 ulp, NMSE measured ~1e-15. L2 normalise: NMSE ≤
// 1e-12 (float32 vs float64 norm, measured ~1e-15).
#include "harness.h"
#include "ref.h"

namespace {

using bkt::gelu64;

unsigned ew_grid(long long n) { return unsigned(std::min<long long>(std::max<long long>((n + 1023) / 1024, 1), 65535)); }

}  // namespace

TEST(bias_act) {
  uint64_t seed = 1;
  struct C {
    int rows, cols;
  } shapes[] = {{1, 1}, {1, 7}, {3, 5}, {4, 8}, {35, 768}, {17, 3072}, {2, 1030}, {1, 100003}};
  for (const C& s : shapes)
    for (int bias = 0; bias < 2; ++bias)
      for (int act = 0; act < 2; ++act)
        for (int offset : {0, 1}) {
          bkt::Rng r(seed++);
          const size_t n = size_t(s.rows) * s.cols;
          std::vector<float> x = bkt::random_vec(r, n, -6.0f, 6.0f), b = bkt::random_vec(r, s.cols);
          bkt::Buf<float> bx(n, offset), bb(s.cols, offset), bo(n, offset);
          bx.fill(x);
          bb.fill(b);
          LAUNCH("bk_bias_act_f32", dim3(ew_grid((long long)n)), dim3(256), 0, bo.p(), (const float*)bx.p(),
                 bias ? (const float*)bb.p() : (const float*)nullptr, s.rows, s.cols, act);
          std::vector<double> ref(n);
          for (size_t i = 0; i < n; ++i) {
            const float y = bias ? x[i] + b[i % s.cols] : x[i];
            ref[i] = act ? gelu64(y) : y;
          }
          const std::string what = bkt::fmt("bias_act %dx%d bias=%d act=%d off=%d", s.rows, s.cols, bias, act, offset);
          if (act)
            CHECK_CLOSE(what, ref, bo.p(), n, 1e-12);
          else
            CHECK_EQUAL(what, ref, bo.p(), n);
          CHECK_GUARDS(bo);
        }
}

TEST(bias_act_in_place_and_small_grids) {
  // out == x, and grids much smaller than the data (grid-stride loops).
  for (unsigned grid : {1u, 3u, 1000u}) {
    bkt::Rng r(grid);
    const int rows = 37, cols = 96;
    const size_t n = size_t(rows) * cols;
    std::vector<float> x = bkt::random_vec(r, n, -4, 4), b = bkt::random_vec(r, cols);
    bkt::Buf<float> bx(n), bb(cols);
    bx.fill(x);
    bb.fill(b);
    LAUNCH("bk_bias_act_f32", dim3(grid), dim3(256), 0, bx.p(), (const float*)bx.p(), (const float*)bb.p(), rows,
           cols, 1);
    std::vector<double> ref(n);
    for (size_t i = 0; i < n; ++i) ref[i] = gelu64(x[i] + b[i % cols]);
    CHECK_CLOSE(bkt::fmt("bias_act in place grid=%u", grid), ref, bx.p(), n, 1e-12);
    CHECK_GUARDS(bx);
  }
}

TEST(gelu_values) {
  // Known values of the exact GELU (float64), through bias_act(bias NULL).
  const float xs[] = {-10, -5, -3, -1, -0.5f, 0, 0.5f, 1, 3, 5, 10};
  const size_t n = sizeof xs / sizeof xs[0];
  bkt::Buf<float> bx(n), bo(n);
  bx.fill(std::vector<float>(xs, xs + n));
  LAUNCH("bk_bias_act_f32", dim3(1), dim3(256), 0, bo.p(), (const float*)bx.p(), (const float*)nullptr, 1, int(n), 1);
  for (size_t i = 0; i < n; ++i) {
    const double want = gelu64(xs[i]);
    // |error| ≤ 1e-7·(1+|x|): a few ulp, and the cancellation of 1 + erf for x ≪ 0 (output ~0).
    EXPECT(std::fabs(bo[i] - want) <= 1e-7 * (1 + std::fabs(xs[i])), "gelu(%g) = %.9g want %.9g", xs[i], bo[i], want);
  }
}

TEST(add) {
  for (int n : {1, 2, 3, 4, 5, 7, 8, 1000, 4099, 100000}) {
    for (int offset : {0, 1, 2}) {
      bkt::Rng r(n * 7 + offset);
      std::vector<float> a = bkt::random_vec(r, n), b = bkt::random_vec(r, n);
      bkt::Buf<float> ba(n, offset), bb(n), bo(n, offset);
      ba.fill(a);
      bb.fill(b);
      LAUNCH("bk_add_f32", dim3(ew_grid(n)), dim3(256), 0, bo.p(), (const float*)ba.p(), (const float*)bb.p(), n);
      std::vector<double> ref(n);
      for (int i = 0; i < n; ++i) ref[i] = a[i] + b[i];
      CHECK_EQUAL(bkt::fmt("add n=%d off=%d", n, offset), ref, bo.p(), n);
      CHECK_GUARDS(bo);
      // In place: out == b.
      LAUNCH("bk_add_f32", dim3(2), dim3(256), 0, bb.p(), (const float*)ba.p(), (const float*)bb.p(), n);
      CHECK_EQUAL(bkt::fmt("add in place n=%d off=%d", n, offset), ref, bb.p(), n);
    }
  }
}

TEST(gather_rows) {
  for (int D : {1, 3, 4, 768, 33}) {
    const int V = 50, n = 41;
    bkt::Rng r(D);
    std::vector<float> table = bkt::random_vec(r, size_t(V) * D);
    bkt::Buf<float> bt(table.size()), bo(size_t(n) * D);
    bkt::Buf<int> ids(n), err(1);
    bt.fill(table);
    for (int i = 0; i < n; ++i) ids[i] = r.below(V);
    ids[0] = 0;
    ids[n - 1] = V - 1;
    err[0] = 0;
    LAUNCH("bk_gather_rows_f32", dim3(n), dim3(128), 0, bo.p(), (const float*)bt.p(), (const int*)ids.p(), n, D, V,
           err.p());
    std::vector<double> ref(size_t(n) * D);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < D; ++j) ref[size_t(i) * D + j] = table[size_t(ids[i]) * D + j];
    CHECK_EQUAL(bkt::fmt("gather D=%d", D), ref, bo.p(), ref.size());
    EXPECT(err[0] == 0, "err set for valid ids");
    CHECK_GUARDS(bo);
    // Out-of-range ids: zero rows and *err = 1; NULL err is allowed.
    ids[3] = -1;
    ids[5] = V;
    LAUNCH("bk_gather_rows_f32", dim3(n), dim3(128), 0, bo.p(), (const float*)bt.p(), (const int*)ids.p(), n, D, V,
           err.p());
    for (int j = 0; j < D; ++j) ref[size_t(3) * D + j] = ref[size_t(5) * D + j] = 0;
    CHECK_EQUAL(bkt::fmt("gather bad ids D=%d", D), ref, bo.p(), ref.size());
    EXPECT(err[0] == 1, "err not set for bad ids");
    LAUNCH("bk_gather_rows_f32", dim3(n), dim3(128), 0, bo.p(), (const float*)bt.p(), (const int*)ids.p(), n, D, V,
           (int*)nullptr);
    CHECK_EQUAL(bkt::fmt("gather bad ids, no err D=%d", D), ref, bo.p(), ref.size());
  }
}

TEST(add_positions) {
  struct C {
    int B, L, P, D, offset;
  } cases[] = {{1, 1, 1, 1, 0}, {2, 35, 512, 768, 0}, {3, 7, 9, 5, 0}, {2, 577, 577, 64, 1}, {4, 3, 3, 4, 0}};
  for (const C& c : cases) {
    bkt::Rng r(c.L * 13 + c.D);
    const size_t n = size_t(c.B) * c.L * c.D;
    std::vector<float> x = bkt::random_vec(r, n), pos = bkt::random_vec(r, size_t(c.P) * c.D);
    bkt::Buf<float> bx(n, c.offset), bp(pos.size(), c.offset), bo(n, c.offset);
    bx.fill(x);
    bp.fill(pos);
    LAUNCH("bk_add_positions_f32", dim3(ew_grid((long long)n)), dim3(256), 0, bo.p(), (const float*)bx.p(),
           (const float*)bp.p(), c.B * c.L, c.L, c.D);
    std::vector<double> ref(n);
    for (size_t i = 0; i < n; ++i) ref[i] = x[i] + pos[i % (size_t(c.L) * c.D)];
    CHECK_EQUAL(bkt::fmt("add_positions B=%d L=%d D=%d off=%d", c.B, c.L, c.D, c.offset), ref, bo.p(), n);
    CHECK_GUARDS(bo);
    LAUNCH("bk_add_positions_f32", dim3(1), dim3(256), 0, bx.p(), (const float*)bx.p(), (const float*)bp.p(),
           c.B * c.L, c.L, c.D);
    CHECK_EQUAL(bkt::fmt("add_positions in place B=%d L=%d D=%d", c.B, c.L, c.D), ref, bx.p(), n);
  }
}

TEST(take_rows) {
  // TakeRow (first = row, stride = L) and CopyRows (first = start, stride = 1).
  const int B = 5, L = 7;
  for (int D : {1, 6, 8, 768}) {
    bkt::Rng r(D);
    std::vector<float> x = bkt::random_vec(r, size_t(B) * L * D);
    bkt::Buf<float> bx(x.size());
    bx.fill(x);
    for (int row : {0, 3, L - 1}) {
      bkt::Buf<float> bo(size_t(B) * D);
      LAUNCH("bk_take_rows_f32", dim3(B), dim3(128), 0, bo.p(), (const float*)bx.p(), B, D, row, L);
      std::vector<double> ref(size_t(B) * D);
      for (int b = 0; b < B; ++b)
        for (int j = 0; j < D; ++j) ref[size_t(b) * D + j] = x[(size_t(b) * L + row) * D + j];
      CHECK_EQUAL(bkt::fmt("take_row D=%d row=%d", D, row), ref, bo.p(), ref.size());
      CHECK_GUARDS(bo);
    }
    const int start = 9, count = 12;
    bkt::Buf<float> bo(size_t(count) * D);
    LAUNCH("bk_take_rows_f32", dim3(count), dim3(128), 0, bo.p(), (const float*)bx.p(), count, D, start, 1);
    std::vector<double> ref(x.begin() + size_t(start) * D, x.begin() + size_t(start + count) * D);
    CHECK_EQUAL(bkt::fmt("copy_rows D=%d", D), ref, bo.p(), ref.size());
    CHECK_GUARDS(bo);
  }
}

TEST(l2_normalize) {
  for (int D : {1, 2, 5, 256, 768, 1001}) {
    for (int offset : {0, 1}) {
      const int rows = 9;
      bkt::Rng r(D + offset);
      std::vector<float> x = bkt::random_vec(r, size_t(rows) * D, -3, 3);
      for (int j = 0; j < D; ++j) x[size_t(4) * D + j] = 0.0f;  // a zero row stays zero (norm clamped to 1e-12)
      bkt::Buf<float> bx(x.size(), offset), bo(x.size(), offset);
      bx.fill(x);
      LAUNCH("bk_l2_normalize_f32", dim3(bkt::ceil_div(rows, 4)), dim3(128), 0, bo.p(), (const float*)bx.p(), rows,
             D);
      std::vector<double> ref(x.size());
      for (int i = 0; i < rows; ++i) {
        double s = 0;
        for (int j = 0; j < D; ++j) s += double(x[size_t(i) * D + j]) * x[size_t(i) * D + j];
        const double nrm = std::max(std::sqrt(s), 1e-12);
        for (int j = 0; j < D; ++j) ref[size_t(i) * D + j] = x[size_t(i) * D + j] / nrm;
      }
      CHECK_CLOSE(bkt::fmt("l2_normalize D=%d off=%d", D, offset), ref, bo.p(), ref.size(), 1e-12);
      CHECK_GUARDS(bo);
      LAUNCH("bk_l2_normalize_f32", dim3(bkt::ceil_div(rows, 4)), dim3(128), 0, bx.p(), (const float*)bx.p(), rows,
             D);
      CHECK_CLOSE(bkt::fmt("l2_normalize in place D=%d", D), ref, bx.p(), ref.size(), 1e-12);
    }
  }
}

TEST(vit_tokens) {
  for (int D : {3, 8, 768}) {
    const int B = 3, T = 9;
    bkt::Rng r(D);
    std::vector<float> patches = bkt::random_vec(r, size_t(B) * T * D), cls = bkt::random_vec(r, D);
    bkt::Buf<float> bp(patches.size()), bc(D), bo(size_t(B) * (T + 1) * D);
    bp.fill(patches);
    bc.fill(cls);
    std::vector<double> ref(bo.n);
    for (int b = 0; b < B; ++b)
      for (int l = 0; l <= T; ++l)
        for (int j = 0; j < D; ++j)
          ref[(size_t(b) * (T + 1) + l) * D + j] = l == 0 ? cls[j] : patches[(size_t(b) * T + l - 1) * D + j];
    for (unsigned grid : {1u, 7u, unsigned(B * (T + 1))}) {
      LAUNCH("bk_vit_tokens_f32", dim3(grid), dim3(128), 0, bo.p(), (const float*)bp.p(), (const float*)bc.p(), B,
             T, D);
      CHECK_EQUAL(bkt::fmt("vit_tokens D=%d grid=%u", D, grid), ref, bo.p(), ref.size());
      CHECK_GUARDS(bo);
    }
    // patches NULL: only the class rows change.
    for (size_t i = 0; i < bo.n; ++i) bo[i] = -7.0f;
    LAUNCH("bk_vit_tokens_f32", dim3(B * (T + 1)), dim3(128), 0, bo.p(), (const float*)nullptr, (const float*)bc.p(),
           B, T, D);
    for (size_t i = 0; i < bo.n; ++i)
      if ((i / D) % (T + 1) != 0) ref[i] = -7.0;
    CHECK_EQUAL(bkt::fmt("vit_tokens cls only D=%d", D), ref, bo.p(), ref.size());
  }
}

TEST(im2col_patch) {
  struct C {
    int B, C, H, W, P, offset;
  } cases[] = {{1, 1, 1, 1, 1, 0},   {2, 3, 32, 32, 8, 0},  {1, 3, 48, 32, 16, 0}, {2, 3, 9, 12, 3, 0},
               {1, 3, 384, 384, 16, 0}, {2, 3, 16, 16, 4, 1}, {1, 2, 8, 12, 4, 0}};
  for (const C& c : cases) {
    bkt::Rng r(c.H * 31 + c.P);
    const size_t n = size_t(c.B) * c.C * c.H * c.W;
    std::vector<float> px = bkt::random_vec(r, n);
    bkt::Buf<float> bp(n, c.offset), bo(n, c.offset);
    bp.fill(px);
    LAUNCH("bk_im2col_patch_f32", dim3(ew_grid((long long)n)), dim3(256), 0, bo.p(), (const float*)bp.p(), c.B, c.C,
           c.H, c.W, c.P);
    const int gh = c.H / c.P, gw = c.W / c.P, K = c.C * c.P * c.P;
    std::vector<double> ref(n);
    for (int b = 0; b < c.B; ++b)
      for (int rr = 0; rr < gh; ++rr)
        for (int q = 0; q < gw; ++q)
          for (int ci = 0; ci < c.C; ++ci)
            for (int y = 0; y < c.P; ++y)
              for (int x = 0; x < c.P; ++x)
                ref[(size_t(b) * gh * gw + size_t(rr) * gw + q) * K + (ci * c.P + y) * c.P + x] =
                    px[((size_t(b) * c.C + ci) * c.H + rr * c.P + y) * c.W + q * c.P + x];
    CHECK_EQUAL(bkt::fmt("im2col B=%d C=%d H=%d W=%d P=%d off=%d", c.B, c.C, c.H, c.W, c.P, c.offset), ref, bo.p(), n);
    CHECK_GUARDS(bo);
  }
}
