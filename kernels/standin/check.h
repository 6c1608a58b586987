// kernels/standin/check.h — what the stand-ins' own test programs share: the
// CHECK counters, symbol lookup, and the directory of the libraries.
#ifndef BKSTANDIN_CHECK_H
#define BKSTANDIN_CHECK_H

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

inline int passed = 0, failed = 0;

// CHECK counts a passed check, or prints the failed one with a printf message.
#define CHECK(cond, ...)                          \
  do {                                            \
    if (cond) {                                   \
      ++passed;                                   \
    } else {                                      \
      ++failed;                                   \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
    }                                             \
  } while (0)

// sym resolves name in lib or exits (status 2: the library is incomplete).
inline void* sym(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  if (!p) {
    fprintf(stderr, "missing symbol %s\n", name);
    exit(2);
  }
  return p;
}

// libdir is arg when given, else the directory of this executable (where
// build.sh puts the libraries).
inline std::string libdir(const char* arg) {
  if (arg) return arg;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  std::string dir = buf;
  return dir.substr(0, dir.rfind('/'));
}

// report prints the totals and returns the exit status.
inline int report() {
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

#endif
