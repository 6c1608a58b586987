package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/cuda"
	"github.com/blipcuda/blipcuda/model"
	"github.com/blipcuda/blipcuda/ops"
)

// BenchmarkCheckpointProfile breaks the GPU time of the target workloads down
// by operation and shape (ops.CUDA's event profile), on the checkpoints of
// BLIPCUDA_BENCH_CHECKPOINT in each BLIPCUDA_BENCH_PRECISION: where a target
// is missed, this says what limits it. Graphs are off while profiling (a
// replay is one launch and cannot be broken down), so the sum is GPU time
// only, without launch gaps; compare it with BenchmarkCheckpoint*'s wall
// time to see the launch overhead. Inputs: random pixels and token ids of
// the real shapes (the time does not depend on the values). The table goes
// to the benchmark log and, with BLIPCUDA_PROFILE_OUT=DIR, to
// DIR/profile-<checkpoint>-<precision>-<workload>.md.
//
// Workloads: match14 (1 image, ITC and ITM passes of 14 captions of 10–20
// tokens), images64 (EncodeImages of 64 images), rerank256 (ITM of 256
// captions against one image's features).
func BenchmarkCheckpointProfile(b *testing.B) {
	ctx := context.Background()
	for _, dir := range benchCheckpoints(b) {
		cfg, err := model.LoadConfig(filepath.Join(dir, "config.json"))
		if err != nil {
			b.Fatal(err)
		}
		for _, prec := range envList("BLIPCUDA_BENCH_PRECISION", "float32") {
			dt := map[string]ops.DType{"float32": ops.F32, "float16": ops.F16, "bfloat16": ops.BF16}[prec]
			b.Run(filepath.Base(dir)+"/"+prec, func(b *testing.B) {
				be, err := ops.NewCUDA(ops.WithDType(dt))
				if errors.Is(err, cuda.ErrUnavailable) {
					b.Skipf("no CUDA device: %v", err)
				} else if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				w, err := model.OpenWeights(dir, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				m, err := model.New(be, cfg, w)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				m.SetGraphs(false)
				r := rand.New(rand.NewPCG(1, 2))
				size := cfg.Vision.ImageSize
				pixels := func(n int) []float32 {
					px := make([]float32, n*model.NumChannels*size*size)
					for i := range px {
						px[i] = r.Float32()*4 - 2
					}
					return px
				}
				texts := func(n int) model.TextBatch {
					ids := make([][]int32, n)
					for i := range ids {
						l := 10 + r.IntN(11)
						ids[i] = make([]int32, l)
						ids[i][0], ids[i][l-1] = 101, 102
						for j := 1; j < l-1; j++ {
							ids[i][j] = int32(1000 + r.IntN(20000))
						}
					}
					return model.PadBatch(ids)
				}
				one, err := m.EncodeImages(ctx, pixels(1), 1)
				if err != nil {
					b.Fatal(err)
				}
				defer one.Free()
				t14, t256 := texts(14), texts(256)
				workloads := []struct {
					name string
					run  func() error
				}{
					{"match14", func() error {
						f, err := m.EncodeImages(ctx, pixels(1), 1)
						if err != nil {
							return err
						}
						defer f.Free()
						if _, err := m.TextEmbeddings(ctx, t14); err != nil {
							return err
						}
						_, err = m.ITMLogits(ctx, f, 0, t14)
						return err
					}},
					{"images64", func() error {
						f, err := m.EncodeImages(ctx, pixels(64), 64)
						if err == nil {
							f.Free()
						}
						return err
					}},
					{"rerank256", func() error {
						_, err := m.ITMLogits(ctx, one, 0, t256)
						return err
					}},
				}
				for _, wl := range workloads {
					b.Run(wl.name, func(b *testing.B) {
						if err := wl.run(); err != nil { // warm-up: arenas, cuBLASLt plans
							b.Fatal(err)
						}
						be.StartProfile()
						for b.Loop() {
							if err := wl.run(); err != nil {
								b.Fatal(err)
							}
						}
						times, err := be.StopProfile(ctx)
						if err != nil {
							b.Fatal(err)
						}
						table := profileTable(times, b.N)
						b.Logf("%s %s %s, GPU time per call by operation:\n%s", filepath.Base(dir), prec, wl.name, table)
						if out := os.Getenv("BLIPCUDA_PROFILE_OUT"); out != "" {
							name := fmt.Sprintf("profile-%s-%s-%s.md", filepath.Base(dir), prec, wl.name)
							if err := os.WriteFile(filepath.Join(out, name), []byte(table), 0o644); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			})
		}
	}
}

// profileTable formats op times per call, longest first, with each op's
// share of the total; rows below 0.5% are folded into one.
func profileTable(times []ops.OpTime, calls int) string {
	var total float64
	for _, t := range times {
		total += t.Millis
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "| operation | calls/job | GPU µs/job | share |\n|---|---:|---:|---:|\n")
	var restMs float64
	var restN int
	for _, t := range times {
		if total > 0 && t.Millis/total < 0.005 {
			restMs += t.Millis
			restN += t.Calls
			continue
		}
		fmt.Fprintf(&sb, "| %s | %.0f | %.1f | %.1f%% |\n", t.Op, float64(t.Calls)/float64(calls), 1e3*t.Millis/float64(calls), 100*t.Millis/total)
	}
	if restN > 0 {
		fmt.Fprintf(&sb, "| (the rest) | %.0f | %.1f | %.1f%% |\n", float64(restN)/float64(calls), 1e3*restMs/float64(calls), 100*restMs/total)
	}
	fmt.Fprintf(&sb, "| **total** | | **%.1f** | |\n", 1e3*total/float64(calls))
	return sb.String()
}
