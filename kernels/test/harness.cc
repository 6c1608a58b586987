// kernels/test/harness.cc — test runner: runs every TEST (or those whose name
// contains argv[1]), prints one line per test and "N passed, M failed".
#include "harness.h"

#include <chrono>
#include <cstdarg>

namespace bkt {

int g_failures = 0;
bool g_verbose = false;

std::vector<Test>& tests() {
  static std::vector<Test> t;
  return t;
}

bool add_test(const char* name, void (*fn)()) {
  tests().push_back({name, fn});
  return true;
}

std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

void fail(const char* file, int line, const std::string& msg) {
  ++g_failures;
  if (g_failures <= 20) std::printf("    FAIL %s:%d: %s\n", file, line, msg.c_str());
}

std::vector<float> random_vec(Rng& r, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = r.uniform(lo, hi);
  return v;
}

Diff compare(const std::vector<double>& ref, const float* got, size_t n) {
  Diff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double g = got[i], r = ref[i];
    if (std::isfinite(r) && !std::isfinite(g)) d.finite = false;
    const double e = std::fabs(r - g);
    num += (r - g) * (r - g);
    den += r * r;
    if (e > d.max_abs || std::isnan(e)) {
      d.max_abs = e;
      d.worst = i;
    }
  }
  d.nmse = den > 0 ? num / den : num;
  if (std::isnan(num)) d.nmse = INFINITY;
  return d;
}

void check_close(const char* file, int line, const std::string& what, const std::vector<double>& ref,
                 const float* got, size_t n, double max_nmse) {
  if (ref.size() < n) {
    fail(file, line, what + ": reference shorter than output");
    return;
  }
  const Diff d = compare(ref, got, n);
  const bool ok = d.finite && d.nmse <= max_nmse;
  if (g_verbose || !ok)
    std::printf("    %s %s: nmse %.3g (max %.1g) max_abs %.3g at %zu (ref %.9g got %.9g)\n", ok ? "ok" : "BAD",
                what.c_str(), d.nmse, max_nmse, d.max_abs, d.worst, n ? ref[d.worst] : 0.0,
                n ? double(got[d.worst]) : 0.0);
  if (!ok) fail(file, line, what + ": not close");
}

void check_equal(const char* file, int line, const std::string& what, const std::vector<double>& ref,
                 const float* got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!(float(ref[i]) == got[i]) && !(std::isnan(ref[i]) && std::isnan(got[i]))) {
      fail(file, line, fmt("%s: element %zu: want %.9g got %.9g", what.c_str(), i, ref[i], double(got[i])));
      return;
    }
  }
  if (g_verbose) std::printf("    ok %s: %zu elements equal\n", what.c_str(), n);
}

}  // namespace bkt

int main(int argc, char** argv) {
  using namespace bkt;
  const char* filter = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-v") == 0)
      g_verbose = true;
    else
      filter = argv[i];
  }
  int passed = 0, failed = 0;
  const auto t_all = std::chrono::steady_clock::now();
  for (const Test& t : tests()) {
    if (filter && std::strstr(t.name, filter) == nullptr) continue;
    g_failures = 0;
    const auto t0 = std::chrono::steady_clock::now();
    t.fn();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %s (%.0f ms)\n", g_failures ? "FAIL" : "ok  ", t.name, ms);
    std::fflush(stdout);
    (g_failures ? failed : passed)++;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  std::printf("kernels emulation: %.1f s\n", s);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
