// kernels/test/test_half.h — helpers shared by the float16/bfloat16 kernel
// tests (test_half_*.cc).
//
// Every _f16/_bf16 kernel is checked three ways:
//   1. against a float64 reference computed on the rounded (half/bfloat16)
//      inputs: CHECK_ROUNDED gates NMSE ≤ u² and every element
//      |got − ref| ≤ u·|ref| + atol, where u is the unit roundoff of the
//      storage type (f16: 2^-11 ≈ 4.9e-4, bf16: 2^-8 ≈ 3.9e-3): the output is
//      rounded once, so each element may be off by at most half an ulp of the
//      result (u·|result|), plus atol for the float32 arithmetic before that
//      rounding (stated at each call). Pure rounding gives NMSE ≈ u²/6..u²/3,
//      an indexing or reduction bug NMSE ≥ 1e-3;
//   2. bit-exactly against the RNE of the _f32 kernel run on the same rounded
//      inputs (CHECK_BITS): the templated bodies compute the same float32
//      values, so "compute in float32, round once at the end" holds exactly
//      (in emulation; on a GPU FMA contraction could differ per instantiation);
//   3. data movement (gathers, copies, im2col, class tokens) bit for bit.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "harness.h"

namespace bkh {

template <class T>
struct Dt;
template <>
struct Dt<__half> {
  static constexpr const char* suffix = "f16";
  static constexpr double u = 1.0 / 2048;  // 2^-11
};
template <>
struct Dt<__nv_bfloat16> {
  static constexpr const char* suffix = "bf16";
  static constexpr double u = 1.0 / 256;  // 2^-8
};

// "bk_add" + "_f16".
template <class T>
std::string kname(const char* base) {
  return std::string(base) + "_" + Dt<T>::suffix;
}

template <class T>
std::vector<T> to_t(const std::vector<float>& v) {
  std::vector<T> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = T(v[i]);  // round to nearest even
  return r;
}
template <class T>
std::vector<float> to_f(const T* p, size_t n) {
  std::vector<float> r(n);
  for (size_t i = 0; i < n; ++i) r[i] = float(p[i]);  // exact
  return r;
}
template <class T>
std::vector<float> to_f(const std::vector<T>& v) {
  return to_f(v.data(), v.size());
}
// Values rounded to T, kept as float (exact): the inputs every reference uses.
template <class T>
std::vector<float> rounded(const std::vector<float>& v) {
  return to_f(to_t<T>(v));
}
template <class T>
std::vector<float> random_rounded(bkt::Rng& r, size_t n, float lo = -1.0f, float hi = 1.0f) {
  return rounded<T>(bkt::random_vec(r, n, lo, hi));
}

template <class T>
unsigned short bits(T x) {
  unsigned short b;
  std::memcpy(&b, &x, 2);
  return b;
}

// Largest errors seen per (kernel family, dtype), printed by -v and at the end
// of each check; collected for the README numbers.
inline void check_rounded_impl(const char* file, int line, const std::string& what, const std::vector<double>& ref,
                               const std::vector<float>& got, double u, double atol) {
  const size_t n = got.size();
  if (ref.size() < n) {
    bkt::fail(file, line, what + ": reference shorter than output");
    return;
  }
  const bkt::Diff d = bkt::compare(ref, got.data(), n);
  double worst_ratio = 0;  // max |got − ref| / (u·|ref| + atol): ≤ 1 passes
  size_t wi = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::fabs(double(got[i]) - ref[i]);
    const double ratio = e / (u * std::fabs(ref[i]) + atol);
    if (!(ratio <= worst_ratio)) {
      worst_ratio = ratio;
      wi = i;
    }
  }
  const bool ok = d.finite && d.nmse <= u * u && worst_ratio <= 1.0;
  if (bkt::g_verbose || !ok)
    std::printf("    %s %s: nmse %.3g (max %.3g = u²) max_abs %.3g; worst |err|/(u|ref|+atol) %.3f at %zu "
                "(ref %.9g got %.9g, atol %.3g)\n",
                ok ? "ok" : "BAD", what.c_str(), d.nmse, u * u, d.max_abs, worst_ratio, wi, n ? ref[wi] : 0.0,
                n ? double(got[wi]) : 0.0, atol);
  if (!ok) bkt::fail(file, line, what + ": not within one rounding of the reference");
}

template <class T>
void check_rounded(const char* file, int line, const std::string& what, const std::vector<double>& ref, const T* got,
                   size_t n, double atol) {
  check_rounded_impl(file, line, what, ref, to_f(got, n), Dt<T>::u, atol);
}
#define CHECK_ROUNDED(what, ref, got, n, atol) ::bkh::check_rounded(__FILE__, __LINE__, what, ref, got, n, atol)

// got[i] must have exactly the bits of want[i].
template <class T>
void check_bits(const char* file, int line, const std::string& what, const T* got, const T* want, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (bits(got[i]) != bits(want[i])) {
      bkt::fail(file, line,
                bkt::fmt("%s: element %zu: want %#06x (%.9g) got %#06x (%.9g)", what.c_str(), i, bits(want[i]),
                         double(float(want[i])), bits(got[i]), double(float(got[i]))));
      return;
    }
  }
  if (bkt::g_verbose) std::printf("    ok %s: %zu elements bit-exact\n", what.c_str(), n);
}
#define CHECK_BITS(what, got, want, n) ::bkh::check_bits(__FILE__, __LINE__, what, got, want, n)

// The RNE of float32 results, as T.
template <class T>
std::vector<T> rne(const float* p, size_t n) {
  std::vector<T> r(n);
  for (size_t i = 0; i < n; ++i) r[i] = T(p[i]);
  return r;
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v)
    if (std::isfinite(x)) m = std::max(m, std::fabs(x));
  return m;
}

}  // namespace bkh
