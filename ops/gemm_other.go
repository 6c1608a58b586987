//go:build !amd64 || purego

package ops

// asmKernel returns nil: this build has no assembly micro-kernel (not amd64,
// or the purego build tag forces the portable code).
func asmKernel() kernelFunc { return nil }
