// kernels/test/test_attention_mma.cc — bk_attention_mma_d64_{f16,bf16}
// (tensor-core attention, emulated mma) against a float64 reference of
// softmax(q·kᵀ·scale + mask)·v computed on the SAME 16-bit-rounded inputs.
//
// Shapes: the BLIP uses (ViT self-attention B=2, H=12, L=577 through the fused
// QKV layout; ITM cross-attention B=14 captions of Lq=35 against one image's
// k/v, Lk=577, kv_batch=1; text self-attention B=14, L=35 with a −10000
// padding mask per batch), and awkward ones (Lq=1, Lk=1, Lk=65, Lq=63, row
// strides wider than H·64, kv_batch 1 with mask_batch B, unaligned rows for the
// 2-byte path, a row masked entirely with −10000, an all −inf row → 0).
//
// Thresholds (NMSE = Σ(ref − got)² / Σ ref²). The reference uses the rounded
// inputs, so the error comes from (1) P rounded to the storage type before the
// P·V mma (relative 2^-11 per weight for f16, 2^-8 for bf16; as the errors are
// independent the output error relative to |out| is about that divided by √3,
// larger when |out| is small from cancellation), (2) the output rounded once to
// the storage type (same size), (3) float32 accumulation and exp2f (≪ both).
// So NMSE ≈ c·u² with u = 2^-11 (f16) or 2^-8 (bf16) and c of order 1:
// u² = 2.4e-7 (f16), 1.5e-5 (bf16). Gates: f16 1e-6, bf16 6e-5 (≈ 4u²).
// Measured (printed by `run.sh -v`): f16 4e-8..7e-8, bf16 3e-6..4.3e-6 (≈ 0.28u²
// on the large shapes); shapes with Lk = 1 are exact (p = 1, out = v). A wrong mask, tile
// edge, head offset, fragment layout or rescaling gives NMSE ≥ 1e-3.
#include <set>

#include "harness.h"
#include "ref.h"

namespace {

const char* const kF16 = "bk_attention_mma_d64_f16";
const char* const kBF16 = "bk_attention_mma_d64_bf16";
constexpr double kMaxNmseF16 = 1e-6;
constexpr double kMaxNmseBF16 = 6e-5;
constexpr int kDh = 64, kBQ = 64;

struct Case {
  int B, H, Lq, Lk;
  int kv_batch;    // 1 or B
  int mask_batch;  // 0 = no mask, 1 or B
  bool fused_qkv;  // q, k, v column windows of one [B, L, 3·H·64] tensor (Lq = Lk, kv_batch = B)
  int extra_ld;    // extra elements per row (ld = H·64 + extra_ld), unfused only
  int offset;      // element offset of every buffer (odd: the 2-byte path)
};

template <class T>
double max_nmse() {
  return std::is_same_v<T, __half> ? kMaxNmseF16 : kMaxNmseBF16;
}

template <class T>
float rnd(float x) {
  return float(T(x));
}

// float64 reference on float copies of the 16-bit inputs (see ref.h: float32
// score rounding; an all −inf row gives NaN there, the kernel gives 0).
std::vector<double> ref_attention(const Case& c, const float* q, const float* k, const float* v, const float* mask,
                                  int ldq, int ldk, int ldv, float scale) {
  return bkt::attention_ref(c.B, c.H, c.Lq, c.Lk, kDh, c.kv_batch, c.mask_batch, q, k, v, mask, ldq, ldk, ldv, scale);
}

// Uploads a float vector as T (values must already be T-representable).
template <class T>
void upload(bkt::Buf<T>& buf, const std::vector<float>& x) {
  for (size_t i = 0; i < x.size(); ++i) buf[i] = T(x[i]);
}

template <class T>
std::vector<float> rounded_vec(bkt::Rng& r, size_t n, float lo, float hi) {
  std::vector<float> v = bkt::random_vec(r, n, lo, hi);
  for (auto& x : v) x = rnd<T>(x);
  return v;
}

// Runs one case; returns the output (as float) of the [B, Lq, W] result.
// mask_override: [mask_batch, Lk] values (rounded to T here).
template <class T>
std::vector<float> run_case(const Case& c, uint64_t seed, const std::vector<float>* mask_override = nullptr,
                            bool check = true, std::vector<double>* ref_out = nullptr) {
  const char* kname = std::is_same_v<T, __half> ? kF16 : kBF16;
  const double max_nmse = std::is_same_v<T, __half> ? kMaxNmseF16 : kMaxNmseBF16;
  bkt::Rng r(seed);
  const int W = c.H * kDh;
  const float scale = 0.125f;  // 1/√64
  std::vector<float> mask;
  if (mask_override)
    mask = *mask_override;
  else if (c.mask_batch)
    mask = bkt::padding_mask(c.mask_batch, c.Lk, r);
  for (auto& x : mask) x = rnd<T>(x);
  bkt::Buf<T> bmask(mask.size(), c.offset);
  upload(bmask, mask);
  const T* mp = c.mask_batch ? bmask.p() : nullptr;
  const float* mref = c.mask_batch ? mask.data() : nullptr;

  const int ldo = W + c.extra_ld;
  bkt::Buf<T> bout(size_t(c.B) * c.Lq * ldo, c.offset);
  for (size_t i = 0; i < bout.n; ++i) bout[i] = T(-7.0f);  // columns outside the heads must keep this
  std::vector<double> ref;
  if (c.fused_qkv) {
    const int ld = 3 * W;
    const std::vector<float> qkv = rounded_vec<T>(r, size_t(c.B) * c.Lq * ld, -2.0f, 2.0f);
    bkt::Buf<T> bqkv(qkv.size(), c.offset);
    upload(bqkv, qkv);
    LAUNCH(kname, dim3(bkt::ceil_div(c.Lq, kBQ), c.H, c.B), dim3(128), 0, bout.p(), (const T*)bqkv.p(),
           (const T*)bqkv.p() + W, (const T*)bqkv.p() + 2 * W, mp, c.B, c.H, c.Lq, c.Lk, kDh, ld, ld, ld, ldo,
           c.kv_batch, c.mask_batch, scale);
    ref = ref_attention(c, qkv.data(), qkv.data() + W, qkv.data() + 2 * W, mref, ld, ld, ld, scale);
  } else {
    const int ld = W + c.extra_ld;
    const std::vector<float> q = rounded_vec<T>(r, size_t(c.B) * c.Lq * ld, -2.0f, 2.0f),
                             k = rounded_vec<T>(r, size_t(c.kv_batch) * c.Lk * ld, -2.0f, 2.0f),
                             v = rounded_vec<T>(r, size_t(c.kv_batch) * c.Lk * ld, -1.0f, 1.0f);
    bkt::Buf<T> bq(q.size(), c.offset), bk(k.size(), c.offset), bv(v.size(), c.offset);
    upload(bq, q);
    upload(bk, k);
    upload(bv, v);
    LAUNCH(kname, dim3(bkt::ceil_div(c.Lq, kBQ), c.H, c.B), dim3(128), 0, bout.p(), (const T*)bq.p(),
           (const T*)bk.p(), (const T*)bv.p(), mp, c.B, c.H, c.Lq, c.Lk, kDh, ld, ld, ld, ldo, c.kv_batch,
           c.mask_batch, scale);
    ref = ref_attention(c, q.data(), k.data(), v.data(), mref, ld, ld, ld, scale);
  }
  // Gather the head columns of out; everything else must be untouched.
  std::vector<float> got(size_t(c.B) * c.Lq * W);
  bool others_ok = true;
  for (size_t row = 0; row < size_t(c.B) * c.Lq; ++row)
    for (int col = 0; col < ldo; ++col) {
      const float x = float(bout[row * ldo + col]);
      if (col < W)
        got[row * W + col] = x;
      else if (x != -7.0f)
        others_ok = false;
    }
  EXPECT(others_ok, "%s wrote outside the head columns", kname);
  if (check) {
    const std::string what = bkt::fmt("%s B=%d H=%d Lq=%d Lk=%d kvB=%d maskB=%d fused=%d ld+%d off=%d", kname, c.B,
                                      c.H, c.Lq, c.Lk, c.kv_batch, c.mask_batch, c.fused_qkv, c.extra_ld, c.offset);
    CHECK_CLOSE(what, ref, got.data(), got.size(), max_nmse);
  }
  CHECK_GUARDS(bout);
  if (ref_out) *ref_out = ref;
  return got;
}

template <class F>
void both(F f) {
  f(__half());
  f(__nv_bfloat16());
}

}  // namespace

TEST(attention_mma_abi) {
  // Pinned like test_abi.cc's table: out, q, k, v, mask, B, H, Lq, Lk, Dh,
  // ldq, ldk, ldv, ldo, kv_batch, mask_batch, scale.
  for (const char* name : {kF16, kBF16}) {
    const std::string sig = "PPPPPIIIIIIIIIIIF";
    int sizes[32];
    const int n = bkemu_kernel_params(name, sizes, 32);
    EXPECT(n == int(sig.size()), "%s: %d parameters, contract says %zu", name, n, sig.size());
    for (int i = 0; i < n && i < int(sig.size()); ++i) {
      const int want = sig[i] == 'P' ? 8 : 4;
      EXPECT(sizes[i] == want, "%s: parameter %d is %d bytes, contract says %c", name, i, sizes[i], sig[i]);
    }
  }
}

TEST(attention_mma_vision_self) {
  // ViT-B self-attention: 12 heads, 577 tokens from the fused QKV output; B=2
  // for f16, B=1 for bf16 (the same code path; keeps the emulated run short).
  run_case<__half>({2, 12, 577, 577, 2, 0, true, 0, 0}, 1);
  run_case<__nv_bfloat16>({1, 12, 577, 577, 1, 0, true, 0, 0}, 2);
}

TEST(attention_mma_cross_captions) {
  // ITM: 14 captions (Lq = 35) against one image's k/v (Lk = 577), no mask.
  both([](auto t) { run_case<decltype(t)>({14, 12, 35, 577, 1, 0, false, 0, 0}, 10); });
  // BLIP's image_atts of ones as a zero [1, Lk] mask; k/v per batch.
  both([](auto t) { run_case<decltype(t)>({2, 2, 35, 577, 2, 1, false, 0, 0}, 11); });
}

TEST(attention_mma_text_self_masked) {
  // BERT self-attention: 14 captions of 35 tokens, −10000 on padding keys, one mask row per caption.
  both([](auto t) { run_case<decltype(t)>({14, 12, 35, 35, 14, 14, true, 0, 0}, 20); });
  both([](auto t) { run_case<decltype(t)>({3, 2, 35, 35, 3, 1, false, 0, 0}, 21); });
}

TEST(attention_mma_awkward) {
  uint64_t seed = 30;
  both([&](auto t) {
    using T = decltype(t);
    // Lq, Lk of 1 and around the tile sizes (BQ = BK = 64).
    for (int L : {1, 2, 15, 16, 17, 63, 64, 65, 127, 129}) {
      run_case<T>({1, 1, L, 1, 1, 0, false, 0, 0}, seed++);
      run_case<T>({1, 2, 1, L, 1, 1, false, 0, 0}, seed++);
      run_case<T>({2, 1, L, L + 3, 2, 2, false, 0, 0}, seed++);
    }
    run_case<T>({1, 1, 63, 65, 1, 0, false, 0, 0}, seed++);
    // Row strides wider than H·64 (column windows), vector path (ld % 8 == 0) and not.
    run_case<T>({2, 3, 40, 70, 2, 2, false, 8, 0}, seed++);
    run_case<T>({2, 3, 40, 70, 2, 2, false, 3, 0}, seed++);
    // kv_batch 1 with mask_batch B (one image, per-caption mask).
    run_case<T>({3, 2, 35, 70, 1, 3, false, 0, 0}, seed++);
    // Unaligned buffers: the 2-byte path.
    run_case<T>({2, 2, 35, 40, 2, 2, false, 0, 1}, seed++);
    run_case<T>({2, 2, 40, 40, 2, 2, true, 0, 3}, seed++);
  });
}

TEST(attention_mma_vector_and_scalar_paths_agree) {
  // Same data through the 16-byte path (offset 0) and the 2-byte path (offset
  // 1): identical results (the path changes only how memory is accessed).
  both([](auto t) {
    using T = decltype(t);
    const Case a{2, 2, 70, 70, 2, 2, false, 0, 0}, b{2, 2, 70, 70, 2, 2, false, 0, 1};
    const std::vector<float> x = run_case<T>(a, 40), y = run_case<T>(b, 40);
    EXPECT(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0, "vector and scalar paths differ");
  });
}

TEST(attention_mma_fully_masked_rows) {
  both([](auto t) {
    using T = decltype(t);
    // A caption whose every key is −10000: finite, matches the reference (which subtracts the row max).
    {
      std::vector<float> m(2 * 70, 0.0f);
      for (int j = 0; j < 70; ++j) m[j] = -10000.0f;
      for (int j = 5; j < 70; ++j) m[70 + j] = -10000.0f;
      run_case<T>({2, 2, 35, 70, 2, 2, false, 0, 0}, 50, &m);
    }
    // −inf on every key of batch 0: the kernel writes 0 there (the reference
    // gives NaN); batch 1 (finite mask) is unaffected.
    {
      const Case c{2, 2, 35, 70, 2, 2, false, 0, 0};
      std::vector<float> m(2 * 70, 0.0f);
      for (int j = 0; j < 70; ++j) m[j] = -INFINITY;
      for (int j = 0; j < 70; j += 3) m[70 + j] = -INFINITY;
      std::vector<double> ref;
      const std::vector<float> got = run_case<T>(c, 51, &m, false, &ref);
      const size_t per_batch = size_t(c.Lq) * c.H * kDh;
      bool zero = true;
      for (size_t i = 0; i < per_batch; ++i) zero = zero && got[i] == 0.0f;
      EXPECT(zero, "fully -inf rows must give 0");
      const std::vector<double> ref1(ref.begin() + per_batch, ref.end());
      CHECK_CLOSE("batch with some finite keys unaffected", ref1, got.data() + per_batch, per_batch,
                  max_nmse<T>());
    }
  });
}

TEST(attention_mma_agrees_with_f32_kernel) {
  // The f32 kernel on the same (rounded) inputs: differences only from P and
  // out rounding, within the same thresholds.
  both([](auto t) {
    using T = decltype(t);
    const int B = 2, H = 2, Lq = 45, Lk = 100, W = H * kDh;
    bkt::Rng r(60);
    const std::vector<float> q = rounded_vec<T>(r, size_t(B) * Lq * W, -2, 2), k = rounded_vec<T>(r, size_t(B) * Lk * W, -2, 2),
                             v = rounded_vec<T>(r, size_t(B) * Lk * W, -1, 1);
    std::vector<float> m = bkt::padding_mask(B, Lk, r);
    for (auto& x : m) x = rnd<T>(x);  // bf16: −10000 → −9984, the same for both kernels
    bkt::Buf<float> fq(q.size()), fk(k.size()), fv(v.size()), fm(m.size()), fo(q.size());
    fq.fill(q);
    fk.fill(k);
    fv.fill(v);
    fm.fill(m);
    LAUNCH("bk_attention_d64_f32", dim3(1, H, B), dim3(256), 0, fo.p(), (const float*)fq.p(), (const float*)fk.p(),
           (const float*)fv.p(), (const float*)fm.p(), B, H, Lq, Lk, kDh, W, W, W, W, B, B, 0.125f);
    bkt::Buf<T> hq(q.size()), hk(k.size()), hv(v.size()), hm(m.size()), ho(q.size());
    upload(hq, q);
    upload(hk, k);
    upload(hv, v);
    upload(hm, m);
    const char* kname = std::is_same_v<T, __half> ? kF16 : kBF16;
    LAUNCH(kname, dim3(1, H, B), dim3(128), 0, ho.p(), (const T*)hq.p(), (const T*)hk.p(), (const T*)hv.p(),
           (const T*)hm.p(), B, H, Lq, Lk, kDh, W, W, W, W, B, B, 0.125f);
    std::vector<double> ref(fo.n);
    std::vector<float> got(ho.n);
    for (size_t i = 0; i < fo.n; ++i) {
      ref[i] = fo[i];
      got[i] = float(ho[i]);
    }
    CHECK_CLOSE(bkt::fmt("%s vs bk_attention_d64_f32", kname), ref, got.data(), got.size(),
                max_nmse<T>());
  });
}

TEST(attention_mma_deterministic) {
  const Case c{2, 2, 70, 70, 2, 2, true, 0, 0};
  const std::vector<float> a = run_case<__half>(c, 90), b = run_case<__half>(c, 90);
  EXPECT(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0, "two runs differ");
}

TEST(attention_mma_wrong_head_size_is_a_no_op) {
  // Dh ≠ 64 is a host error; the kernel writes nothing rather than garbage.
  bkt::Buf<__half> o(64 * 64), q(64 * 64);
  for (size_t i = 0; i < o.n; ++i) o[i] = __half(3.0f), q[i] = __half(0.5f);
  LAUNCH(kF16, dim3(1), dim3(128), 0, o.p(), (const __half*)q.p(), (const __half*)q.p(), (const __half*)q.p(),
         (const __half*)nullptr, 1, 1, 64, 64, 32, 64, 64, 64, 64, 1, 0, 0.125f);
  bool same = true;
  for (size_t i = 0; i < o.n; ++i) same = same && float(o[i]) == 3.0f;
  EXPECT(same, "Dh = 32 must not write");
}
