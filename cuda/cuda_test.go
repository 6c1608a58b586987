package cuda

import (
	"context"
	"errors"
	"math"
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

// TestGemmLeadingDimensions: every leading dimension differs (A and B are
// column windows of wider matrices whose other columns hold NaN, C's padding
// columns a sentinel), with strided batches, without and with the bias
// epilogue, in float32 and the 16-bit types: a mapping that swaps lda and
// ldb, or reads padding, or writes past N, shows. Small integers keep every
// sum exact in float16 and bfloat16 too.
func TestGemmLeadingDimensions(t *testing.T) {
	d := open(t)
	if !d.HasBLAS() {
		t.Skip("no cuBLAS")
	}
	const M, N, K, lda, ldb, ldc, batch = 3, 4, 5, 7, 6, 9, 2
	nan := float32(math.NaN())
	A := make([]float32, batch*M*lda)
	B := make([]float32, batch*N*ldb)
	C := make([]float32, batch*M*ldc)
	for i := range A {
		A[i] = nan
		if i%lda < K {
			A[i] = float32((i*5)%7) - 3
		}
	}
	for i := range B {
		B[i] = nan
		if i%ldb < K {
			B[i] = float32((i*3)%5) - 2
		}
	}
	for i := range C {
		C[i] = -77
	}
	bias := []float32{1, -2, 3, -4}
	want := func(b, m, n int, withBias bool) float32 {
		var s float32
		for k := range K {
			s += A[b*M*lda+m*lda+k] * B[b*N*ldb+n*ldb+k]
		}
		if withBias {
			s += bias[n]
		}
		return s
	}
	for _, typ := range []ElemType{Float32, Float16, BFloat16} {
		if typ != Float32 && !d.Info().BLAS16 {
			continue
		}
		size := uint64(4)
		if typ != Float32 {
			size = 2
		}
		put := func(name string, v []float32) DevicePtr {
			p, err := d.Alloc(name, uint64(len(v))*size)
			if err != nil {
				t.Fatal(err)
			}
			if typ == Float32 {
				err = d.WriteFloat32(p, v)
			} else {
				h := make([]uint16, len(v))
				for i, x := range v {
					h[i] = roundTo16(x, typ)
				}
				err = d.WriteUint16(p, h)
			}
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		get := func(p DevicePtr, n int) []float32 {
			out := make([]float32, n)
			if typ == Float32 {
				if err := d.ReadFloat32(bg, out, p); err != nil {
					t.Fatal(err)
				}
				return out
			}
			h := make([]uint16, n)
			if err := d.ReadUint16(bg, h, p); err != nil {
				t.Fatal(err)
			}
			for i, x := range h {
				out[i] = from16(x, typ)
			}
			return out
		}
		pa, pb, pbias := put("A", A), put("B", B), put("bias", bias)
		g := Gemm{Type: typ, A: pa, B: pb, M: M, N: N, K: K, Lda: lda, Ldb: ldb, Ldc: ldc,
			StrideA: M * lda, StrideB: N * ldb, StrideC: M * ldc, Batch: batch}
		g.C = put("C", C)
		if err := d.Gemm(bg, g); err != nil {
			t.Fatal(err)
		}
		check := func(what string, got []float32, batches int, withBias bool) {
			for b := range batches {
				for m := range M {
					for n := range ldc {
						g, w := got[b*M*ldc+m*ldc+n], float32(-77)
						if n < N {
							w = want(b, m, n, withBias)
						}
						if g != w {
							t.Fatalf("%v %s: C[%d][%d][%d] = %v, want %v", typ, what, b, m, n, g, w)
						}
					}
				}
			}
		}
		check("batched", get(g.C, len(C)), batch, false)
		// The bias epilogue (batch 1), when cuBLASLt is there.
		g1 := g
		g1.Batch, g1.StrideA, g1.StrideB, g1.StrideC, g1.Bias = 1, 0, 0, 0, pbias
		g1.C = put("C1", C[:M*ldc])
		ok, err := d.GemmBias(bg, g1)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			check("bias epilogue", get(g1.C, M*ldc), 1, true)
		} else if d.Info().BLASLt {
			t.Errorf("%v: cuBLASLt had no algorithm for lda %d ldb %d ldc %d", typ, lda, ldb, ldc)
		}
	}
}

// roundTo16 and from16 convert small integers (exact in both types).
func roundTo16(x float32, typ ElemType) uint16 {
	if math.IsNaN(float64(x)) {
		if typ == BFloat16 {
			return 0x7fc0
		}
		return 0x7e00
	}
	if typ == BFloat16 {
		return uint16(math.Float32bits(x) >> 16)
	}
	if x == 0 {
		return 0
	}
	// |x| < 2048 integer: exact in float16.
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	return sign | uint16(exp)<<10 | uint16(b>>13&0x3ff)
}

func from16(h uint16, typ ElemType) float32 {
	if typ == BFloat16 {
		return math.Float32frombits(uint32(h) << 16)
	}
	if h&0x7fff == 0 {
		return 0
	}
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10&0x1f) - 15 + 127
	return math.Float32frombits(sign | exp<<23 | uint32(h&0x3ff)<<13)
}
