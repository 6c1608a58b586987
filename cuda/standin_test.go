//go:build cgo && !cudaemu

package cuda

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the real driver binding (driver_real.go) against the
// stand-in CUDA libraries of kernels/standin, with their fault injection.
// They need BLIPCUDA_CUDA_LIBS pointing at `bash kernels/standin/build.sh`'s
// output (CI sets it); each fault runs in a child process, because a sticky
// CUDA error is, as NVIDIA documents, permanent for the process, and the
// driver library is loaded once per process.

// standinDir returns the stand-in directory or skips.
func standinDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BLIPCUDA_CUDA_LIBS")
	if dir == "" {
		t.Skip("BLIPCUDA_CUDA_LIBS is not set (build the stand-ins with kernels/standin/build.sh)")
	}
	if _, err := os.Stat(filepath.Join(dir, "old-driver", "libcuda.so.1")); err != nil {
		t.Skipf("BLIPCUDA_CUDA_LIBS=%s is not the stand-in directory of kernels/standin/build.sh", dir)
	}
	return dir
}

// child reruns this test binary on test name with env added, and fails t
// with the child's output when it fails. In the child, BLIPCUDA_STANDIN_CHILD
// is set.
func child(t *testing.T, name string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v")
	cmd.Env = append(append(os.Environ(), "BLIPCUDA_STANDIN_CHILD=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("%s in a child process (%v): %v\n%s", name, env, err, out)
	}
}

func inChild() bool { return os.Getenv("BLIPCUDA_STANDIN_CHILD") != "" }

// TestStandinChecksSignature: with a driver that has cuFuncGetParamInfo
// (CUDA 12.4+), a launch whose arguments do not match the kernel's
// parameters fails before reaching the driver, naming the kernel.
func TestStandinChecksSignature(t *testing.T) {
	standinDir(t)
	d := open(t)
	p, _ := d.Alloc("x", 1024)
	err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Int(4))
	if err == nil || !strings.Contains(err.Error(), "bk_add_f32") || !strings.Contains(err.Error(), "3 arguments for 4 parameters") {
		t.Fatalf("3 arguments for bk_add_f32: %v", err)
	}
	err = d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(p), Int64(4))
	if err == nil || !strings.Contains(err.Error(), "argument 3 has 8 bytes") {
		t.Fatalf("a long long for an int: %v", err)
	}
	if err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(p), Int(4)); err != nil {
		t.Fatal(err)
	}
}

// TestStandinOutOfMemory: an allocation the driver refuses is an
// *OutOfMemoryError (errors.Is ErrOutOfMemory) saying what was asked, and
// the device stays usable.
func TestStandinOutOfMemory(t *testing.T) {
	if !inChild() {
		standinDir(t)
		// open() allocates cuBLAS's and cuBLASLt's workspaces (1, 2).
		child(t, t.Name(), "BLIPCUDA_STANDIN_FAULTS=oom=3")
		return
	}
	d := open(t)
	_, err := d.Alloc("activations", 1<<20)
	var oom *OutOfMemoryError
	if !errors.As(err, &oom) || !errors.Is(err, ErrOutOfMemory) || oom.Asked != 1<<20 || !strings.Contains(err.Error(), "activations") {
		t.Fatalf("the 3rd allocation: %v", err)
	}
	if d.Err() != nil {
		t.Fatalf("out of memory poisoned the device: %v", d.Err())
	}
	p, err := d.Alloc("again", 1<<20)
	if err != nil {
		t.Fatalf("the next allocation: %v", err)
	}
	if err := d.Memset(p, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := d.Synchronize(bg); err != nil {
		t.Fatal(err)
	}
}

// stickyAfter checks what a sticky fault leaves: the call that syncs reports
// it, the device is poisoned (every call fails wrapping it), Close works,
// and a new Open fails clearly with ErrUnavailable (the process's CUDA is
// gone, as NVIDIA documents).
func stickyAfter(t *testing.T, d *Device, code int) {
	t.Helper()
	err := d.Synchronize(bg)
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != code || !ce.Sticky {
		t.Fatalf("synchronize after the fault: %v", err)
	}
	_, err = d.Alloc("after", 64)
	if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("a call after the sticky error: %v", err)
	}
	if err := d.Close(); err != nil && !errors.As(err, &ce) {
		t.Fatalf("close: %v", err)
	}
	d2, err := Open()
	if err == nil {
		d2.Close()
		t.Fatal("Open after a sticky error succeeded")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), ce.Name) {
		t.Fatalf("Open after a sticky error: %v", err)
	}
}

// TestStandinLaunchFailure: a kernel that faults (CUDA_ERROR_LAUNCH_FAILED)
// surfaces at the next call, asynchronously as on a GPU.
func TestStandinLaunchFailure(t *testing.T) {
	if !inChild() {
		standinDir(t)
		child(t, t.Name(), "BLIPCUDA_STANDIN_FAULTS=launch=2")
		return
	}
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := d.Alloc("x", 1024)
	for i := 0; i < 2; i++ {
		if err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(p), Int(4)); err != nil {
			t.Fatalf("launch %d (asynchronous: no error yet): %v", i, err)
		}
	}
	stickyAfter(t, d, cudaErrorLaunchFailed)
}

// TestStandinStickyMidGraph: a kernel faulting in the middle of a replayed
// graph (CUDA_ERROR_ILLEGAL_ADDRESS) poisons the device.
func TestStandinStickyMidGraph(t *testing.T) {
	if !inChild() {
		standinDir(t)
		child(t, t.Name(), "BLIPCUDA_STANDIN_FAULTS=graph=5")
		return
	}
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := d.Alloc("x", 1024)
	if err := d.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(p), Int(4)); err != nil {
			t.Fatal(err)
		}
	}
	g, err := d.EndCapture()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Launch(bg); err != nil { // kernels 1-3 of the graph
		t.Fatal(err)
	}
	if err := d.Synchronize(bg); err != nil {
		t.Fatal(err)
	}
	if err := g.Launch(bg); err != nil { // kernel 5 (the 2nd of this replay) faults
		t.Fatalf("graph launch (asynchronous: no error yet): %v", err)
	}
	stickyAfter(t, d, cudaErrorIllegalAddress)
}

// TestStandinOldDriver: a CUDA 11.3 driver lacks cuGraphInstantiateWithFlags,
// cuEventElapsedTime_v2 and cuFuncGetParamInfo: the device opens without
// graphs, events time through cuEventElapsedTime, launches run unchecked;
// without cuBLASLt there, GEMMs with a bias report false (the caller adds
// the bias itself).
func TestStandinOldDriver(t *testing.T) {
	if !inChild() {
		dir := standinDir(t)
		child(t, t.Name(), "BLIPCUDA_CUDA_LIBS="+filepath.Join(dir, "old-driver"))
		return
	}
	d := open(t)
	info := d.Info()
	if d.HasGraphs() || info.DriverVersion != 11030 || info.BLASLt || !info.BLAS16 {
		t.Fatalf("old driver: graphs %v, %+v", d.HasGraphs(), info)
	}
	if err := d.BeginCapture(); err == nil {
		t.Fatal("capture without graphs succeeded")
	}
	p, _ := d.Alloc("x", 1024)
	e1, _ := d.NewEvent()
	e2, _ := d.NewEvent()
	if err := e1.Record(); err != nil {
		t.Fatal(err)
	}
	if err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(p), Int(4)); err != nil {
		t.Fatal(err)
	}
	if err := e2.Record(); err != nil {
		t.Fatal(err)
	}
	if ms, err := e2.Elapsed(e1); err != nil || ms < 0 {
		t.Fatalf("elapsed through cuEventElapsedTime: %v %v", ms, err)
	}
	w, _ := d.Alloc("w", 64)
	ok, err := d.GemmBias(bg, Gemm{Type: Float32, C: p, A: w, B: w, Bias: w, M: 1, N: 1, K: 1, Lda: 1, Ldb: 1, Ldc: 1, Batch: 1})
	if ok || err != nil {
		t.Fatalf("GemmBias without cuBLASLt: %v %v", ok, err)
	}
}

// TestStandinNoLt: cuBLAS without cuBLASLt beside it: GEMMs run, biased ones
// report false (the ops layer then adds the bias in a kernel).
func TestStandinNoLt(t *testing.T) {
	if !inChild() {
		dir := standinDir(t)
		child(t, t.Name(), "BLIPCUDA_CUDA_LIBS="+filepath.Join(dir, "no-lt"))
		return
	}
	d := open(t)
	if info := d.Info(); info.BLAS == "" || info.BLASLt || !d.HasGraphs() {
		t.Fatalf("no cuBLASLt: %+v", info)
	}
	a, _ := d.Alloc("a", 64)
	if err := d.WriteFloat32(a, []float32{2, 3}); err != nil {
		t.Fatal(err)
	}
	c, _ := d.Alloc("c", 64)
	if err := d.Gemm(bg, Gemm{Type: Float32, C: c, A: a, B: a, M: 1, N: 1, K: 2, Lda: 2, Ldb: 2, Ldc: 1, Batch: 1}); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 1)
	if err := d.ReadFloat32(bg, got, c); err != nil || got[0] != 13 {
		t.Fatalf("2·2 + 3·3 = %v (%v)", got, err)
	}
	ok, err := d.GemmBias(bg, Gemm{Type: Float32, C: c, A: a, B: a, Bias: a, M: 1, N: 1, K: 2, Lda: 2, Ldb: 2, Ldc: 1, Batch: 1})
	if ok || err != nil {
		t.Fatalf("GemmBias without cuBLASLt: %v %v", ok, err)
	}
}

// TestStandinBrokenDriver: a driver missing an entry point blipcuda needs
// (cuMemsetD8Async) is refused with ErrUnavailable naming the symbol.
func TestStandinBrokenDriver(t *testing.T) {
	if !inChild() {
		dir := standinDir(t)
		child(t, t.Name(), "BLIPCUDA_CUDA_LIBS="+filepath.Join(dir, "broken-driver"))
		return
	}
	d, err := Open()
	if err == nil {
		d.Close()
		t.Fatal("a driver without cuMemsetD8Async opened")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no symbol cuMemsetD8Async") {
		t.Fatalf("missing symbol: %v", err)
	}
}

// TestStandinFreedBufferFaults: a kernel handed a buffer freed earlier
// faults (CUDA_ERROR_ILLEGAL_ADDRESS) as it would on a GPU, and the device
// is poisoned: the stand-in checks every pointer argument against the live
// allocations.
func TestStandinFreedBufferFaults(t *testing.T) {
	if !inChild() {
		standinDir(t)
		child(t, t.Name())
		return
	}
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := d.Alloc("x", 1024)
	q, _ := d.Alloc("y", 1024)
	if err := d.Free(q); err != nil {
		t.Fatal(err)
	}
	if err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(p), Ptr(p), Ptr(q), Int(4)); err != nil {
		t.Fatalf("launch (asynchronous: no error yet): %v", err)
	}
	stickyAfter(t, d, cudaErrorIllegalAddress)
}
