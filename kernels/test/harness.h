// kernels/test/harness.h — a small test framework for the emulated kernels.
//
// Tests launch kernels BY NAME through bkemu (the path the Go side uses), on
// buffers with guard zones, and compare with float64 references:
//   NMSE = Σ(ref − got)² / Σ ref²  (the pass/fail gate; thresholds are written
//   next to each check with the reason), plus max |ref − got| for the log.
// Every test is registered with TEST(name); harness.cc's main runs those whose
// name contains argv[1] (all by default) and prints "N passed, M failed".
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../emu/bkemu.h"
#include "../emu/cuda_emu.h"

namespace bkt {

struct Test {
  const char* name;
  void (*fn)();
};
std::vector<Test>& tests();
bool add_test(const char* name, void (*fn)());

// Failure accounting for the running test.
extern int g_failures;
extern bool g_verbose;
void fail(const char* file, int line, const std::string& msg);
std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

#define TEST(name)                                                             \
  static void test_##name();                                                   \
  [[maybe_unused]] static const bool reg_##name = ::bkt::add_test(#name, &test_##name); \
  static void test_##name()

#define EXPECT(cond, ...)                                                                   \
  do {                                                                                      \
    if (!(cond)) ::bkt::fail(__FILE__, __LINE__, std::string(#cond) + ": " + ::bkt::fmt(__VA_ARGS__)); \
  } while (0)

// Launch through bkemu with argument-size checking; failure is a test failure.
#define LAUNCH(name, grid, block, smem, ...)                                                  \
  do {                                                                                        \
    int rc_ = ::bkemu::launch(name, grid, block, smem, __VA_ARGS__);                          \
    if (rc_ != 0) ::bkt::fail(__FILE__, __LINE__, std::string("launch ") + name + ": " + bkemu_error(rc_)); \
  } while (0)

// Deterministic generator (splitmix64).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float lo = -1.0f, float hi = 1.0f) { return lo + (hi - lo) * float((next() >> 40) * (1.0 / 16777216.0)); }
  int below(int n) { return int(next() % uint64_t(n)); }
};

// A "device" buffer: n elements between two guard zones whose bytes must stay
// untouched. `offset` shifts the start by that many elements (to test
// unaligned/vector fallbacks).
template <class T>
struct Buf {
  static constexpr size_t kGuard = 67;  // guard elements after the data
  std::vector<unsigned char> raw;
  size_t n = 0, off = 0, start = 0;
  explicit Buf(size_t count = 0, size_t offset = 0) { reset(count, offset); }
  void reset(size_t count, size_t offset = 0) {
    n = count;
    off = offset;
    // The data starts 16-byte aligned plus offset elements, after a 256-byte
    // guard; every guard byte holds pattern(i) and must keep it.
    const size_t pre = 256 + offset * sizeof(T);
    raw.assign(pre + (n + kGuard) * sizeof(T) + 64, 0);
    uintptr_t base = reinterpret_cast<uintptr_t>(raw.data());
    size_t pad = (16 - base % 16) % 16;
    start = pad + pre;
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = pattern(i);
  }
  static unsigned char pattern(size_t i) { return (unsigned char)(0xA5 ^ (i * 31)); }
  T* p() { return reinterpret_cast<T*>(raw.data() + start); }
  const T* cp() const { return reinterpret_cast<const T*>(raw.data() + start); }
  T& operator[](size_t i) { return p()[i]; }
  T operator[](size_t i) const { return cp()[i]; }
  void fill(const std::vector<T>& v) {
    if (!v.empty()) std::memcpy(p(), v.data(), v.size() * sizeof(T));
  }
  std::vector<T> vec() const { return std::vector<T>(cp(), cp() + n); }
  bool guards_ok() const {
    for (size_t i = 0; i < start; ++i)
      if (raw[i] != pattern(i)) return false;
    for (size_t i = start + n * sizeof(T); i < raw.size(); ++i)
      if (raw[i] != pattern(i)) return false;
    return true;
  }
};

std::vector<float> random_vec(Rng& r, size_t n, float lo = -1.0f, float hi = 1.0f);

struct Diff {
  double nmse = 0, max_abs = 0;
  size_t worst = 0;
  bool finite = true;  // no NaN/Inf in got where ref is finite
};
Diff compare(const std::vector<double>& ref, const float* got, size_t n);

// Checks NMSE <= max_nmse, reports the numbers under `what`.
void check_close(const char* file, int line, const std::string& what, const std::vector<double>& ref,
                 const float* got, size_t n, double max_nmse);
#define CHECK_CLOSE(what, ref, got, n, max_nmse) ::bkt::check_close(__FILE__, __LINE__, what, ref, got, n, max_nmse)

// Checks exact equality (copies, gathers: no arithmetic).
void check_equal(const char* file, int line, const std::string& what, const std::vector<double>& ref,
                 const float* got, size_t n);
#define CHECK_EQUAL(what, ref, got, n) ::bkt::check_equal(__FILE__, __LINE__, what, ref, got, n)

#define CHECK_GUARDS(buf) EXPECT((buf).guards_ok(), "guard zone of %s overwritten", #buf)

inline unsigned ceil_div(long long a, long long b) { return unsigned((a + b - 1) / b); }

}  // namespace bkt
