//go:build amd64 && !purego

package ops

import "golang.org/x/sys/cpu"

// hasAVX2FMA reports whether the AVX2/FMA assembly kernels can run: the CPU
// has AVX2 and FMA and the OS saves the YMM registers (x/sys/cpu checks both).
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// sgemm6x16AVX2 is kernelGo for k ≥ 1 with an AVX2/FMA register tile:
// twelve YMM accumulators hold the 6×16 tile; each step loads one 16-wide
// row of the B panel and broadcasts the six values of A's column. rs, ks and
// ldc are in elements; acc is 0 (store) or 1 (add to c).
//
//go:noescape
func sgemm6x16AVX2(k int, a *float32, rs, ks int, b, c *float32, ldc int, acc int)

// kernelAVX2 checks the bounds kernelGo would check, then runs the assembly
// kernel.
func kernelAVX2(k int, a []float32, rs, ks int, b, c []float32, ldc int, acc bool) {
	if k <= 0 || rs < 0 || ks < 0 {
		kernelGo(k, a, rs, ks, b, c, ldc, acc)
		return
	}
	_ = a[(gemmMR-1)*rs+(k-1)*ks]
	_ = b[k*gemmNR-1]
	_ = c[(gemmMR-1)*ldc+gemmNR-1]
	f := 0
	if acc {
		f = 1
	}
	sgemm6x16AVX2(k, &a[0], rs, ks, &b[0], &c[0], ldc, f)
}

// asmKernel returns the assembly micro-kernel, or nil where it cannot run.
func asmKernel() kernelFunc {
	if hasAVX2FMA {
		return kernelAVX2
	}
	return nil
}
