/* kernels/test/capi_smoke.c — the emulation as a cgo binding sees it: plain C
 * against kernels/emu/bkemu.h, linked with the single translation unit
 * kernels/emu/bkemu_all.cc. Checks that every kernel registered in the unity
 * build, that a launch through void** arguments works, and the error path.
 * Built and run by kernels/test/run.sh. */
#include <stdio.h>
#include <string.h>

#include "../emu/bkemu.h"

int main(void) {
  int failures = 0;
  int n = bkemu_kernel_count(), found = 0;
  for (int i = 0; i < n; ++i)
    if (strncmp(bkemu_kernel_name(i), "bk_", 3) == 0) ++found;
  if (found < 16) { /* test_abi.cc pins the exact list */
    printf("capi: %d bk_ kernels registered in the unity build, want at least 16\n", found);
    ++failures;
  }
  float a[5] = {1, 2, 3, 4, 5}, b[5] = {10, 20, 30, 40, 50}, out[5] = {0};
  float* po = out;
  const float *pa = a, *pb = b;
  int len = 5;
  void* args[] = {&po, &pa, &pb, &len};
  int rc = bkemu_launch("bk_add_f32", 1, 1, 1, 256, 1, 1, 0, args);
  if (rc != 0) {
    printf("capi: launch: %s\n", bkemu_error(rc));
    ++failures;
  }
  for (int i = 0; i < 5; ++i)
    if (out[i] != a[i] + b[i]) {
      printf("capi: out[%d] = %g\n", i, out[i]);
      ++failures;
    }
  int sizes[8];
  if (bkemu_kernel_params("bk_add_f32", sizes, 8) != 4 || sizes[0] != 8 || sizes[3] != 4) {
    printf("capi: bk_add_f32 parameters\n");
    ++failures;
  }
  if (bkemu_launch("bk_nope", 1, 1, 1, 1, 1, 1, 0, args) != BKEMU_ERR_UNKNOWN_KERNEL) ++failures;
  printf("capi smoke: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
