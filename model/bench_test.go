package model

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/blipcuda/blipcuda/ops"
)

// BenchmarkImageITM scores one image against 256 captions of 35 tokens (the BLIP protocol pads to 35) in
// batches of 64 (the root package's default TextBatch) with the real base
// architecture (random weights) on the CPU, two ways side by side:
//
//   - kv=per-batch: ITMLogits per batch, which computes the image's
//     cross-attention keys and values for every batch (what every caller
//     did before CrossKeys);
//   - kv=once: CrossKeys once, then ITMLogitsKV per batch (what Match,
//     MatchFeatures, MatchMany, RerankTexts and the evaluation do now).
//
// BenchmarkCrossKeys measures the keys and values alone.
//
//	go test -run '^$' -bench 'ImageITM|CrossKeys' -benchtime 1x ./model/
func BenchmarkImageITM(b *testing.B) {
	m, f := benchBase(b)
	defer m.Close()
	defer f.Free()
	ctx := context.Background()
	batches := benchBatches(256, 64, 35)
	b.Run("kv=per-batch", func(b *testing.B) {
		for b.Loop() {
			for _, tb := range batches {
				if _, err := m.ITMLogits(ctx, f, 0, tb); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/256, "s/pair")
	})
	b.Run("kv=once", func(b *testing.B) {
		for b.Loop() {
			kv, err := m.CrossKeys(ctx, f, 0)
			if err != nil {
				b.Fatal(err)
			}
			for _, tb := range batches {
				if _, err := m.ITMLogitsKV(ctx, kv, tb); err != nil {
					b.Fatal(err)
				}
			}
			kv.Free()
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/256, "s/pair")
	})
}

// BenchmarkCrossKeys: one image's cross-attention keys and values for every
// text layer of the base architecture (577 tokens × 768 by 768 × 18,432).
func BenchmarkCrossKeys(b *testing.B) {
	m, f := benchBase(b)
	defer m.Close()
	defer f.Free()
	ctx := context.Background()
	for b.Loop() {
		kv, err := m.CrossKeys(ctx, f, 0)
		if err != nil {
			b.Fatal(err)
		}
		kv.Free()
	}
}

// benchBase builds the base architecture with random weights on the CPU
// and uploads one image's random features.
func benchBase(b *testing.B) (*Model, *ImageFeatures) {
	b.Helper()
	cfg := BaseConfig()
	m, err := New(ops.NewCPU(), cfg, RandomWeights(cfg, 1))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	feats := make([]float32, cfg.NumImageTokens()*cfg.Vision.HiddenSize)
	for i := range feats {
		feats[i] = float32(r.NormFloat64())
	}
	f, err := m.UploadImageFeatures(feats, 1)
	if err != nil {
		b.Fatal(err)
	}
	return m, f
}

// benchBatches makes n ITM token sequences of length l ([ENC], random
// words, [SEP]) in batches of size.
func benchBatches(n, size, l int) []TextBatch {
	r := rand.New(rand.NewPCG(3, 4))
	var out []TextBatch
	for first := 0; first < n; first += size {
		ids := make([][]int32, min(size, n-first))
		for i := range ids {
			s := make([]int32, l)
			s[0], s[l-1] = 30523, 102
			for k := 1; k < l-1; k++ {
				s[k] = int32(1000 + r.IntN(29000))
			}
			ids[i] = s
		}
		out = append(out, PadBatch(ids))
	}
	return out
}
