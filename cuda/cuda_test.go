package cuda

import (
	"context"
	"errors"
	"strings"
	"testing"
)

var bg = context.Background()

// open opens a device or skips the test with the reason.
func open(t *testing.T, opts ...Option) *Device {
	t.Helper()
	d, err := Open(opts...)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Skipf("no CUDA device: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestUnavailableIsClear(t *testing.T) {
	d, err := Open()
	if err == nil {
		d.Close()
		t.Skip("a device is available")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v does not wrap ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "libcuda.so.1") && !strings.Contains(err.Error(), "cgo") && !strings.Contains(err.Error(), "cu") {
		t.Fatalf("error %q does not say why", err)
	}
	t.Logf("Open: %v", err)
}

func TestAddAndCopies(t *testing.T) {
	d := open(t)
	t.Logf("%+v", d.Info())
	const n = 1000
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i], b[i] = float32(i), float32(2*i)+0.5
	}
	pa, _ := d.Alloc("a", n*4)
	pb, _ := d.Alloc("b", n*4)
	po, err := d.Alloc("out", n*4)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFloat32(pa, a); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFloat32(pb, b); err != nil {
		t.Fatal(err)
	}
	if err := d.Launch(bg, "bk_add_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, Ptr(po), Ptr(pa), Ptr(pb), Int(n)); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, n)
	if err := d.ReadFloat32(bg, out, po); err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if out[i] != a[i]+b[i] {
			t.Fatalf("out[%d] = %v, want %v", i, out[i], a[i]+b[i])
		}
	}
	if err := d.Launch(bg, "bk_nonexistent_f32", Dim3{1, 1, 1}, Dim3{32, 1, 1}); err == nil || !strings.Contains(err.Error(), "bk_nonexistent_f32") {
		t.Fatalf("unknown kernel: %v", err)
	}
	if err := d.Err(); err != nil {
		t.Fatalf("non-sticky error poisoned the device: %v", err)
	}
	for _, p := range []DevicePtr{pa, pb, po} {
		if err := d.Free(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGemm(t *testing.T) {
	d := open(t)
	if !d.HasBLAS() {
		t.Skip("no cuBLAS")
	}
	// Two batches of C[3,2] = A[3,4]·B[2,4]ᵀ, B broadcast.
	M, N, K := 3, 2, 4
	A := make([]float32, 2*M*K)
	for i := range A {
		A[i] = float32(i%7) - 3
	}
	B := []float32{1, 2, 3, 4, -1, 0, 1, 0.5}
	pa, _ := d.Alloc("A", uint64(len(A))*4)
	pb, _ := d.Alloc("B", uint64(len(B))*4)
	pc, _ := d.Alloc("C", uint64(2*M*N)*4)
	d.WriteFloat32(pa, A)
	d.WriteFloat32(pb, B)
	if err := d.Gemm(bg, Gemm{C: pc, A: pa, B: pb, M: M, N: N, K: K, Lda: K, Ldb: K, Ldc: N, StrideA: int64(M * K), StrideC: int64(M * N), Batch: 2}); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 2*M*N)
	d.ReadFloat32(bg, got, pc)
	for b := range 2 {
		for m := range M {
			for n := range N {
				var s float32
				for k := range K {
					s += A[b*M*K+m*K+k] * B[n*K+k]
				}
				if g := got[b*M*N+m*N+n]; g != s {
					t.Fatalf("C[%d][%d][%d] = %v, want %v", b, m, n, g, s)
				}
			}
		}
	}
}

func TestArenaReuseAndOOM(t *testing.T) {
	d := open(t, WithMemoryLimit(8<<20))
	a := d.NewArena("test", 1<<20)
	defer a.Close()
	var ps []DevicePtr
	for range 3 {
		p, err := a.Alloc(600 << 10)
		if err != nil {
			t.Fatal(err)
		}
		if p%256 != 0 {
			t.Fatalf("unaligned %#x", uint64(p))
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		a.Free(p)
	}
	s := a.Stats()
	if s.Chunks != 1 || s.Reserved < 1800<<10 || s.Live != 0 {
		t.Fatalf("after freeing everything: %+v, want one merged chunk", s)
	}
	grows := s.Grows
	for range 5 {
		ps = ps[:0]
		for range 3 {
			p, err := a.Alloc(600 << 10)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		for _, p := range ps {
			a.Free(p)
		}
	}
	if g := a.Stats().Grows; g != grows {
		t.Fatalf("steady state grew the arena: %d grows, was %d", g, grows)
	}
	_, err := a.Alloc(64 << 20)
	var oom *OutOfMemoryError
	if !errors.As(err, &oom) || !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("64 MiB under an 8 MiB limit: %v", err)
	}
	if oom.Asked < 64<<20 || oom.Total != 8<<20 || !strings.Contains(err.Error(), "asked 64.0 MiB") {
		t.Fatalf("OOM error %q (%+v)", err, oom)
	}
	// Still usable.
	if p, err := a.Alloc(1024); err != nil {
		t.Fatal(err)
	} else {
		a.Free(p)
	}
}

func TestEvents(t *testing.T) {
	d := open(t)
	e0, err := d.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer e0.Close()
	e1, _ := d.NewEvent()
	defer e1.Close()
	if err := e0.Record(); err != nil {
		t.Fatal(err)
	}
	if err := e1.Record(); err != nil {
		t.Fatal(err)
	}
	if err := e1.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if ms, err := e1.Elapsed(e0); err != nil || ms < 0 {
		t.Fatalf("elapsed %v, %v", ms, err)
	}
}

func TestClosed(t *testing.T) {
	d := open(t)
	d.Close()
	if _, err := d.Alloc("x", 4); !errors.Is(err, ErrClosed) {
		t.Fatalf("alloc after close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
