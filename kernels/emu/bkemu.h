/*
 * bkemu.h — C API of the CPU emulation of blipcuda's CUDA kernels.
 *
 * Plain C, so cgo can include it. The kernels (the .cu files of kernels/), compiled
 * with the host C++ compiler against kernels/emu/cuda_emu.h, register themselves by name;
 * bkemu_launch runs one of them on the CPU with the same arguments that
 * cuLaunchKernel would take:
 *
 *   args[i] points to the value of the kernel's parameter i (a float*, int,
 *   float, long long, ... exactly as declared in the .cu), as for
 *   cuLaunchKernel's kernelParams. "Device pointers" are ordinary host pointers.
 *
 * A launch is synchronous: when bkemu_launch returns, every block has finished.
 * Launches from several host threads are serialised. Results do not depend on
 * the number of worker threads (blocks never share state in these kernels, and
 * the threads of a block are scheduled in a fixed order).
 *
 * Limits checked (the same as an sm_80..sm_90 GPU): 1 <= bx, by <= 1024,
 * 1 <= bz <= 64, bx*by*bz <= 1024; 1 <= gx <= 2^31-1, 1 <= gy, gz <= 65535;
 * shared_bytes (dynamic shared memory) <= 232448 (227 KiB). A GPU also needs
 * cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES) above 48 KiB; emulation
 * cannot tell whether the host did that, so it does not check it.
 *
 * Environment: BKEMU_THREADS=n sets the number of worker threads (default: the
 * number of CPUs); BKEMU_STACK_KB=n the stack of each emulated CUDA thread
 * (default 128).
 */
#ifndef BKEMU_H
#define BKEMU_H

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes of bkemu_launch (0 = success). */
#define BKEMU_OK 0
#define BKEMU_ERR_UNKNOWN_KERNEL (-1)   /* no kernel registered under that name */
#define BKEMU_ERR_INVALID_BLOCK (-2)    /* block dimensions out of range */
#define BKEMU_ERR_INVALID_GRID (-3)     /* grid dimensions out of range (0 included) */
#define BKEMU_ERR_SHARED_TOO_LARGE (-4) /* shared_bytes > 232448 */
#define BKEMU_ERR_NULL_ARGS (-5)        /* args is NULL for a kernel with parameters */
#define BKEMU_ERR_DEADLOCK (-6)         /* threads of a block wait at barriers that can never complete
                                           (e.g. __syncthreads in divergent code) */
#define BKEMU_ERR_RESOURCES (-7)        /* could not allocate stacks or start threads */
#define BKEMU_ERR_ARG_SIZE (-8)         /* C++ typed launch helper: argument sizes differ from the kernel's */

/* Runs kernel `kernel_name` over grid (gx, gy, gz) of blocks (bx, by, bz) with
 * `shared_bytes` of dynamic shared memory. Returns 0 or a BKEMU_ERR_* code. */
int bkemu_launch(const char* kernel_name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                 unsigned bz, unsigned shared_bytes, void** args);

/* A static English description of a return code of this API. */
const char* bkemu_error(int code);

/* Number of registered kernels, and the name of the i-th (NULL when out of
 * range), in name order: lets a test enumerate every kernel. */
int bkemu_kernel_count(void);
const char* bkemu_kernel_name(int i);

/* Number of parameters of the named kernel, or BKEMU_ERR_UNKNOWN_KERNEL. When
 * sizes is not NULL, the byte size of each parameter (at most max_sizes) is
 * stored there, so a host binding can check its argument marshalling. */
int bkemu_kernel_params(const char* kernel_name, int* sizes, int max_sizes);

/* Like bkemu_kernel_params, but stores 1 for each parameter that is a pointer
 * (a device address) and 0 for the others, so a driver stand-in can check the
 * addresses a launch passes. */
int bkemu_kernel_param_pointers(const char* kernel_name, unsigned char* pointers, int max_params);

/* Sets the number of worker threads for later launches (n <= 0: the default).
 * Returns the previous setting. */
int bkemu_set_threads(int n);

#ifdef __cplusplus
}
#endif

#endif /* BKEMU_H */
