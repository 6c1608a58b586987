package ops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/cuda"
)

// Error behaviour of the CUDA backend against the CPU's: the same shape
// errors, foreign/freed/closed tensors, cancelled contexts, out of memory,
// and an activation arena that stops growing once warm.

func TestCUDABadShapesMatchCPU(t *testing.T) {
	be := newTestCUDA(t)
	cpu := NewCPU()
	for _, bc := range badCalls() {
		t.Run(bc.method+"/"+bc.name, func(t *testing.T) {
			werr := bc.run(bg, cpu, func(shape ...int) Tensor { return bzeros(t, cpu, shape...) })
			gerr := bc.run(bg, be, func(shape ...int) Tensor { return bzeros(t, be, shape...) })
			if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
				t.Fatalf("cpu: %v\ncuda: %v", werr, gerr)
			}
		})
	}
}

func TestCUDAGoodCallsForeignClosedCancelled(t *testing.T) {
	be := newTestCUDA(t)
	cpu := NewCPU()
	ctx, cancel := context.WithCancel(bg)
	cancel()
	for _, gc := range goodCalls() {
		if err := gc.run(bg, be, func(shape ...int) Tensor { return bzeros(t, be, shape...) }); err != nil {
			t.Errorf("%s: %v", gc.method, err)
		}
		if err := gc.run(ctx, be, func(shape ...int) Tensor { return bzeros(t, be, shape...) }); !errors.Is(err, context.Canceled) {
			t.Errorf("%s cancelled: %v", gc.method, err)
		}
		n := 0
		err := gc.run(bg, be, func(shape ...int) Tensor {
			n++
			if n == 1 {
				return bzeros(t, cpu, shape...)
			}
			return bzeros(t, be, shape...)
		})
		if !errors.Is(err, ErrBackend) {
			t.Errorf("%s with a CPU tensor: %v", gc.method, err)
		}
		var ts []Tensor
		must(t, gc.run(bg, be, func(shape ...int) Tensor { x := bzeros(t, be, shape...); ts = append(ts, x); return x }))
		be.Free(ts[len(ts)-1])
		be.Free(ts[len(ts)-1])
		n = 0
		if err := gc.run(bg, be, func(shape ...int) Tensor { n++; return ts[n-1] }); !errors.Is(err, ErrClosed) {
			t.Errorf("%s with a freed tensor: %v", gc.method, err)
		}
	}
	x := bzeros(t, be, 2, 3)
	must(t, be.Close())
	must(t, be.Close())
	if err := be.Download(bg, make([]float32, 6), x); !errors.Is(err, ErrClosed) {
		t.Errorf("Download after Close: %v", err)
	}
	if _, err := be.New(1); !errors.Is(err, ErrClosed) {
		t.Errorf("New after Close: %v", err)
	}
}

func TestCUDAOutOfMemoryLeavesCPUUsable(t *testing.T) {
	be := newTestCUDA(t, WithDeviceOptions(cuda.WithMemoryLimit(96<<20)))
	_, err := be.New(64, 1024, 1024) // 256 MiB
	if !errors.Is(err, cuda.ErrOutOfMemory) {
		t.Fatalf("256 MiB under a 96 MiB limit: %v", err)
	}
	if !strings.Contains(err.Error(), "asked 256.0 MiB") || !strings.Contains(err.Error(), "free of 96.0 MiB") {
		t.Fatalf("OOM error does not say how much was asked and free: %v", err)
	}
	t.Logf("OOM: %v", err)
	// The device is still usable, and so is the CPU.
	x := bup(t, be, []float32{1, 2, 3}, 3)
	got := make([]float32, 3)
	must(t, be.GELU(bg, x, x))
	must(t, be.Download(bg, got, x))
	cpu := NewCPU()
	y := bup(t, cpu, []float32{1, 2, 3}, 3)
	must(t, cpu.GELU(bg, y, y))
	if d := data(t, y); nmse(got, d) > defaultNMSE {
		t.Fatalf("cuda %v, cpu %v", got, d)
	}
}

func TestCUDAActivationArenaWarm(t *testing.T) {
	be := newTestCUDA(t)
	w := bup(t, be, make([]float32, 768*768), 768, 768)
	step := func() {
		x := bzeros(t, be, 35, 768)
		h := bzeros(t, be, 35, 768)
		must(t, be.Linear(bg, h, x, w, nil, ActGELU))
		must(t, be.Gather(bg, x, w, make([]int32, 35)))
		be.Free(x)
		be.Free(h)
	}
	step()
	_, a1 := be.ArenaStats()
	for range 5 {
		step()
	}
	_, a2 := be.ArenaStats()
	if a2.Grows != a1.Grows || a2.Live != 0 {
		t.Fatalf("activation arena after warm-up %+v, then %+v: grew inside steady-state calls", a1, a2)
	}
}

// bzeros and bup make tensors on any backend.
func bzeros(t testing.TB, be Backend, shape ...int) Tensor {
	t.Helper()
	x, err := be.New(shape...)
	must(t, err)
	return x
}

func bup(t testing.TB, be Backend, d []float32, shape ...int) Tensor {
	t.Helper()
	x, err := be.Upload(d, shape...)
	must(t, err)
	return x
}
