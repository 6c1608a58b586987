// kernels/test/test_half_attention.cc — bk_attention_d{16,32,64,128}_{f16,bf16}
// against a float64 softmax(q·kᵀ·scale + mask)·v on the rounded inputs, and
// bit-exactly against the RNE of the _f32 kernel on the same inputs (scores,
// softmax statistics and P·V all float32; one rounding at the store).
//
// Shapes: BLIP's vision self-attention (577 × 577, fused QKV layout), text
// self-attention (L = 35, −10000 padding mask per batch or one for all),
// text→image cross-attention (Lq = 35, Lk = 577, kv_batch = 1), Dh not a
// multiple of 4, Lk around the key tile, unaligned rows, every variant, fully
// masked rows (−10000: finite; −inf: 0).
//
// Threshold (CHECK_ROUNDED, see test_half.h): NMSE ≤ u² and every element
// within u·|ref| + atol, u = 2^-11 (f16) / 2^-8 (bf16), atol = 1e-5·max|ref|:
// the float32 online softmax differs from the float64 reference by NMSE ~1e-13
// (test_attention.cc), negligible against one output rounding. The bf16 mask
// value −10000 rounds to −9984 (the reference uses the rounded mask too).
#include "ref.h"
#include "test_half.h"

namespace {

using bkh::kname;

struct AttnCase {
  int B, H, Lq, Lk, Dh;
  int kv_batch;
  int mask_batch;  // 0 = no mask
  bool fused_qkv;  // self-attention from one [B, L, 3·H·Dh] tensor (Lq = Lk)
  int offset;
};

int variant_dp(int Dh) { return Dh <= 16 ? 16 : Dh <= 32 ? 32 : Dh <= 64 ? 64 : 128; }

std::vector<double> attn_ref(const AttnCase& c, const float* q, const float* k, const float* v, const float* mask,
                             int ldq, int ldk, int ldv, float scale) {
  return bkt::attention_ref(c.B, c.H, c.Lq, c.Lk, c.Dh, c.kv_batch, c.mask_batch, q, k, v, mask, ldq, ldk, ldv, scale);
}

// Runs c through bk_attention_d<dp>_<T> (dp 0: the smallest that fits) and
// the f32 twin; checks both ways. mask_override: a [mask_batch, Lk] mask;
// atol_rel: atol as a fraction of max|ref|.
template <class T>
std::vector<T> run_attn(const AttnCase& c, uint64_t seed, int dp = 0, const std::vector<float>* mask_override = nullptr,
                        double atol_rel = 1e-5) {
  if (dp == 0) dp = variant_dp(c.Dh);
  const std::string base = bkt::fmt("bk_attention_d%d", dp);
  const std::string kern = kname<T>(base.c_str()), k32 = base + "_f32";
  const int bq = dp == 128 ? 32 : 64;
  bkt::Rng r(seed);
  const int W = c.H * c.Dh;
  const float scale = 1.0f / std::sqrt(float(c.Dh));
  std::vector<float> mask;
  if (mask_override) {
    mask = *mask_override;
  } else if (c.mask_batch) {
    mask = bkt::padding_mask(c.mask_batch, c.Lk, r);
  }
  mask = bkh::rounded<T>(mask);
  const int ld = c.fused_qkv ? 3 * W : W;
  const size_t nq = size_t(c.B) * c.Lq * ld, nkv = c.fused_qkv ? 0 : size_t(c.kv_batch) * c.Lk * W;
  const std::vector<float> q = bkh::random_rounded<T>(r, nq, -2.0f, 2.0f), k = bkh::random_rounded<T>(r, nkv, -2.0f, 2.0f),
                           v = bkh::random_rounded<T>(r, nkv);
  bkt::Buf<T> bq_(nq, c.offset), bk_(nkv, c.offset), bv_(nkv, c.offset), bm(mask.size(), c.offset),
      bo(size_t(c.B) * c.Lq * W, c.offset);
  bq_.fill(bkh::to_t<T>(q));
  bk_.fill(bkh::to_t<T>(k));
  bv_.fill(bkh::to_t<T>(v));
  bm.fill(bkh::to_t<T>(mask));
  bkt::Buf<float> fq(nq, c.offset), fk(nkv, c.offset), fv(nkv, c.offset), fm(mask.size(), c.offset),
      fo(bo.n, c.offset);
  fq.fill(q);
  fk.fill(k);
  fv.fill(v);
  fm.fill(mask);
  // fused: q = cols [0, W), k = [W, 2W), v = [2W, 3W) of one tensor.
  const T* tq = bq_.p();
  const T* tk = c.fused_qkv ? bq_.p() + W : bk_.p();
  const T* tv = c.fused_qkv ? bq_.p() + 2 * W : bv_.p();
  const float* f_q = fq.p();
  const float* f_k = c.fused_qkv ? fq.p() + W : fk.p();
  const float* f_v = c.fused_qkv ? fq.p() + 2 * W : fv.p();
  const dim3 grid(bkt::ceil_div(c.Lq, bq), c.H, c.B);
  LAUNCH(kern.c_str(), grid, dim3(256), 0, bo.p(), tq, tk, tv, c.mask_batch ? (const T*)bm.p() : (const T*)nullptr, c.B,
         c.H, c.Lq, c.Lk, c.Dh, ld, ld, ld, W, c.kv_batch, c.mask_batch, scale);
  LAUNCH(k32.c_str(), grid, dim3(256), 0, fo.p(), f_q, f_k, f_v, c.mask_batch ? (const float*)fm.p() : (const float*)nullptr,
         c.B, c.H, c.Lq, c.Lk, c.Dh, ld, ld, ld, W, c.kv_batch, c.mask_batch, scale);
  const float* kq = q.data();
  const float* kk = c.fused_qkv ? q.data() + W : k.data();
  const float* kv = c.fused_qkv ? q.data() + 2 * W : v.data();
  const std::vector<double> ref = attn_ref(c, kq, kk, kv, c.mask_batch ? mask.data() : nullptr, ld, ld, ld, scale);
  const std::string what = bkt::fmt("%s B=%d H=%d Lq=%d Lk=%d Dh=%d kvB=%d maskB=%d fused=%d off=%d", kern.c_str(), c.B,
                                    c.H, c.Lq, c.Lk, c.Dh, c.kv_batch, c.mask_batch, c.fused_qkv, c.offset);
  CHECK_ROUNDED(what, ref, bo.p(), bo.n, atol_rel * bkh::max_abs(ref));
  CHECK_BITS(what + " = RNE(f32 kernel)", bo.p(), bkh::rne<T>(fo.p(), bo.n).data(), bo.n);
  CHECK_GUARDS(bo);
  return bo.vec();
}

template <class T>
void attn_all(uint64_t seed) {
  // Vision self-attention: 577 tokens, fused QKV (2 of 12 heads keep it short).
  run_attn<T>({1, 2, 577, 577, 64, 1, 0, true, 0}, seed++);
  // Text self-attention with padding masks: per batch, and one for all.
  run_attn<T>({4, 12, 35, 35, 64, 4, 4, true, 0}, seed++);
  run_attn<T>({3, 2, 35, 35, 64, 3, 1, false, 0}, seed++);
  // Cross-attention: N captions × one image (kv_batch = 1), a zero [1, Lk] mask.
  run_attn<T>({3, 12, 35, 577, 64, 1, 0, false, 0}, seed++);
  run_attn<T>({2, 2, 35, 577, 64, 1, 1, false, 0}, seed++);
  run_attn<T>({2, 2, 35, 97, 64, 2, 2, false, 0}, seed++);
  // Dh not a multiple of 4, Dh < DP in every variant; Lk around the tiles
  // (BK 32 / 16); unaligned (offset 1, 2: scalar; 4: vector).
  for (int Dh : {3, 8, 13, 24, 33, 64, 100, 128}) run_attn<T>({2, 2, 19, 23, Dh, 2, 2, false, 0}, seed++);
  for (int L : {1, 15, 17, 31, 33, 65}) {
    run_attn<T>({1, 2, L, L + 2, 64, 1, 1, false, 0}, seed++);
    run_attn<T>({1, 2, 5, L, 128, 1, 1, false, 0}, seed++);
  }
  run_attn<T>({2, 2, 35, 40, 64, 2, 2, false, 1}, seed++);
  run_attn<T>({2, 2, 40, 40, 64, 2, 2, true, 2}, seed++);
  run_attn<T>({2, 2, 40, 40, 64, 2, 2, true, 4}, seed++);
  run_attn<T>({1, 2, 20, 20, 16, 1, 0, true, 1}, seed++);
  // Every variant on one head size.
  for (int dp : {16, 32, 64, 128}) run_attn<T>({2, 3, 70, 45, 16, 2, 2, false, 0}, 99, dp);
  // Fully masked caption (every key −10000, or −9984 in bf16): finite, matches.
  // atol 2^-10·max|ref|: scores sit at −10000 where a float32 ulp is 2^-10, so
  // the kernel's float32 dot product and the reference's float64 one can round
  // to scores one ulp apart (the f32 kernel has the same ~3e-5 absolute
  // deviation there), perturbing p by up to ~1e-3 relative.
  {
    std::vector<float> m(2 * 35, 0.0f);
    for (int j = 0; j < 35; ++j) m[j] = -10000.0f;
    for (int j = 5; j < 35; ++j) m[35 + j] = -10000.0f;
    run_attn<T>({2, 2, 35, 35, 64, 2, 2, false, 0}, seed++, 0, &m, 1.0 / 1024);
  }
}

// A −inf mask on every key of batch 0: that batch's rows are 0 (documented;
// the reference gives NaN); batch 1 is unaffected.
template <class T>
void attn_all_inf() {
  const int B = 2, H = 1, L = 5, Dh = 8, W = H * Dh;
  bkt::Rng r(81);
  const std::vector<float> q = bkh::random_rounded<T>(r, B * L * W), k = bkh::random_rounded<T>(r, B * L * W),
                           v = bkh::random_rounded<T>(r, B * L * W);
  std::vector<float> m(B * L, 0.0f);
  for (int j = 0; j < L; ++j) m[j] = -INFINITY;
  bkt::Buf<T> bq(q.size()), bk(k.size()), bv(v.size()), bm(m.size()), bo(q.size());
  bq.fill(bkh::to_t<T>(q));
  bk.fill(bkh::to_t<T>(k));
  bv.fill(bkh::to_t<T>(v));
  bm.fill(bkh::to_t<T>(m));
  const std::string kern = kname<T>("bk_attention_d16");
  LAUNCH(kern.c_str(), dim3(1, H, B), dim3(256), 0, bo.p(), (const T*)bq.p(), (const T*)bk.p(), (const T*)bv.p(),
         (const T*)bm.p(), B, H, L, L, Dh, W, W, W, W, B, B, 0.35f);
  for (int i = 0; i < L * W; ++i)
    EXPECT(float(bo[i]) == 0.0f, "%s fully -inf row: out[%d] = %g, want 0", kern.c_str(), i, double(float(bo[i])));
  const AttnCase c{1, H, L, L, Dh, 1, 0, false, 0};
  const std::vector<double> ref =
      attn_ref(c, q.data() + L * W, k.data() + L * W, v.data() + L * W, nullptr, W, W, W, 0.35f);
  CHECK_ROUNDED(kern + " second batch unaffected", ref, bo.p() + L * W, size_t(L) * W, 1e-5 * bkh::max_abs(ref));
  CHECK_GUARDS(bo);
}

}  // namespace

TEST(half_attention) {
  attn_all<__half>(1);
  attn_all<__nv_bfloat16>(1);
}

TEST(half_attention_all_inf_mask) {
  attn_all_inf<__half>();
  attn_all_inf<__nv_bfloat16>();
}
