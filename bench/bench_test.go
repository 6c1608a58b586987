package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/blipcuda/blipcuda/model"
	"github.com/blipcuda/blipcuda/ops"
)

// The benchmarks run the real architectures with random weights: the
// arithmetic is the same as with the published checkpoints, and nothing has
// to be downloaded. Inputs are random too (normalised pixels, caption-like
// token ids), never zeros.

var (
	nets   = map[string]*model.Model{}
	netsMu sync.Mutex
)

func net(b *testing.B, name string) *model.Model {
	b.Helper()
	netsMu.Lock()
	defer netsMu.Unlock()
	if m, ok := nets[name]; ok {
		return m
	}
	var cfg model.Config
	switch name {
	case "base":
		cfg = model.BaseConfig()
	case "large":
		cfg = model.LargeConfig()
	}
	m, err := model.New(ops.NewCPU(), cfg, model.RandomWeights(cfg, 1))
	if err != nil {
		b.Fatal(err)
	}
	nets[name] = m
	return m
}

func randomPixels(cfg model.Config, n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	px := make([]float32, n*model.NumChannels*cfg.Vision.ImageSize*cfg.Vision.ImageSize)
	for i := range px {
		px[i] = float32(r.NormFloat64())
	}
	return px
}

// captions returns n caption-like token id sequences of 10–20 tokens
// ([CLS] words [SEP]), padded into a batch.
func captions(n int, seed uint64) model.TextBatch {
	r := rand.New(rand.NewPCG(seed, 2))
	ids := make([][]int32, n)
	for i := range ids {
		l := 10 + r.IntN(11)
		s := []int32{101}
		for j := 0; j < l-2; j++ {
			s = append(s, int32(1996+r.IntN(28000)))
		}
		ids[i] = append(s, 102)
	}
	return model.PadBatch(ids)
}

// BenchmarkImageEncode: one 384×384 image through the ViT and the ITC
// projection.
func BenchmarkImageEncode(b *testing.B) {
	for _, name := range []string{"base", "large"} {
		b.Run(name, func(b *testing.B) {
			m := net(b, name)
			px := randomPixels(m.Config(), 1, 3)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f, err := m.EncodeImages(ctx, px, 1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.ImageEmbeddings(ctx, f); err != nil {
					b.Fatal(err)
				}
				f.Free()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkITM: 16 captions against one image's cached raw features (the
// multimodal encoder and ITM head only); captions=1 is the cost of one
// candidate image in a text → image re-rank (its cross-attention keys and
// values, then one caption).
func BenchmarkITM(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("base/captions=%d", n), func(b *testing.B) {
			m := net(b, "base")
			ctx := context.Background()
			f, err := m.EncodeImages(ctx, randomPixels(m.Config(), 1, 4), 1)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Free()
			tb := captions(n, 5)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.ITMLogits(ctx, f, 0, tb); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "captions/s")
		})
	}
}

// BenchmarkMatch: the whole question for one image and 16 captions — encode
// the image, ITM for every caption, ITC embeddings of image and captions.
func BenchmarkMatch(b *testing.B) {
	m := net(b, "base")
	ctx := context.Background()
	px := randomPixels(m.Config(), 1, 6)
	tb := captions(16, 7)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := m.EncodeImages(ctx, px, 1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.ImageEmbeddings(ctx, f); err != nil {
			b.Fatal(err)
		}
		if _, err := m.TextEmbeddings(ctx, tb); err != nil {
			b.Fatal(err)
		}
		if _, err := m.ITMLogits(ctx, f, 0, tb); err != nil {
			b.Fatal(err)
		}
		f.Free()
	}
}

// BenchmarkTextEmbeddings: ITC embeddings of 16 captions.
func BenchmarkTextEmbeddings(b *testing.B) {
	m := net(b, "base")
	ctx := context.Background()
	tb := captions(16, 8)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.TextEmbeddings(ctx, tb); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*16)/b.Elapsed().Seconds(), "captions/s")
}
