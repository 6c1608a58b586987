//go:build cudaemu

// The CPU emulation of every kernel (runtime + all kernels/*.cu in one
// translation unit), compiled into the cuda package under -tags cudaemu.
#include "../kernels/emu/bkemu_all.cc"
