// kernels/emu/bkemu_all.cc — the whole CPU emulation in ONE translation unit:
// the runtime plus every kernel source. A consumer that cannot list many
// files (cgo compiles only the C/C++ files of its own package directory) adds
// a one-line file such as
//     #include "../kernels/emu/bkemu_all.cc"
// with `#cgo CXXFLAGS: -std=c++20 -O2 -fno-strict-aliasing` and
// `#cgo LDFLAGS: -pthread`, and calls the C API of kernels/emu/bkemu.h.
// Keeping registration and bkemu_launch in one object also means no linker
// can drop a kernel's registration (a risk with static archives).
//
// Every kernels/*.cu must be listed here; kernels/test/run.sh fails otherwise.
// Helpers private to a .cu live in a namespace named after it (bk_ln,
// bk_attn, ...) so the files do not collide in this unity build.
#include "cuda_emu.cc"

#include "../attention.cu"
#include "../attention_mma.cu"
#include "../bias_act.cu"
#include "../embed.cu"
#include "../gemm.cu"
#include "../layernorm.cu"
#include "../patch.cu"
