package ops

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/blipcuda/blipcuda/cuda"
)

// TestCUDACapture: a captured Linear → GELU → LayerNorm chain replays to the
// same bits as running it eagerly, on fresh inputs written between replays;
// host transfers inside the capture fail; a failed capture leaves the
// backend usable.
func TestCUDACapture(t *testing.T) {
	for _, dt := range []DType{F32, F16} {
		t.Run(dt.String(), func(t *testing.T) {
			c := newTestCUDA(t, WithDType(dt))
			if !c.Device().HasGraphs() {
				t.Skip("no CUDA graphs")
			}
			ctx := context.Background()
			r := rand.New(rand.NewPCG(1, 2))
			vals := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = r.Float32()*2 - 1
				}
				return v
			}
			const M, K, N = 37, 64, 96
			w, _ := c.Upload(vals(N*K), N, K)
			b, _ := c.Upload(vals(N), N)
			g, _ := c.Upload(vals(N), N)
			be, _ := c.Upload(vals(N), N)
			x, _ := c.New(M, K)
			y, _ := c.New(M, N)
			chain := func(out Tensor) error {
				h, err := c.New(M, N)
				if err != nil {
					return err
				}
				defer c.Free(h)
				if err := c.Linear(ctx, h, x, w, b, ActGELU); err != nil {
					return err
				}
				return c.LayerNorm(ctx, out, h, g, be, 1e-5)
			}
			rep, err := c.Capture(ctx, func() error { return chain(y) })
			if err != nil {
				t.Fatal(err)
			}
			defer rep.Close()
			for round := range 3 {
				in := vals(M * K)
				if err := c.Write(ctx, x, in); err != nil {
					t.Fatal(err)
				}
				if err := rep.Launch(ctx); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, M*N)
				if err := c.Download(ctx, got, y); err != nil {
					t.Fatal(err)
				}
				want, _ := c.New(M, N)
				if err := chain(want); err != nil {
					t.Fatal(err)
				}
				wv := make([]float32, M*N)
				if err := c.Download(ctx, wv, want); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(wv[i]) {
						t.Fatalf("round %d: element %d: replay %v, eager %v", round, i, got[i], wv[i])
					}
				}
			}
			_, err = c.Capture(ctx, func() error {
				_, err := c.Upload([]float32{1}, 1)
				return err
			})
			if !errors.Is(err, cuda.ErrCapturing) {
				t.Fatalf("Upload inside a capture: %v", err)
			}
			_, err = c.Capture(ctx, func() error { return c.Gather(ctx, x, w, make([]int32, M)) })
			if !errors.Is(err, cuda.ErrCapturing) {
				t.Fatalf("Gather inside a capture: %v", err)
			}
			if err := rep.Launch(ctx); err != nil {
				t.Fatalf("replay after failed captures: %v", err)
			}
			rep.Close()
			if err := rep.Launch(ctx); !errors.Is(err, ErrClosed) {
				t.Fatalf("launch after Close: %v", err)
			}
		})
	}
}
