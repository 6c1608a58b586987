package eval

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/model"
	"github.com/blipcuda/blipcuda/tokenizer"
)

// The benchmarks measure each phase of the evaluation on a slice of a
// COCO-sized workload (5,000 images, 25,010 captions, k = 256) with the
// real base architecture (ViT-B/16, random weights: the same arithmetic as
// the checkpoints) on the CPU, and report the whole workload's cost per
// phase extrapolated from the slice (coco-h: hours), except the ITC top-k,
// which runs at full size.
//
//	go test -run '^$' -bench . -benchtime 1x ./eval/
//
// BLIPCUDA_BENCH_DEVICE=cuda runs them on the GPU (default cpu).

const (
	cocoImages = 5000
	cocoTexts  = 25010
	cocoK      = 256
)

var (
	benchOnce  sync.Once
	benchModel *blipcuda.Model
	benchErr   error
)

func baseModel(b *testing.B) *blipcuda.Model {
	b.Helper()
	benchOnce.Do(func() {
		tok, err := tokenizer.Load(tinyBase) // the real bert-base-uncased vocabulary
		if err != nil {
			benchErr = err
			return
		}
		cfg := model.BaseConfig()
		device := os.Getenv("BLIPCUDA_BENCH_DEVICE") // default cpu
		if device == "" {
			device = "cpu"
		}
		benchModel, benchErr = blipcuda.New(cfg, model.RandomWeights(cfg, 1), tok, blipcuda.WithDevice(device))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchModel
}

// cocoCaptions are n caption-like sentences of 8 to 14 words.
func cocoCaptions(n int) []string {
	words := strings.Fields("a an the man woman dog cat bus train plate of food sitting standing on next to " +
		"table street field beach red white large small young people group two with in front near water kitchen " +
		"holding riding playing tennis skateboard pizza giraffe elephant bathroom sink")
	r := rand.New(rand.NewPCG(5, 5))
	out := make([]string, n)
	for i := range out {
		w := make([]string, 8+r.IntN(7))
		for j := range w {
			w[j] = words[r.IntN(len(words))]
		}
		out[i] = strings.Join(w, " ")
	}
	return out
}

func syntheticImage(b *testing.B, m *blipcuda.Model, seed int) *blipcuda.Image {
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8((x + 7*seed) % 256), uint8(y * 255 / 479), uint8((x*y/31 + 13*seed) % 256), 255})
		}
	}
	im, err := m.ImageFromGo(fmt.Sprintf("synthetic-%d", seed), img)
	if err != nil {
		b.Fatal(err)
	}
	return im
}

// BenchmarkPhaseImages: the image encoder with features, per image.
func BenchmarkPhaseImages(b *testing.B) {
	m := baseModel(b)
	ims := []*blipcuda.Image{syntheticImage(b, m, 1), syntheticImage(b, m, 2)}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.EncodeImages(ctx, ims, true); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N) / float64(len(ims))
	b.ReportMetric(per, "s/image")
	b.ReportMetric(per*cocoImages/3600, "coco-h")
}

// BenchmarkPhaseTexts: the text encoder (ITC), per text.
func BenchmarkPhaseTexts(b *testing.B) {
	m := baseModel(b)
	texts := cocoCaptions(256)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.EncodeTexts(ctx, texts); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N) / float64(len(texts))
	b.ReportMetric(per, "s/text")
	b.ReportMetric(per*cocoTexts/3600, "coco-h")
}

// unitRows are n random unit vectors of d values.
func unitRows(n, d int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 9))
	out := make([][]float32, n)
	for i := range out {
		v := make([]float32, d)
		var s float64
		for k := range v {
			x := r.NormFloat64()
			v[k] = float32(x)
			s += x * x
		}
		for k := range v {
			v[k] /= float32(math.Sqrt(s))
		}
		out[i] = v
	}
	return out
}

// BenchmarkPhaseITC: both top-k searches at COCO's full size (5,000 image
// and 25,010 text embeddings, k = 256), not extrapolated.
func BenchmarkPhaseITC(b *testing.B) {
	img, txt := unitRows(cocoImages, 256, 1), unitRows(cocoTexts, 256, 2)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := itcTopK(ctx, img, txt, cocoK, func(int) {}); err != nil {
			b.Fatal(err)
		}
		if _, err := itcTopK(ctx, txt, img, cocoK, func(int) {}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/3600, "coco-h")
}

// BenchmarkPhaseITM: one image's candidates through the multimodal
// encoder, per pair. A COCO run scores between 6,402,560 pairs (every
// image's top 256 among the texts' top 256) and 7,682,560 (no overlap):
// coco-h is given for the upper bound.
func BenchmarkPhaseITM(b *testing.B) {
	m := baseModel(b)
	ctx := context.Background()
	enc, err := m.EncodeImages(ctx, []*blipcuda.Image{syntheticImage(b, m, 3)}, true)
	if err != nil {
		b.Fatal(err)
	}
	img := blipcuda.ImageCandidate{Name: "synthetic", Features: enc[0].Features, Embedding: enc[0].Embedding}
	captions := cocoCaptions(128)
	tenc, err := m.EncodeTexts(ctx, captions)
	if err != nil {
		b.Fatal(err)
	}
	texts := tenc // with their tokens and embeddings, as the evaluation gives them
	b.ResetTimer()
	for b.Loop() {
		if _, err := matchLogits(ctx, m, img, texts); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N) / float64(len(texts))
	b.ReportMetric(per, "s/pair")
	b.ReportMetric(per*(cocoImages+cocoTexts)*cocoK/3600, "coco-h")
}
