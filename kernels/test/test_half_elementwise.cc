// kernels/test/test_half_elementwise.cc — the float16/bfloat16 variants of
// layernorm.cu, bias_act.cu, embed.cu and patch.cu (see test_half.h for the
// three kinds of checks).
//
// Thresholds (CHECK_ROUNDED: NMSE ≤ u², every element within u·|ref| + atol;
// u = 2^-11 for f16, 2^-8 for bf16, the output's one rounding):
//   layernorm      atol 1e-5: float32 two-pass statistics on O(1) outputs err
//                  by ~1e-6 before the final rounding.
//   bias_act GELU  atol 1e-6·max|ref|: erff vs float64 erf, a few float32 ulp.
//   l2_normalize   atol 1e-6·max|ref|: float32 norm vs float64, ~1e-7 relative.
// Exact (CHECK_BITS): add, add_positions and bias_act without GELU equal the
// RNE of the float32 sum of the rounded inputs; gather_rows, take_rows,
// vit_tokens and im2col copy bits; layernorm's `sum` is the RNE of the float32
// x + residual; every kernel equals the RNE of its _f32 twin on the same
// rounded inputs (same alignment, so the same vector/scalar path).
#include "ref.h"
#include "test_half.h"

namespace {

using bkh::kname;

using bkt::gelu64;

unsigned ew_grid(long long n) { return unsigned(std::min<long long>(std::max<long long>((n + 1023) / 1024, 1), 65535)); }

// ---------------------------------------------------------------------------
// LayerNorm
// ---------------------------------------------------------------------------
struct LnCase {
  int rows, D;
  bool residual, sum;
  int offset;
  float eps;
};

template <class T>
void ln_case(bool warp, const LnCase& c, uint64_t seed, bool alias = false) {
  const std::string kern = kname<T>(warp ? "bk_layernorm_warp" : "bk_layernorm_block");
  const char* k32 = warp ? "bk_layernorm_warp_f32" : "bk_layernorm_block_f32";
  bkt::Rng rng(seed);
  const size_t n = size_t(c.rows) * c.D;
  std::vector<float> x = bkt::random_vec(rng, n, -1.0f, 1.0f);
  for (auto& v : x) v += 3.0f;  // a mean far from 0 (shifted statistics)
  x = bkh::rounded<T>(x);
  const std::vector<float> res = bkh::random_rounded<T>(rng, n), g = bkh::random_rounded<T>(rng, c.D, 0.5f, 1.5f),
                           be = bkh::random_rounded<T>(rng, c.D, -0.5f, 0.5f);
  // float64 reference on the rounded inputs; s = x + residual is exact in float32 here.
  std::vector<float> s;
  const std::vector<double> ref =
      bkt::layernorm_ref(x.data(), c.residual ? res.data() : nullptr, g.data(), be.data(), c.rows, c.D, c.eps, &s);

  bkt::Buf<T> bx(n, c.offset), br(n, c.offset), bg(c.D, c.offset), bb(c.D, c.offset), bo(n, c.offset),
      bs(n, c.offset);
  bx.fill(bkh::to_t<T>(x));
  br.fill(bkh::to_t<T>(res));
  bg.fill(bkh::to_t<T>(g));
  bb.fill(bkh::to_t<T>(be));
  bkt::Buf<float> fx(n, c.offset), fr(n, c.offset), fg(c.D, c.offset), fb(c.D, c.offset), fo(n, c.offset),
      fs(n, c.offset);
  fx.fill(x);
  fr.fill(res);
  fg.fill(g);
  fb.fill(be);
  const dim3 grid = warp ? dim3(bkt::ceil_div(c.rows, 4)) : dim3(c.rows);
  const dim3 block = warp ? dim3(128) : dim3(256);
  // alias: out = x, sum = residual (the ViT residual stream updated in place).
  T* out = alias ? bx.p() : bo.p();
  T* sum = c.sum ? (alias ? br.p() : bs.p()) : (T*)nullptr;
  LAUNCH(kern.c_str(), grid, block, 0, out, sum, (const T*)bx.p(), c.residual ? (const T*)br.p() : (const T*)nullptr,
         (const T*)bg.p(), (const T*)bb.p(), c.rows, c.D, c.eps);
  LAUNCH(k32, grid, block, 0, fo.p(), c.sum ? fs.p() : (float*)nullptr, (const float*)fx.p(),
         c.residual ? (const float*)fr.p() : (const float*)nullptr, (const float*)fg.p(), (const float*)fb.p(), c.rows,
         c.D, c.eps);
  const std::string what = bkt::fmt("%s rows=%d D=%d res=%d sum=%d off=%d eps=%g alias=%d", kern.c_str(), c.rows,
                                    c.D, c.residual, c.sum, c.offset, double(c.eps), alias);
  CHECK_ROUNDED(what, ref, out, n, 1e-5);
  CHECK_BITS(what + " = RNE(f32 kernel)", out, bkh::rne<T>(fo.p(), n).data(), n);
  if (c.sum) {
    CHECK_BITS(what + " sum = RNE(x + r)", sum, bkh::rne<T>(s.data(), n).data(), n);
    CHECK_BITS(what + " sum = RNE(f32 kernel sum)", sum, bkh::rne<T>(fs.p(), n).data(), n);
  }
  CHECK_GUARDS(bo);
  CHECK_GUARDS(bs);
  CHECK_GUARDS(bx);
  CHECK_GUARDS(br);
}

template <class T>
void ln_all(uint64_t seed) {
  // BLIP: ViT-B pre-LN residual stream (577 tokens × 768, sum + out, eps 1e-6),
  // BERT post-LN (2 captions × 35 × 768, out only, eps 1e-12), ViT-L (D = 1024).
  ln_case<T>(true, {577, 768, true, true, 0, 1e-6f}, seed++);
  ln_case<T>(true, {70, 768, true, false, 0, 1e-12f}, seed++);
  ln_case<T>(true, {50, 1024, false, false, 0, 1e-6f}, seed++);
  ln_case<T>(false, {9, 768, true, true, 0, 1e-6f}, seed++);
  ln_case<T>(false, {5, 1024, true, true, 0, 1e-12f}, seed++);
  // Awkward widths, unaligned rows (offset 1 and 2: scalar paths; 4: vector).
  for (int D : {1, 3, 5, 33, 127, 1000, 1023})
    for (int off : {0, 1}) ln_case<T>(true, {7, D, true, true, off, 1e-6f}, seed++);
  ln_case<T>(true, {6, 768, true, true, 2, 1e-6f}, seed++);
  ln_case<T>(true, {6, 768, true, true, 4, 1e-6f}, seed++);
  for (int D : {3, 1025, 4096, 4097, 9001})
    for (int off : {0, 1}) ln_case<T>(false, {3, D, true, true, off, 1e-5f}, seed++);
  // Aliasing out = x, sum = residual, both variants.
  ln_case<T>(true, {9, 768, true, true, 0, 1e-6f}, seed++, true);
  ln_case<T>(false, {3, 1025, true, true, 1, 1e-6f}, seed++, true);
}

// ---------------------------------------------------------------------------
// bias_act, add
// ---------------------------------------------------------------------------
template <class T>
void bias_act_case(int rows, int cols, bool bias, int act, int offset, unsigned grid, uint64_t seed) {
  const std::string kern = kname<T>("bk_bias_act");
  bkt::Rng r(seed);
  const size_t n = size_t(rows) * cols;
  const std::vector<float> x = bkh::random_rounded<T>(r, n, -5.0f, 5.0f), b = bkh::random_rounded<T>(r, cols);
  bkt::Buf<T> bx(n, offset), bb(cols, offset), bo(n, offset);
  bx.fill(bkh::to_t<T>(x));
  bb.fill(bkh::to_t<T>(b));
  bkt::Buf<float> fx(n, offset), fb(cols, offset), fo(n, offset);
  fx.fill(x);
  fb.fill(b);
  if (grid == 0) grid = ew_grid((long long)n);
  LAUNCH(kern.c_str(), dim3(grid), dim3(256), 0, bo.p(), (const T*)bx.p(), bias ? (const T*)bb.p() : (const T*)nullptr,
         rows, cols, act);
  LAUNCH("bk_bias_act_f32", dim3(grid), dim3(256), 0, fo.p(), (const float*)fx.p(),
         bias ? (const float*)fb.p() : (const float*)nullptr, rows, cols, act);
  std::vector<double> ref(n);
  std::vector<float> sum32(n);
  for (size_t i = 0; i < n; ++i) {
    sum32[i] = bias ? x[i] + b[i % cols] : x[i];  // the float32 add
    ref[i] = act ? gelu64(double(x[i]) + (bias ? b[i % cols] : 0.0)) : double(sum32[i]);
  }
  const std::string what =
      bkt::fmt("%s %dx%d bias=%d act=%d off=%d grid=%u", kern.c_str(), rows, cols, bias, act, offset, grid);
  if (act)
    CHECK_ROUNDED(what, ref, bo.p(), n, 1e-6 * bkh::max_abs(ref));
  else
    CHECK_BITS(what + " = RNE(x + bias)", bo.p(), bkh::rne<T>(sum32.data(), n).data(), n);
  CHECK_BITS(what + " = RNE(f32 kernel)", bo.p(), bkh::rne<T>(fo.p(), n).data(), n);
  CHECK_GUARDS(bo);
}

template <class T>
void add_case(int n, int offset, int alias, uint64_t seed) {
  const std::string kern = kname<T>("bk_add");
  bkt::Rng r(seed);
  // Wide magnitudes so that the float32 sum usually needs rounding to T.
  std::vector<float> a = bkt::random_vec(r, n, -100.0f, 100.0f), b = bkt::random_vec(r, n, -1.0f, 1.0f);
  for (int i = 0; i < n; i += 3) b[i] *= 1e-3f;
  a = bkh::rounded<T>(a);
  b = bkh::rounded<T>(b);
  bkt::Buf<T> ba(n, offset), bb(n, offset), bo(n, offset);
  ba.fill(bkh::to_t<T>(a));
  bb.fill(bkh::to_t<T>(b));
  T* out = alias == 1 ? ba.p() : alias == 2 ? bb.p() : bo.p();
  LAUNCH(kern.c_str(), dim3(ew_grid(n)), dim3(256), 0, out, (const T*)ba.p(), (const T*)bb.p(), n);
  std::vector<float> s(n);
  for (int i = 0; i < n; ++i) s[i] = a[i] + b[i];
  CHECK_BITS(bkt::fmt("%s n=%d off=%d alias=%d = RNE(a + b)", kern.c_str(), n, offset, alias), out,
             bkh::rne<T>(s.data(), n).data(), size_t(n));
  CHECK_GUARDS(bo);
  CHECK_GUARDS(ba);
  CHECK_GUARDS(bb);
}

// ---------------------------------------------------------------------------
// embed.cu
// ---------------------------------------------------------------------------
template <class T>
void gather_case(int n, int D, int V, int offset, bool bad, uint64_t seed) {
  const std::string kern = kname<T>("bk_gather_rows");
  bkt::Rng r(seed);
  const std::vector<T> table = bkh::to_t<T>(bkt::random_vec(r, size_t(V) * D, -3.0f, 3.0f));
  std::vector<int> ids(n);
  for (auto& id : ids) id = r.below(V);
  if (bad) {
    ids[0] = V;
    if (n > 2) ids[n / 2] = -1;
  }
  bkt::Buf<T> bt(table.size(), offset), bo(size_t(n) * D, offset);
  bt.fill(table);
  bkt::Buf<int> bids(n), berr(1);
  bids.fill(ids);
  berr[0] = 0;
  LAUNCH(kern.c_str(), dim3(n), dim3(128), 0, bo.p(), (const T*)bt.p(), (const int*)bids.p(), n, D, V, berr.p());
  std::vector<T> want(size_t(n) * D);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < D; ++c)
      want[size_t(i) * D + c] = ids[i] < 0 || ids[i] >= V ? T(0.0f) : table[size_t(ids[i]) * D + c];
  const std::string what = bkt::fmt("%s n=%d D=%d V=%d off=%d bad=%d", kern.c_str(), n, D, V, offset, bad);
  CHECK_BITS(what, bo.p(), want.data(), want.size());
  EXPECT(berr[0] == (bad ? 1 : 0), "%s: err = %d", what.c_str(), berr[0]);
  CHECK_GUARDS(bo);
}

template <class T>
void add_positions_case(int B, int L, int D, int offset, bool alias, unsigned grid, uint64_t seed) {
  const std::string kern = kname<T>("bk_add_positions");
  bkt::Rng r(seed);
  const int rows = B * L, P = L + 2;  // pos has more rows than L
  const std::vector<float> x = bkh::random_rounded<T>(r, size_t(rows) * D, -2.0f, 2.0f),
                           pos = bkh::random_rounded<T>(r, size_t(P) * D, -0.1f, 0.1f);
  bkt::Buf<T> bx(x.size(), offset), bp(pos.size(), offset), bo(x.size(), offset);
  bx.fill(bkh::to_t<T>(x));
  bp.fill(bkh::to_t<T>(pos));
  T* out = alias ? bx.p() : bo.p();
  if (grid == 0) grid = ew_grid((long long)rows * D);
  LAUNCH(kern.c_str(), dim3(grid), dim3(256), 0, out, (const T*)bx.p(), (const T*)bp.p(), rows, L, D);
  std::vector<float> s(x.size());
  for (int rr = 0; rr < rows; ++rr)
    for (int c = 0; c < D; ++c) s[size_t(rr) * D + c] = x[size_t(rr) * D + c] + pos[size_t(rr % L) * D + c];
  CHECK_BITS(bkt::fmt("%s B=%d L=%d D=%d off=%d alias=%d grid=%u = RNE(x + pos)", kern.c_str(), B, L, D, offset,
                      alias, grid),
             out, bkh::rne<T>(s.data(), s.size()).data(), s.size());
  CHECK_GUARDS(bo);
  CHECK_GUARDS(bx);
}

template <class T>
void take_rows_case(int R, int n, int D, int first, int stride, int offset, uint64_t seed) {
  const std::string kern = kname<T>("bk_take_rows");
  bkt::Rng r(seed);
  const std::vector<T> x = bkh::to_t<T>(bkt::random_vec(r, size_t(R) * D));
  bkt::Buf<T> bx(x.size(), offset), bo(size_t(n) * D, offset);
  bx.fill(x);
  LAUNCH(kern.c_str(), dim3(n), dim3(128), 0, bo.p(), (const T*)bx.p(), n, D, first, stride);
  std::vector<T> want(size_t(n) * D);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < D; ++c) want[size_t(i) * D + c] = x[(size_t(first) + size_t(i) * stride) * D + c];
  CHECK_BITS(bkt::fmt("%s n=%d D=%d first=%d stride=%d off=%d", kern.c_str(), n, D, first, stride, offset), bo.p(),
             want.data(), want.size());
  CHECK_GUARDS(bo);
}

template <class T>
void l2_case(int rows, int D, int offset, bool alias, uint64_t seed) {
  const std::string kern = kname<T>("bk_l2_normalize");
  bkt::Rng r(seed);
  std::vector<float> x = bkh::random_rounded<T>(r, size_t(rows) * D, -2.0f, 2.0f);
  for (int c = 0; c < D; ++c) x[c] = 0.0f;  // a zero row: divided by 1e-12, stays 0
  const size_t n = x.size();
  bkt::Buf<T> bx(n, offset), bo(n, offset);
  bx.fill(bkh::to_t<T>(x));
  bkt::Buf<float> fx(n, offset), fo(n, offset);
  fx.fill(x);
  T* out = alias ? bx.p() : bo.p();
  LAUNCH(kern.c_str(), dim3(bkt::ceil_div(rows, 4)), dim3(128), 0, out, (const T*)bx.p(), rows, D);
  LAUNCH("bk_l2_normalize_f32", dim3(bkt::ceil_div(rows, 4)), dim3(128), 0, fo.p(), (const float*)fx.p(), rows, D);
  std::vector<double> ref(n);
  for (int rr = 0; rr < rows; ++rr) {
    double ss = 0;
    for (int c = 0; c < D; ++c) ss += double(x[size_t(rr) * D + c]) * x[size_t(rr) * D + c];
    const double norm = std::max(std::sqrt(ss), 1e-12);
    for (int c = 0; c < D; ++c) ref[size_t(rr) * D + c] = x[size_t(rr) * D + c] / norm;
  }
  const std::string what = bkt::fmt("%s rows=%d D=%d off=%d alias=%d", kern.c_str(), rows, D, offset, alias);
  CHECK_ROUNDED(what, ref, out, n, 1e-6 * bkh::max_abs(ref));
  CHECK_BITS(what + " = RNE(f32 kernel)", out, bkh::rne<T>(fo.p(), n).data(), n);
  CHECK_GUARDS(bo);
  CHECK_GUARDS(bx);
}

template <class T>
void vit_tokens_case(int B, int Tn, int D, int offset, bool with_patches, unsigned grid, uint64_t seed) {
  const std::string kern = kname<T>("bk_vit_tokens");
  bkt::Rng r(seed);
  const std::vector<T> patches = bkh::to_t<T>(bkt::random_vec(r, size_t(B) * Tn * D)),
                       cls = bkh::to_t<T>(bkt::random_vec(r, D)),
                       init = bkh::to_t<T>(bkt::random_vec(r, size_t(B) * (Tn + 1) * D, 5.0f, 6.0f));
  bkt::Buf<T> bp(patches.size(), offset), bc(D, offset), bo(init.size(), offset);
  bp.fill(patches);
  bc.fill(cls);
  bo.fill(init);
  if (grid == 0) grid = unsigned(std::min(B * (Tn + 1), 65535));
  LAUNCH(kern.c_str(), dim3(grid), dim3(128), 0, bo.p(), with_patches ? (const T*)bp.p() : (const T*)nullptr,
         (const T*)bc.p(), B, Tn, D);
  std::vector<T> want = init;
  for (int b = 0; b < B; ++b)
    for (int l = 0; l <= Tn; ++l)
      for (int c = 0; c < D; ++c) {
        T& w = want[(size_t(b) * (Tn + 1) + l) * D + c];
        if (l == 0)
          w = cls[c];
        else if (with_patches)
          w = patches[(size_t(b) * Tn + l - 1) * D + c];
      }
  CHECK_BITS(bkt::fmt("%s B=%d T=%d D=%d off=%d patches=%d grid=%u", kern.c_str(), B, Tn, D, offset, with_patches,
                      grid),
             bo.p(), want.data(), want.size());
  CHECK_GUARDS(bo);
}

template <class T>
void im2col_case(int B, int C, int H, int W, int P, int offset, unsigned grid, uint64_t seed) {
  const std::string kern = kname<T>("bk_im2col_patch");
  bkt::Rng r(seed);
  const std::vector<T> px = bkh::to_t<T>(bkt::random_vec(r, size_t(B) * C * H * W, -2.0f, 2.0f));
  const int gh = H / P, gw = W / P, K = C * P * P;
  bkt::Buf<T> bp(px.size(), offset), bo(size_t(B) * gh * gw * K, offset);
  bp.fill(px);
  if (grid == 0) grid = ew_grid((long long)px.size());
  LAUNCH(kern.c_str(), dim3(grid), dim3(256), 0, bo.p(), (const T*)bp.p(), B, C, H, W, P);
  std::vector<T> want(bo.n);
  for (int b = 0; b < B; ++b)
    for (int rr = 0; rr < gh; ++rr)
      for (int q = 0; q < gw; ++q)
        for (int ci = 0; ci < C; ++ci)
          for (int y = 0; y < P; ++y)
            for (int x = 0; x < P; ++x)
              want[(size_t(b) * gh * gw + rr * gw + q) * K + (ci * P + y) * P + x] =
                  px[((size_t(b) * C + ci) * H + rr * P + y) * W + q * P + x];
  CHECK_BITS(bkt::fmt("%s B=%d C=%d H=%d W=%d P=%d off=%d grid=%u", kern.c_str(), B, C, H, W, P, offset, grid),
             bo.p(), want.data(), want.size());
  CHECK_GUARDS(bo);
}

}  // namespace

TEST(half_layernorm) {
  ln_all<__half>(1);
  ln_all<__nv_bfloat16>(1);
}

TEST(half_layernorm_constant_rows) {
  // Constant rows give exactly beta (var = 0, even with eps 1e-12), in f16/bf16 too.
  auto run = [](auto tag, bool warp) {
    using T = decltype(tag);
    const int rows = 3, D = 771;
    std::vector<float> x(size_t(rows) * D);
    for (int rr = 0; rr < rows; ++rr)
      for (int c = 0; c < D; ++c) x[size_t(rr) * D + c] = float(rr) * 100.0f - 7.25f;
    bkt::Rng r(5);
    const std::vector<T> g = bkh::to_t<T>(bkt::random_vec(r, D)), b = bkh::to_t<T>(bkt::random_vec(r, D));
    bkt::Buf<T> bx(x.size()), bg(D), bb(D), bo(x.size());
    bx.fill(bkh::to_t<T>(x));
    bg.fill(g);
    bb.fill(b);
    const std::string kern = kname<T>(warp ? "bk_layernorm_warp" : "bk_layernorm_block");
    LAUNCH(kern.c_str(), warp ? dim3(1) : dim3(rows), warp ? dim3(128) : dim3(256), 0, bo.p(), (T*)nullptr,
           (const T*)bx.p(), (const T*)nullptr, (const T*)bg.p(), (const T*)bb.p(), rows, D, 1e-12f);
    for (int rr = 0; rr < rows; ++rr) CHECK_BITS(kern + " constant row", bo.p() + size_t(rr) * D, b.data(), D);
  };
  for (bool warp : {true, false}) {
    run(__half(), warp);
    run(__nv_bfloat16(), warp);
  }
}

TEST(half_bias_act_add) {
  auto all = [](auto tag) {
    using T = decltype(tag);
    uint64_t seed = 100;
    // BLIP: fc1 + GELU (35 tokens × 3072), Linear epilogue (× 768), ops.GELU (bias NULL).
    bias_act_case<T>(35, 3072, true, 1, 0, 0, seed++);
    bias_act_case<T>(35, 768, true, 0, 0, 0, seed++);
    bias_act_case<T>(1, 100003, false, 1, 0, 0, seed++);
    // Awkward: odd widths, unaligned, tails, tiny grids (grid-stride).
    for (int bias : {0, 1})
      for (int act : {0, 1})
        for (int off : {1, 2, 4}) bias_act_case<T>(7, 771, bias, act, off, 0, seed++);
    bias_act_case<T>(1, 7, false, 1, 0, 1, seed++);
    bias_act_case<T>(37, 96, true, 1, 0, 3, seed++);
    bias_act_case<T>(3, 5, true, 0, 0, 0, seed++);
    // add: the vision residual (577 × 768), odd n, unaligned, aliasing.
    add_case<T>(577 * 768, 0, 0, seed++);
    add_case<T>(1001, 1, 0, seed++);
    add_case<T>(1003, 0, 1, seed++);
    add_case<T>(1003, 2, 2, seed++);
    add_case<T>(3, 0, 0, seed++);
  };
  all(__half());
  all(__nv_bfloat16());
}

TEST(half_embed) {
  auto all = [](auto tag) {
    using T = decltype(tag);
    uint64_t seed = 200;
    // Word embeddings: 35 ids × 768 out of a 30524-row table (V reduced), bad ids.
    gather_case<T>(35, 768, 3000, 0, false, seed++);
    gather_case<T>(35, 768, 3000, 0, true, seed++);
    gather_case<T>(9, 13, 50, 1, true, seed++);  // odd D, unaligned
    gather_case<T>(9, 12, 50, 4, false, seed++);
    // Positions: ViT 577 × 768 (B = 2), text L = 35, odd D, unaligned, in place, tiny grid.
    add_positions_case<T>(2, 577, 768, 0, false, 0, seed++);
    add_positions_case<T>(3, 35, 768, 0, true, 0, seed++);
    add_positions_case<T>(2, 5, 7, 1, false, 0, seed++);
    add_positions_case<T>(2, 35, 1024, 2, false, 3, seed++);
    // TakeRow (CLS of each of B = 3 sequences of 35) and CopyRows.
    take_rows_case<T>(105, 3, 768, 0, 35, 0, seed++);
    take_rows_case<T>(105, 3, 768, 7, 35, 1, seed++);
    take_rows_case<T>(40, 30, 13, 10, 1, 0, seed++);
    // ITC projections (D = 256), odd D, unaligned, in place.
    l2_case<T>(9, 256, 0, false, seed++);
    l2_case<T>(5, 257, 1, false, seed++);
    l2_case<T>(6, 768, 4, true, seed++);
    // ViT tokens: B = 2 × (1 + 576) × 768, patches NULL, odd D, tiny grid.
    vit_tokens_case<T>(2, 576, 768, 0, true, 0, seed++);
    vit_tokens_case<T>(2, 576, 768, 0, false, 0, seed++);
    vit_tokens_case<T>(3, 4, 7, 1, true, 2, seed++);
  };
  all(__half());
  all(__nv_bfloat16());
}

TEST(half_im2col_patch) {
  auto all = [](auto tag) {
    using T = decltype(tag);
    uint64_t seed = 300;
    im2col_case<T>(1, 3, 384, 384, 16, 0, 0, seed++);  // BLIP: 384², P = 16
    im2col_case<T>(2, 3, 32, 48, 16, 1, 0, seed++);    // unaligned: scalar path
    im2col_case<T>(2, 2, 8, 12, 4, 2, 0, seed++);      // P % 4 == 0, 4-byte aligned: scalar
    im2col_case<T>(2, 2, 8, 12, 4, 4, 5, seed++);      // 8-byte aligned: vector, small grid
    im2col_case<T>(1, 3, 6, 9, 3, 0, 1, seed++);       // P = 3, grid 1
  };
  all(__half());
  all(__nv_bfloat16());
}
