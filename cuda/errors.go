package cuda

import (
	"errors"
	"fmt"
)

var (
	// ErrUnavailable reports that CUDA cannot be used here: no cgo, no
	// driver, no device, or a driver too old.
	ErrUnavailable = errors.New("cuda: unavailable")
	// ErrCapturing reports an operation that cannot be recorded into a
	// graph (a copy from or to the host, a synchronisation, a nested
	// capture) while the device's stream is being captured.
	ErrCapturing = errors.New("cuda: not allowed while capturing a graph")
	// ErrOutOfMemory is wrapped by every *OutOfMemoryError.
	ErrOutOfMemory = errors.New("cuda: out of memory")
	// ErrClosed reports use of a closed Device or Arena.
	ErrClosed = errors.New("cuda: device closed")
	// ErrNoBLAS reports a GEMM asked of a device without cuBLAS.
	ErrNoBLAS = errors.New("cuda: no cuBLAS")
)

// Error is a failed CUDA driver or cuBLAS call.
type Error struct {
	Op     string // the operation, e.g. "launch bk_add_f32" or "memcpy HtoD"
	Code   int    // the CUresult (or cublasStatus_t + 10000 for cuBLAS)
	Name   string // e.g. "CUDA_ERROR_ILLEGAL_ADDRESS"
	Msg    string // the driver's description
	Sticky bool   // the context is unusable after this error
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Op, e.Name, e.Code, e.Msg)
	}
	return fmt.Sprintf("cuda: %s: %s (%d)", e.Op, e.Name, e.Code)
}

// Is makes errors.Is(err, ErrOutOfMemory) true for CUDA_ERROR_OUT_OF_MEMORY.
func (e *Error) Is(target error) bool {
	return target == ErrOutOfMemory && e.Code == cudaErrorOutOfMemory
}

// OutOfMemoryError reports an allocation the device could not satisfy.
type OutOfMemoryError struct {
	Op    string // what allocated, e.g. "arena activations"
	Asked uint64 // bytes asked
	Free  uint64 // bytes free on the device (or under the memory limit)
	Total uint64 // bytes in total (or the memory limit)
	Err   error  // the underlying CUDA error, if any
}

func (e *OutOfMemoryError) Error() string {
	s := fmt.Sprintf("cuda: %s: out of memory: asked %s, %s free of %s", e.Op, fmtBytes(e.Asked), fmtBytes(e.Free), fmtBytes(e.Total))
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrOutOfMemory and the CUDA error.
func (e *OutOfMemoryError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrOutOfMemory, e.Err}
	}
	return []error{ErrOutOfMemory}
}

// CUDA driver result codes used by this package (cuda.h, CUresult).
const (
	cudaSuccess           = 0
	cudaErrorInvalidValue = 1
	cudaErrorOutOfMemory  = 2
	cudaErrorIllegalState = 401
	// errNoEpilogue is no CUresult: a driver's "cuBLASLt has no algorithm
	// for this shape" (GemmBias then reports false).
	errNoEpilogue                = -2
	cudaErrorNotFound            = 500
	cudaErrorIllegalAddress      = 700
	cudaErrorLaunchOutOfResource = 701
	cudaErrorLaunchTimeout       = 702
	cudaErrorHardwareStack       = 714
	cudaErrorIllegalInstruction  = 715
	cudaErrorMisalignedAddress   = 716
	cudaErrorInvalidAddressSpace = 717
	cudaErrorInvalidPC           = 718
	cudaErrorLaunchFailed        = 719
)

// sticky reports whether a CUresult leaves the context unusable (the CUDA
// documentation: "the process must be terminated and relaunched").
func sticky(code int) bool {
	switch code {
	case cudaErrorIllegalAddress, cudaErrorLaunchTimeout, cudaErrorHardwareStack,
		cudaErrorIllegalInstruction, cudaErrorMisalignedAddress, cudaErrorInvalidAddressSpace,
		cudaErrorInvalidPC, cudaErrorLaunchFailed:
		return true
	}
	return false
}

// fmtBytes writes a byte count for people.
func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
