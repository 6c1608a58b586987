//go:build !cgo

package cuda

import (
	"fmt"
	"unsafe"
)

// Emulated reports whether this build runs kernels on the CPU emulation.
const Emulated = false

// noDriver is the driver of a build without cgo: it cannot open anything.
type noDriver struct{}

func newDriver() driver { return noDriver{} }

func (noDriver) kind() string { return "none" }
func (noDriver) open(int, bool) (Info, error) {
	return Info{}, fmt.Errorf("cuda: this binary was built without cgo (CGO_ENABLED=0), so it cannot load the CUDA driver: %w", ErrUnavailable)
}
func (noDriver) makeCurrent() int                                   { return 0 }
func (noDriver) close()                                             {}
func (noDriver) errorName(int) string                               { return "" }
func (noDriver) errorString(int) string                             { return "" }
func (noDriver) memAlloc(uint64) (uint64, int)                      { return 0, cudaErrorInvalidValue }
func (noDriver) memFree(uint64) int                                 { return cudaErrorInvalidValue }
func (noDriver) memGetInfo() (uint64, uint64, int)                  { return 0, 0, 0 }
func (noDriver) htod(uint64, unsafe.Pointer, uint64) int            { return cudaErrorInvalidValue }
func (noDriver) dtoh(unsafe.Pointer, uint64, uint64) int            { return cudaErrorInvalidValue }
func (noDriver) dtod(uint64, uint64, uint64) int                    { return cudaErrorInvalidValue }
func (noDriver) memsetD8(uint64, byte, uint64) int                  { return cudaErrorInvalidValue }
func (noDriver) function(string) (uintptr, []int, int)              { return 0, nil, cudaErrorNotFound }
func (noDriver) launch(uintptr, [3]uint32, [3]uint32, []uint64) int { return cudaErrorInvalidValue }
func (noDriver) gemm(*Gemm) int                                     { return cudaErrorInvalidValue }
func (noDriver) synchronize() int                                   { return 0 }
func (noDriver) hasGraphs() bool                                    { return false }
func (noDriver) beginCapture() int                                  { return cudaErrorInvalidValue }
func (noDriver) endCapture() (uintptr, int)                         { return 0, cudaErrorInvalidValue }
func (noDriver) graphLaunch(uintptr) int                            { return cudaErrorInvalidValue }
func (noDriver) graphDestroy(uintptr)                               {}
func (noDriver) eventCreate() (uintptr, int)                        { return 0, cudaErrorInvalidValue }
func (noDriver) eventRecord(uintptr) int                            { return 0 }
func (noDriver) eventSynchronize(uintptr) int                       { return 0 }
func (noDriver) eventElapsed(uintptr, uintptr) (float32, int)       { return 0, 0 }
func (noDriver) eventDestroy(uintptr)                               {}
