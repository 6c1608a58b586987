// kernels/test/test_emu_mma.cc — the emulated warp-level matrix instructions
// (kernels/mma.cuh → kernels/emu/cuda_emu.h) against the PTX ISA layouts.
//
// The fragments are distributed and collected here with the FORWARD formulas
// of PTX ISA 9.7.14.5.8 ("Matrix Fragments for mma.m16n8k16 with floating point
// type": element i of lane l → row, col) and 9.7.14.5.15 (ldmatrix), written
// independently of the emulation, which uses the inverse maps. Every matrix
// element is distinct, so any lane, register, half or row/column mix-up shows.
// mma inputs are small integers, exact in f16 and bf16 with exact float32 sums,
// so D must equal the plain product bit for bit.
#include "../mma.cuh"
#include "harness.h"

namespace {

// PTX ISA 9.7.14.5.8, .f16/.bf16 multiplicand A (16×16): element i = 0..7 of
// lane l (registers a0..a3 hold elements 2r, 2r+1, low half first).
int a_row(int l, int i) { return (l >> 2) + ((i < 2 || (i >= 4 && i < 6)) ? 0 : 8); }
int a_col(int l, int i) { return (l % 4) * 2 + (i & 1) + (i >= 4 ? 8 : 0); }
// Multiplicand B (16×8): element i = 0..3 (b0 holds 0, 1; b1 holds 2, 3).
int b_row(int l, int i) { return (l % 4) * 2 + (i & 1) + (i >= 2 ? 8 : 0); }
int b_col(int l, int) { return l >> 2; }
// Accumulators C/D (16×8 float32): element i = 0..3.
int c_row(int l, int i) { return (l >> 2) + (i >= 2 ? 8 : 0); }
int c_col(int l, int i) { return (l % 4) * 2 + (i & 1); }

template <class T>
void mma_kernel_body(float* d, const unsigned short* A, const unsigned short* B, const float* C) {
  const int l = int(threadIdx.x);
  uint32_t a[4], b[2];
  for (int r = 0; r < 4; ++r) {
    const int i0 = 2 * r, i1 = 2 * r + 1;
    a[r] = uint32_t(A[a_row(l, i0) * 16 + a_col(l, i0)]) | (uint32_t(A[a_row(l, i1) * 16 + a_col(l, i1)]) << 16);
  }
  for (int r = 0; r < 2; ++r) {
    const int i0 = 2 * r, i1 = 2 * r + 1;
    b[r] = uint32_t(B[b_row(l, i0) * 8 + b_col(l, i0)]) | (uint32_t(B[b_row(l, i1) * 8 + b_col(l, i1)]) << 16);
  }
  float acc[4];
  for (int i = 0; i < 4; ++i) acc[i] = C[c_row(l, i) * 8 + c_col(l, i)];
  const uint32_t(&ar)[4] = a;
  bk::mma_m16n8k16_f32<T>(acc, ar, b[0], b[1]);
  for (int i = 0; i < 4; ++i) d[c_row(l, i) * 8 + c_col(l, i)] = acc[i];
}

}  // namespace

// d: 16×8 row-major; A: 16×16 row-major bit patterns; B: 16×8 [k][n] bit patterns; C: 16×8.
extern "C" __global__ void bkemu_test_mma_f16(float* d, const unsigned short* A, const unsigned short* B,
                                              const float* C) {
  mma_kernel_body<__half>(d, A, B, C);
}
BKEMU_REGISTER_KERNEL(bkemu_test_mma_f16);
extern "C" __global__ void bkemu_test_mma_bf16(float* d, const unsigned short* A, const unsigned short* B,
                                               const float* C) {
  mma_kernel_body<__nv_bfloat16>(d, A, B, C);
}
BKEMU_REGISTER_KERNEL(bkemu_test_mma_bf16);

// ldmatrix.x4 and .x4.trans: four 8×8 b16 matrices whose rows lie scattered in
// shared memory (row r of matrix j at slot (5·(8j + r) + 3) % 32 of a padded
// array); lane l passes the address of row l % 8 of matrix l / 8.
// out[l·8 + j] = register j of lane l without .trans, out[l·8 + 4 + j] with.
extern "C" __global__ void bkemu_test_ldmatrix(unsigned* out, const unsigned short* vals /* [4][8][8] */) {
  __shared__ __align__(16) unsigned short S16[32 * 16];  // 32 slots of 16 elements (8 used, 8 poison)
  const int l = int(threadIdx.x);
  {
    const int j = l / 8, r = l % 8, slot = (5 * (8 * j + r) + 3) % 32;
    for (int c = 0; c < 8; ++c) S16[slot * 16 + c] = vals[(j * 8 + r) * 8 + c];
    for (int c = 8; c < 16; ++c) S16[slot * 16 + c] = 0xdead;
  }
  __syncwarp();
  const int slot = (5 * l + 3) % 32;  // l = 8j + r
  uint32_t r0[4], r1[4];
  bk::ldmatrix_x4(r0, &S16[slot * 16]);
  bk::ldmatrix_x4_trans(r1, &S16[slot * 16]);
  for (int j = 0; j < 4; ++j) {
    out[l * 8 + j] = r0[j];
    out[l * 8 + 4 + j] = r1[j];
  }
}
BKEMU_REGISTER_KERNEL(bkemu_test_ldmatrix);

namespace {

template <class T>
void check_mma(const char* kname, uint64_t seed) {
  // Distinct integers: A(r, k) = 16r + k − 128 ∈ [−128, 127] shuffled by a
  // seed-dependent offset, B(k, n) = 8k + n − 64, C(r, n) = 1000 + 8r + n
  // (all exact in f16/bf16/float32; |Σ| < 2^24, so float32 sums are exact).
  bkt::Rng rng(seed);
  const int sa = rng.below(256), sb = rng.below(128);
  std::vector<float> A(256), B(128), C(128);
  for (int r = 0; r < 16; ++r)
    for (int k = 0; k < 16; ++k) A[r * 16 + k] = float((16 * r + k + sa) % 256 - 128);
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) B[k * 8 + n] = float((8 * k + n + sb) % 128 - 64);
  for (int i = 0; i < 128; ++i) C[i] = float(1000 + i);
  bkt::Buf<unsigned short> bA(256), bB(128);
  bkt::Buf<float> bC(128), bD(128);
  for (int i = 0; i < 256; ++i) {
    const T x(A[i]);
    std::memcpy(&bA[i], &x, 2);
    EXPECT(float(x) == A[i], "A value %g not exact", A[i]);
  }
  for (int i = 0; i < 128; ++i) {
    const T x(B[i]);
    std::memcpy(&bB[i], &x, 2);
  }
  bC.fill(C);
  LAUNCH(kname, dim3(1), dim3(32), 0, bD.p(), (const unsigned short*)bA.p(), (const unsigned short*)bB.p(),
         (const float*)bC.p());
  std::vector<double> ref(128);
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 8; ++n) {
      double s = C[r * 8 + n];
      for (int k = 0; k < 16; ++k) s += double(A[r * 16 + k]) * B[k * 8 + n];
      ref[r * 8 + n] = s;
    }
  CHECK_EQUAL(bkt::fmt("%s seed %llu", kname, (unsigned long long)seed), ref, bD.p(), 128);
  CHECK_GUARDS(bD);
}

}  // namespace

TEST(emu_mma_m16n8k16_layout) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    check_mma<__half>("bkemu_test_mma_f16", seed);
    check_mma<__nv_bfloat16>("bkemu_test_mma_bf16", seed);
  }
}

TEST(emu_mma_m16n8k16_rounding) {
  // Non-integer f16 inputs: the result must equal the documented emulation
  // order (float32 sum of the products from 0 over k = 0..15, then + C), and
  // the float64 product within that rounding.
  bkt::Rng rng(7);
  std::vector<float> A(256), B(128), C(128);
  bkt::Buf<unsigned short> bA(256), bB(128);
  bkt::Buf<float> bC(128), bD(128);
  for (int i = 0; i < 256; ++i) {
    const __half x(rng.uniform());
    A[i] = float(x);
    bA[i] = __half_as_ushort(x);
  }
  for (int i = 0; i < 128; ++i) {
    const __half x(rng.uniform());
    B[i] = float(x);
    bB[i] = __half_as_ushort(x);
    C[i] = rng.uniform();
  }
  bC.fill(C);
  LAUNCH("bkemu_test_mma_f16", dim3(1), dim3(32), 0, bD.p(), (const unsigned short*)bA.p(),
         (const unsigned short*)bB.p(), (const float*)bC.p());
  std::vector<double> seq(128), exact(128);
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 8; ++n) {
      float s = 0.0f;
      double e = C[r * 8 + n];
      for (int k = 0; k < 16; ++k) {
        s = s + A[r * 16 + k] * B[k * 8 + n];
        e += double(A[r * 16 + k]) * B[k * 8 + n];
      }
      seq[r * 8 + n] = C[r * 8 + n] + s;
      exact[r * 8 + n] = e;
    }
  CHECK_EQUAL("f16 mma = C + ordered float32 sum", seq, bD.p(), 128);
  // 16 roundings of ~2^-24 relative each: NMSE ≪ 1e-12.
  CHECK_CLOSE("f16 mma vs float64", exact, bD.p(), 128, 1e-12);
}

TEST(emu_ldmatrix_x4_layout) {
  // Element (j, r, c) of matrix j = 0x1000·(j + 1) + 16r + c: distinct, and
  // each part of it is readable in a failure message.
  std::vector<unsigned short> vals(4 * 8 * 8);
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) vals[(j * 8 + r) * 8 + c] = (unsigned short)(0x1000 * (j + 1) + 16 * r + c);
  bkt::Buf<unsigned short> bv(vals.size());
  bv.fill(vals);
  bkt::Buf<unsigned> bo(32 * 8);
  LAUNCH("bkemu_test_ldmatrix", dim3(1), dim3(32), 0, bo.p(), (const unsigned short*)bv.p());
  auto val = [&](int j, int r, int c) { return unsigned(vals[(j * 8 + r) * 8 + c]); };
  for (int l = 0; l < 32; ++l)
    for (int j = 0; j < 4; ++j) {
      // PTX ISA 9.7.14.5.15: lane l holds row l/4, elements 2(l%4), 2(l%4)+1 (low first); .trans the transpose.
      const unsigned want = val(j, l / 4, 2 * (l % 4)) | (val(j, l / 4, 2 * (l % 4) + 1) << 16);
      const unsigned want_t = val(j, 2 * (l % 4), l / 4) | (val(j, 2 * (l % 4) + 1, l / 4) << 16);
      EXPECT(bo[l * 8 + j] == want, "ldmatrix lane %d r%d = %08x, want %08x", l, j, bo[l * 8 + j], want);
      EXPECT(bo[l * 8 + 4 + j] == want_t, "ldmatrix.trans lane %d r%d = %08x, want %08x", l, j, bo[l * 8 + 4 + j],
             want_t);
    }
  CHECK_GUARDS(bo);
}
