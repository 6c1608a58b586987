// kernels/attention_mma.cu — fused multi-head attention on tensor cores
// (FlashAttention-2 style), head size 64, float16 and bfloat16 storage, sm_80+.
//
// Same operation, parameters and semantics as bk_attention_d64_f32
// (attention.cu), with every tensor (q, k, v, out and the mask) in one 16-bit
// storage type T:
//   out[b, i, h] = Σ_j softmax_j( q[b, i, h]·k[b', j, h]ᵀ · scale + mask[b'', j] ) · v[b', j, h]
// x[b, i, h] = columns [64h, 64h + 64) of row i of batch b (row strides
// ldq/ldk/ldv/ldo elements: q, k, v may be column windows of one fused QKV
// output); b' = 0 when kv_batch = 1 (one k/v set shared by the batch, e.g. one
// image's cross-attention k/v for N captions) else b; b'' likewise for the
// additive mask [mask_batch, Lk] (NULL: none).
//
// Algorithm. One 128-thread block (4 warps) per (query tile of BQ = 64 rows,
// head, batch); warp w owns query rows 16w..16w+15 of the tile. The Q tile is
// staged once in shared memory and kept in registers as mma A fragments
// (ldmatrix). Keys are visited in tiles of BK = 64 rows: K, V (and the mask as
// float32, −inf past Lk) in static shared memory, rows past Lk zero-filled (no
// padding of tensors in memory), the next tile's global loads issued into
// registers before the current tile's mma work (software prefetch; one shared
// buffer, two barriers per tile). Per warp and key tile:
//   S = Q·Kᵀ            16×64 float32: 4 k-steps × 8 n-tiles of mma.m16n8k16
//                       (B fragments = rows of K by ldmatrix.x4, no transpose)
//   s = S·scale + mask  float32, rounded exactly as the f32 kernel and the Go
//                       reference: __fmul_rn(S, scale) + mask (no FMA contraction)
//   online softmax      per row m (max) and l (sum), float32:
//                       m' = max(m, max_j s_j), α = 2^((m − m')·log2 e),
//                       p_j = 2^((s_j − m')·log2 e), rounded to T (FA2: P in the
//                       storage type for the second mma), l = l·α + Σ_j p_j over
//                       the ROUNDED p_j (so out is exactly the p-weighted mean of
//                       the V rows the mma saw), O = O·α
//   O += P·V            16×64 float32: 4 k-steps × 8 n-tiles; the S accumulator
//                       fragments are repacked in registers as A fragments (the
//                       C layout of two n-tiles is the A layout of one k-step),
//                       V's B fragments by ldmatrix.x4.trans
// and at the end out = O / l, rounded once to T (0 where l = 0: a row whose
// every score is −inf), written through shared memory as 16-byte row chunks.
// Row max and l are kept per lane (each lane holds 2 rows × 16 columns of S)
// and reduced over the 4 lanes of a row with two xor shuffles (max per tile;
// l only at the end). m starts at −inf; a tile whose scores are all −inf so far
// uses base 0, so no (−inf) − (−inf) NaN appears.
//
// Fragment layouts (PTX ISA 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with
// floating point type"; g = lane >> 2, t = lane % 4; pairs low half first):
//   A (16×16):  a0 = (row g, cols 2t, 2t+1), a1 = (row g+8, same cols),
//               a2 = (row g, cols 2t+8, 2t+9), a3 = (row g+8, cols 2t+8, 2t+9)
//   B (16×8):   b0 = (k rows 2t, 2t+1, col g), b1 = (k rows 2t+8, 2t+9, col g)
//   C/D (16×8): c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g+8, same cols)
// ldmatrix.m8n8.x4 (PTX ISA 9.7.14.5.15): lanes 8j..8j+7 address rows 0..7 of
// matrix j; lane l gets (row l/4, cols 2(l%4), +1) of each matrix, .trans the
// transpose. Here: Q → matrices (rows 0-7|8-15) × (dims 0-7|8-15) = a0..a3;
// K → (keys 0-7, dims 0-7 | 8-15) = b0, b1 of n-tile 2n, keys 8-15 = n-tile
// 2n+1; V (.trans) → (keys 0-7 | 8-15) × dims 0-7 = b0, b1 of dim-tile 2n,
// dims 8-15 = dim-tile 2n+1. Shared rows are padded to 72 elements (144 B) so
// the 8 row addresses of each ldmatrix phase hit distinct banks.
//
// Numerics (vs a float64 softmax on the same 16-bit inputs): Q·Kᵀ and P·V
// products are exact, accumulated in float32 by the tensor cores; the error is
// dominated by P rounded to T (relative 2^-11 for f16, 2^-8 for bf16 per
// weight) and the final rounding of out to T. exp2f with log2 e applied to the
// already-rounded difference s − m' (not folded into the score scale, which
// would perturb the −10000-masked rows by ~1e-3 relative); its ulp-level error
// is far below the P rounding. Measured NMSE (emulation, uniform inputs, BLIP
// shapes): f16 5e-8..7e-8 (≈ 0.28·2^-22), bf16 3e-6..4.3e-6 (≈ 0.28·2^-16);
// test thresholds 1e-6 and 6e-5 (test/test_attention_mma.cc says why).
// A fully −10000-masked row stays finite and matches the reference; a row
// whose every score is −inf gives 0 (as the f32 kernel).
//
// Variants:
//   bk_attention_mma_d64_f16   T = __half          (mma .f16, f32 accumulators)
//   bk_attention_mma_d64_bf16  T = __nv_bfloat16   (mma .bf16, f32 accumulators)
// Inside each, 16-byte global loads/stores when q, k, v, out are 16-byte
// aligned and ldq, ldk, ldv, ldo are multiples of 8 (chosen uniformly per
// launch), else 2-byte accesses (same results). Warps whose 16 query rows lie
// entirely past Lq skip the math (they still help load tiles). No BQ = 16/32
// variant for few queries (Lq = 35 uses 3 of 4 warps) and no Hopper wgmma:
// sm_90 runs the same mma.sync code.
//
// Launch rules (host):
//   bk_attention_mma_d64_{f16,bf16}(T* out, const T* q, const T* k, const T* v, const T* mask,
//                                   int B, int H, int Lq, int Lk, int Dh, int ldq, int ldk, int ldv, int ldo,
//                                   int kv_batch, int mask_batch, float scale)
//     block = (128,1,1); grid = (ceil(Lq / 64), H, B); shared = 0 (static 27 904 B).
//     Preconditions (host checks): an sm_80+ device; Dh == 64 exactly (the
//     kernel does nothing otherwise); B, H, Lq, Lk ≥ 1; H, B ≤ 65535; kv_batch ∈
//     {1, B}; mask_batch ∈ {1, B} (ignored when mask is NULL); ldq, ldk, ldv,
//     ldo ≥ 64·H for the usual layout (any strides with the head slices inside
//     the rows work); every pointer at least 2-byte aligned (T's alignment);
//     out must not overlap q, k, v, mask.
//   Shapes: q [B, Lq, ldq], k and v [kv_batch, Lk, ldk/ldv], out [B, Lq, ldo],
//   mask [mask_batch, Lk], all of type T.
//
// Resources (nvcc 13.0 -O3 --resource-usage, no spills on sm_80..sm_90),
// __launch_bounds__(128, 2): registers f16/bf16 sm_80 190/190, sm_86 and sm_89
// 198/198, sm_90 188/180; 27 904 B static shared; 1 barrier. Two blocks (8
// warps) per SM, limited by registers. (With (128, 3) ptxas fits 168 registers
// spill-free on sm_80 only; sm_86/89/90 then spill, and spills are errors here.)
#include "common.cuh"
#include "mma.cuh"

namespace bk_amma {

using namespace bk;

constexpr int NT = 128;       // threads: 4 warps
constexpr int BQ = 64;        // query rows per block (16 per warp)
constexpr int BK = 64;        // keys per tile
constexpr int D = 64;         // head size
constexpr int SP = D + 8;     // shared row stride in elements (144 B: conflict-free ldmatrix)
constexpr int CH = D / 8;     // 16-byte chunks per row
constexpr int LPT = BK * CH / NT;  // chunks per thread per tile (4)
constexpr float kLog2e = 1.4426950408889634f;
static_assert(BQ == BK && BQ * CH == LPT * NT, "tile loader shape");

template <class T>
__device__ __forceinline__ unsigned short to_bits(T x);
template <>
__device__ __forceinline__ unsigned short to_bits<__half>(__half x) {
  return __half_as_ushort(x);
}
template <>
__device__ __forceinline__ unsigned short to_bits<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat16_as_ushort(x);
}
template <class T>
__device__ __forceinline__ T from_bits(unsigned short b);
template <>
__device__ __forceinline__ __half from_bits<__half>(unsigned short b) {
  return __ushort_as_half(b);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_bits<__nv_bfloat16>(unsigned short b) {
  return __ushort_as_bfloat16(b);
}

// 8 consecutive elements (one 16-byte chunk) of a row, or zeros when !valid.
template <class T>
__device__ __forceinline__ uint4 load_chunk(const T* p, bool valid, bool vec) {
  if (!valid) return make_uint4(0u, 0u, 0u, 0u);
  if (vec) return *reinterpret_cast<const uint4*>(p);
  uint32_t w[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) w[j] = uint32_t(to_bits<T>(p[2 * j])) | (uint32_t(to_bits<T>(p[2 * j + 1])) << 16);
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// The next key tile, held in registers between its global loads and its
// shared-memory stores. Thread tid owns chunk tid % 8 of rows tid / 8 + 16i.
struct Stage {
  uint4 k[LPT], v[LPT];
  float m;
};

template <class T>
__device__ __forceinline__ void fetch(Stage& st, const T* kb, const T* vb, const T* mb, int k0, int Lk, int ldk,
                                      int ldv, bool vec) {
  const int tid = threadIdx.x, c = tid % CH;
#pragma unroll
  for (int i = 0; i < LPT; ++i) {
    const int r = tid / CH + (NT / CH) * i;
    const bool ok = k0 + r < Lk;
    st.k[i] = load_chunk(kb + (long long)(k0 + r) * ldk + c * 8, ok, vec);
    st.v[i] = load_chunk(vb + (long long)(k0 + r) * ldv + c * 8, ok, vec);
  }
  st.m = 0.0f;
  if (tid < BK) st.m = k0 + tid < Lk ? (mb ? bits_to_f32<T>(to_bits<T>(mb[k0 + tid])) : 0.0f) : -INFINITY;
}

template <class T>
__device__ __forceinline__ void attention_mma(T* out, const T* q, const T* k, const T* v, const T* mask, int B, int H,
                                              int Lq, int Lk, int Dh, int ldq, int ldk, int ldv, int ldo,
                                              int kv_batch, int mask_batch, float scale) {
  __shared__ __align__(16) unsigned short Qs[BQ * SP];  // Q tile; at the end each warp's output rows
  __shared__ __align__(16) unsigned short Ks[BK * SP];
  __shared__ __align__(16) unsigned short Vs[BK * SP];
  __shared__ float Ms[BK];  // mask of the key tile (−inf past Lk)

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BQ;
  if (b >= B || h >= H || q0 >= Lq || Dh != D) return;  // whole block: no barrier skipped by part of it
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane >> 2, t = lane & 3;
  const int kvb = kv_batch == 1 ? 0 : b;
  const T* qb = q + ((long long)b * Lq + q0) * ldq + (long long)h * D;
  const T* kb = k + (long long)kvb * Lk * ldk + (long long)h * D;
  const T* vb = v + (long long)kvb * Lk * ldv + (long long)h * D;
  const T* mb = mask ? mask + (long long)(mask_batch == 1 ? 0 : b) * Lk : nullptr;
  T* ob = out + ((long long)b * Lq + q0) * ldo + (long long)h * D;
  const bool vec = ldq % 8 == 0 && ldk % 8 == 0 && ldv % 8 == 0 && ldo % 8 == 0 && aligned16(q) && aligned16(k) &&
                   aligned16(v) && aligned16(out);

  // Q tile → shared (rows past Lq zero).
#pragma unroll
  for (int i = 0; i < LPT; ++i) {
    const int r = tid / CH + (NT / CH) * i, c = tid % CH;
    *reinterpret_cast<uint4*>(&Qs[r * SP + c * 8]) = load_chunk(qb + (long long)r * ldq + c * 8, q0 + r < Lq, vec);
  }
  Stage st;
  fetch(st, kb, vb, mb, 0, Lk, ldk, ldv, vec);
  __syncthreads();

  // ldmatrix addressing: lane l serves row l % 8 of matrix j = l / 8.
  const int lr = lane & 7, j0 = (lane >> 3) & 1, j1 = lane >> 4;
  const bool active = q0 + warp * 16 < Lq;  // warp-uniform
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qa[kk], &Qs[(warp * 16 + j0 * 8 + lr) * SP + kk * 16 + j1 * 8]);

  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};  // rows g, g + 8 (l: this lane's part)

  const int ntiles = (Lk + BK - 1) / BK;
  for (int it = 0; it < ntiles; ++it) {
    __syncthreads();  // every warp is done with the previous tile
#pragma unroll
    for (int i = 0; i < LPT; ++i) {
      const int r = tid / CH + (NT / CH) * i, c = tid % CH;
      *reinterpret_cast<uint4*>(&Ks[r * SP + c * 8]) = st.k[i];
      *reinterpret_cast<uint4*>(&Vs[r * SP + c * 8]) = st.v[i];
    }
    if (tid < BK) Ms[tid] = st.m;
    __syncthreads();
    if (it + 1 < ntiles) fetch(st, kb, vb, mb, (it + 1) * BK, Lk, ldk, ldv, vec);  // overlaps the math below
    if (!active) continue;

    // S = Q·Kᵀ: n-tile n = keys 8n..8n+7.
    float s[BK / 8][4];
#pragma unroll
    for (int n = 0; n < BK / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
      for (int np = 0; np < BK / 16; ++np) {
        uint32_t kf[4];
        ldmatrix_x4(kf, &Ks[(np * 16 + j1 * 8 + lr) * SP + kk * 16 + j0 * 8]);
        mma_m16n8k16_f32<T>(s[2 * np], qa[kk], kf[0], kf[1]);
        mma_m16n8k16_f32<T>(s[2 * np + 1], qa[kk], kf[2], kf[3]);
      }

    // Scores and the online softmax; element e of an n-tile is row g + 8(e >> 1), key 8n + 2t + (e & 1).
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < BK / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        // __fmul_rn: no FMA contraction, the score is rounded as the f32 kernel's.
        const float x = __fmul_rn(s[n][e], scale) + Ms[8 * n + 2 * t + (e & 1)];
        s[n][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    float alpha[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 2));
      const float m_new = fmaxf(m_run[r], mx[r]);
      base[r] = m_new == -INFINITY ? 0.0f : m_new;  // every score so far −inf: p = 0, no NaN
      alpha[r] = exp2f((m_run[r] - base[r]) * kLog2e);
      m_run[r] = m_new;
    }
    uint32_t pp[BK / 8][2];  // P as packed T pairs: [n][0] row g, [n][1] row g + 8
    float ps[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < BK / 8; ++n)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const uint32_t w = pack2<T>(exp2f((s[n][2 * r] - base[r]) * kLog2e), exp2f((s[n][2 * r + 1] - base[r]) * kLog2e));
        pp[n][r] = w;
        ps[r] += bits_to_f32<T>((unsigned short)(w & 0xffffu)) + bits_to_f32<T>((unsigned short)(w >> 16));
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) l_run[r] = l_run[r] * alpha[r] + ps[r];
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] *= alpha[e >> 1];

    // O += P·V: k-step kk = keys 16kk..16kk+15 = S n-tiles 2kk, 2kk+1.
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      const uint32_t pa[4] = {pp[2 * kk][0], pp[2 * kk][1], pp[2 * kk + 1][0], pp[2 * kk + 1][1]};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, &Vs[(kk * 16 + j0 * 8 + lr) * SP + dp * 16 + j1 * 8]);
        mma_m16n8k16_f32<T>(o[2 * dp], pa, vf[0], vf[1]);
        mma_m16n8k16_f32<T>(o[2 * dp + 1], pa, vf[2], vf[3]);
      }
    }
  }
  if (!active) return;

  // out = O / l, rounded once to T, staged in this warp's 16 rows of Qs (read
  // only by this warp's ldmatrix before the loop), then written as row chunks.
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = l_run[r];
    l += __shfl_xor_sync(kFullMask, l, 1);
    l += __shfl_xor_sync(kFullMask, l, 2);
    inv[r] = l > 0.0f ? 1.0f / l : 0.0f;
  }
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int r = 0; r < 2; ++r)
      *reinterpret_cast<uint32_t*>(&Qs[(warp * 16 + g + 8 * r) * SP + 8 * n + 2 * t]) =
          pack2<T>(o[n][2 * r] * inv[r], o[n][2 * r + 1] * inv[r]);
  __syncwarp();
#pragma unroll
  for (int i = 0; i < 16 * CH / 32; ++i) {
    const int idx = lane + 32 * i, r = idx / CH, c = idx % CH;
    const int row = warp * 16 + r;
    if (q0 + row >= Lq) continue;
    const uint4 val = *reinterpret_cast<const uint4*>(&Qs[row * SP + c * 8]);
    T* p = ob + (long long)row * ldo + c * 8;
    if (vec) {
      *reinterpret_cast<uint4*>(p) = val;
    } else {
      const uint32_t w[4] = {val.x, val.y, val.z, val.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[2 * e] = from_bits<T>((unsigned short)(w[e] & 0xffffu));
        p[2 * e + 1] = from_bits<T>((unsigned short)(w[e] >> 16));
      }
    }
  }
}

}  // namespace bk_amma

#define BK_ATTENTION_MMA_KERNEL(NAME, T)                                                                          \
  extern "C" __global__ void __launch_bounds__(128, 2)                                                            \
      NAME(T* out, const T* q, const T* k, const T* v, const T* mask, int B, int H, int Lq, int Lk, int Dh, int ldq, \
           int ldk, int ldv, int ldo, int kv_batch, int mask_batch, float scale) {                                \
    bk_amma::attention_mma<T>(out, q, k, v, mask, B, H, Lq, Lk, Dh, ldq, ldk, ldv, ldo, kv_batch, mask_batch,    \
                              scale);                                                                            \
  }                                                                                                              \
  BK_KERNEL(NAME)

// out: [B, Lq, ldo]; q: [B, Lq, ldq]; k, v: [kv_batch, Lk, ldk/ldv]; mask: [mask_batch, Lk] or NULL; all of type T.
BK_ATTENTION_MMA_KERNEL(bk_attention_mma_d64_f16, __half);
BK_ATTENTION_MMA_KERNEL(bk_attention_mma_d64_bf16, __nv_bfloat16);
