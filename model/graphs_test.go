package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blipcuda/blipcuda/cuda"
	"github.com/blipcuda/blipcuda/ops"
)

// TestGraphsMatchEager runs the tiny models on the CUDA backend (emulated
// under -tags cudaemu; skipped without one) with captured forward passes and
// without: the first call of each shape captures, later calls replay on new
// inputs, and every result must equal the eager pass bit for bit (the same
// kernels on the same data, only launched differently).
func TestGraphsMatchEager(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	for _, name := range []string{"tiny-base", "tiny-large"} {
		t.Run(name, func(t *testing.T) {
			be, err := ops.NewCUDA()
			if err != nil {
				if errors.Is(err, cuda.ErrUnavailable) {
					t.Skipf("no CUDA backend: %v", err)
				}
				t.Fatal(err)
			}
			defer be.Close()
			cfg := tinyConfig(t, name)
			w, err := OpenWeights(filepath.Join(fixtureDir, name), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			m, err := New(be, cfg, w)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			fx := f.Models[name]
			px := fixturePixels(t, fx)
			nImg := len(fx.Images)
			per := len(px) / nImg
			texts := fx.BLIP.ITMInputIDs
			run := func() (out [][]float32) {
				// Each image alone (shape [1, ...]: captured once, then
				// replayed on the other images), then the batch.
				for i := range nImg {
					feats, err := m.EncodeImages(ctx, px[i*per:(i+1)*per], 1)
					if err != nil {
						t.Fatal(err)
					}
					raw, err := feats.Download(ctx)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, raw)
					for _, tb := range []TextBatch{batchOf(texts), batchOf(texts[:1]), batchOf(texts)} {
						l, err := m.ITMLogits(ctx, feats, 0, tb)
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, l)
					}
					feats.Free()
				}
				// Two images' cross keys, used in turn on the same plans:
				// each switch copies the other's into the plans' tensor.
				feats, err := m.EncodeImages(ctx, px[:2*per], 2)
				if err != nil {
					t.Fatal(err)
				}
				kv0, err := m.CrossKeys(ctx, feats, 0)
				if err != nil {
					t.Fatal(err)
				}
				kv1, err := m.CrossKeys(ctx, feats, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, tb := range []TextBatch{batchOf(texts), batchOf(texts[:1])} {
					for _, kv := range []*CrossKeys{kv0, kv0, kv1, kv0, kv1, kv1} {
						l, err := m.ITMLogitsKV(ctx, kv, tb)
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, l)
					}
				}
				kv0.Free()
				kv1.Free()
				feats.Free()
				for _, tb := range []TextBatch{batchOf(fx.BLIP.InputIDs), batchOf(fx.BLIP.InputIDs[1:]), batchOf(fx.BLIP.InputIDs)} {
					e, err := m.TextEmbeddings(ctx, tb)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, e)
				}
				return out
			}
			graphs := run()
			if err := m.GraphError(); err != nil {
				t.Fatalf("a capture failed: %v", err)
			}
			if len(m.plans) == 0 {
				t.Fatal("no forward pass was captured")
			}
			t.Logf("%d plans captured", len(m.plans))
			m.SetGraphs(false)
			eager := run()
			for i := range eager {
				for j := range eager[i] {
					if math.Float32bits(graphs[i][j]) != math.Float32bits(eager[i][j]) {
						t.Fatalf("result %d, value %d: graph %v, eager %v", i, j, graphs[i][j], eager[i][j])
					}
				}
			}
		})
	}
}

// TestLaunchCounts counts the driver calls that queue work (kernels, GEMMs,
// copies, memsets, graph launches) for one Match-shaped job — 1 image, the
// ITC pass and the ITM pass of 14 captions — eagerly and with captured
// graphs, on tiny models of 1 or 2 layers, and extrapolates to the base
// model's 12 + 12 layers. With graphs a replayed job must cost a few calls,
// independent of the depth.
func TestLaunchCounts(t *testing.T) {
	ctx := context.Background()
	type layers struct{ v, t int }
	calls := map[layers][2]int{} // eager, replay
	for _, ly := range []layers{{1, 1}, {2, 1}, {1, 2}} {
		be, err := ops.NewCUDA()
		if err != nil {
			if errors.Is(err, cuda.ErrUnavailable) {
				t.Skipf("no CUDA backend: %v", err)
			}
			t.Fatal(err)
		}
		cfg := tinyConfig(t, "tiny-base")
		cfg.Vision.NumHiddenLayers, cfg.Text.NumHiddenLayers = ly.v, ly.t
		m, err := New(be, cfg, RandomWeights(cfg, 7))
		if err != nil {
			t.Fatal(err)
		}
		px := make([]float32, NumChannels*cfg.Vision.ImageSize*cfg.Vision.ImageSize)
		ids := make([][]int32, 14)
		for i := range ids {
			ids[i] = []int32{101, int32(2000 + i), 102}
		}
		job := func() int {
			before := be.Device().Counts().Calls()
			f, err := m.EncodeImages(ctx, px, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.TextEmbeddings(ctx, batchOf(ids)); err != nil {
				t.Fatal(err)
			}
			if _, err := m.ITMLogits(ctx, f, 0, batchOf(ids)); err != nil {
				t.Fatal(err)
			}
			f.Free()
			return be.Device().Counts().Calls() - before
		}
		m.SetGraphs(false)
		eager := job()
		m.SetGraphs(true)
		job() // captures
		replay := job()
		calls[ly] = [2]int{eager, replay}
		t.Logf("%d vision + %d text layers: %d calls eager, %d replayed", ly.v, ly.t, eager, replay)
		m.Close()
		be.Close()
	}
	perV := calls[layers{2, 1}][0] - calls[layers{1, 1}][0]
	perT := calls[layers{1, 2}][0] - calls[layers{1, 1}][0]
	base := calls[layers{1, 1}][0] + 11*perV + 11*perT
	t.Logf("per vision layer %d calls, per text layer %d (ITC + ITM passes); base model (12 + 12 layers): %d calls eager, %d replayed",
		perV, perT, base, calls[layers{1, 1}][1])
	for ly, c := range calls {
		if c[1] != calls[layers{1, 1}][1] || c[1] > 20 {
			t.Errorf("%v: %d calls replayed; want a constant ≤ 20", ly, c[1])
		}
	}
}

// failingCapturer is a CPU backend whose captures always fail.
type failingCapturer struct {
	*ops.CPU
	tries int
}

func (f *failingCapturer) Capture(context.Context, func() error) (ops.Replay, error) {
	f.tries++
	return nil, fmt.Errorf("no graphs here: %w", ops.ErrUnsupported)
}

func (f *failingCapturer) Write(context.Context, ops.Tensor, []float32) error {
	return ops.ErrUnsupported
}

// TestFailedCaptureNotRetried: a shape whose capture failed runs eagerly,
// with the same results, and is not captured again on every call;
// SetGraphs(true) gives it another chance.
func TestFailedCaptureNotRetried(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t, "tiny-base")
	be := &failingCapturer{CPU: ops.NewCPU()}
	m, err := New(be, cfg, RandomWeights(cfg, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tb := batchOf([][]int32{{101, 2003, 102}, {101, 2004, 2005, 102}})
	var first []float32
	for i := range 3 {
		e, err := m.TextEmbeddings(ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = e
		} else if !slices.Equal(e, first) {
			t.Fatalf("call %d: embeddings changed", i)
		}
	}
	if be.tries != 1 || !errors.Is(m.GraphError(), ops.ErrUnsupported) || m.Graphs() != 0 {
		t.Fatalf("%d capture tries (want 1), GraphError %v, %d graphs", be.tries, m.GraphError(), m.Graphs())
	}
	m.SetGraphs(true)
	if _, err := m.TextEmbeddings(ctx, tb); err != nil {
		t.Fatal(err)
	}
	if be.tries != 2 {
		t.Fatalf("after SetGraphs(true): %d tries, want 2", be.tries)
	}
}
