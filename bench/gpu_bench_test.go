package bench

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/hub"
)

// The checkpoint benchmarks run the public API (blipcuda.LoadCheckpoint,
// Match, EncodeImages, MatchFeatures) on real checkpoint directories — on the
// GPU, the random-weight base and large checkpoints bench/transformers_gpu.py
// builds — for the workloads of the GPU targets, so that
// scripts/compare-gpu.sh can put them next to transformers on the same
// machine in the same run. They skip unless BLIPCUDA_BENCH_CHECKPOINT is set.
//
//	BLIPCUDA_BENCH_CHECKPOINT   comma-separated checkpoint directories; each
//	                            sub-benchmark is named after the directory's
//	                            base name ("base", "large")
//	BLIPCUDA_BENCH_DEVICE       cuda (default), cpu or auto
//	BLIPCUDA_BENCH_PRECISION    comma-separated precisions (default float32);
//	                            one a backend refuses (ErrUnavailable) is skipped
//	BLIPCUDA_BENCH_TEXT_BATCH   WithTextBatch (default 256: one batch, as transformers)
//	BLIPCUDA_BENCH_IMAGE_BATCH  WithImageBatch (default 256: one batch, as transformers)
//	BLIPCUDA_BENCH_IMAGES       images per EncodeImages call (default 256)
//	BLIPCUDA_BENCH_MATCH_CAPTIONS, BLIPCUDA_BENCH_RERANK_CAPTIONS  (14, 256)
//
// Texts use the "hf" protocol (transformers' tokenisation, [CLS] for both
// heads) and the captions of testdata/captions.txt, as transformers_gpu.py.
// Each iteration is one API call, which returns host slices, so every
// iteration ends with the device synchronised. Metrics: ns/op, p50-ms and
// p99-ms (nearest rank over the b.N timed calls; run with -benchtime Nx),
// and images/s or captions/s from the median call.
//
// One model is kept loaded at a time (sub-benchmarks of the same checkpoint
// and precision share it), so that base and large in three precisions never
// hold device memory together.

//go:embed testdata/captions.txt
var captionsText string

func benchCaptions() []string {
	var out []string
	for _, l := range strings.Split(captionsText, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func envList(name, def string) []string {
	s := os.Getenv(name)
	if s == "" {
		s = def
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// benchCheckpoints returns the checkpoint directories, or skips.
func benchCheckpoints(b *testing.B) []string {
	dirs := envList("BLIPCUDA_BENCH_CHECKPOINT", "")
	if len(dirs) == 0 {
		b.Skip("BLIPCUDA_BENCH_CHECKPOINT is not set (see bench/gpu_bench_test.go, scripts/compare-gpu.sh)")
	}
	return dirs
}

// loaded is the one model kept between sub-benchmarks.
var loaded struct {
	key string
	m   *blipcuda.Model
}

// benchModel loads dir on the configured device in precision, or skips when
// the device or precision is unavailable. The model stays loaded until
// another one is asked for.
func benchModel(b *testing.B, dir, precision string) *blipcuda.Model {
	b.Helper()
	device := os.Getenv("BLIPCUDA_BENCH_DEVICE")
	if device == "" {
		device = "cuda"
	}
	tb, ib := envInt(b, "BLIPCUDA_BENCH_TEXT_BATCH", 256), envInt(b, "BLIPCUDA_BENCH_IMAGE_BATCH", 256)
	key := fmt.Sprint(dir, device, precision, tb, ib)
	if loaded.key == key {
		return loaded.m
	}
	if loaded.m != nil {
		if err := loaded.m.Close(); err != nil {
			b.Fatal(err)
		}
		loaded.key, loaded.m = "", nil
	}
	ctx := context.Background()
	hc, err := hub.FromEnv()
	if err != nil {
		b.Fatal(err)
	}
	cp, err := blipcuda.Locate(ctx, hc, dir)
	if err != nil {
		b.Fatalf("BLIPCUDA_BENCH_CHECKPOINT: %v", err)
	}
	t0 := time.Now()
	m, err := blipcuda.LoadCheckpoint(ctx, cp, blipcuda.WithDevice(device), blipcuda.WithPrecision(precision),
		blipcuda.WithProtocol(blipcuda.ProtocolHF), blipcuda.WithTextBatch(tb), blipcuda.WithImageBatch(ib))
	if errors.Is(err, blipcuda.ErrUnavailable) {
		b.Skipf("device %s, precision %s: %v", device, precision, err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %s in %v on %s", dir, time.Since(t0).Round(time.Millisecond), m.Info().DeviceNote)
	loaded.key, loaded.m = key, m
	return m
}

// forCheckpoints runs fn as sub-benchmarks NAME/PRECISION.
func forCheckpoints(b *testing.B, fn func(b *testing.B, m *blipcuda.Model)) {
	for _, dir := range benchCheckpoints(b) {
		for _, p := range envList("BLIPCUDA_BENCH_PRECISION", "float32") {
			b.Run(filepath.Base(filepath.Clean(dir))+"/"+p, func(b *testing.B) {
				fn(b, benchModel(b, dir, p))
			})
		}
	}
}

// syntheticImage is a deterministic 480×360 picture (gradients and a disc),
// preprocessed by the model as a decoded file would be.
func syntheticImage(b *testing.B, m *blipcuda.Model, seed int) *blipcuda.Image {
	img := image.NewRGBA(image.Rect(0, 0, 480, 360))
	for y := 0; y < 360; y++ {
		for x := 0; x < 480; x++ {
			c := color.RGBA{uint8((x + 7*seed) % 256), uint8(y * 255 / 359), uint8((x*y/31 + 13*seed) % 256), 255}
			if (x-240)*(x-240)+(y-180)*(y-180) < 90*90 {
				c = color.RGBA{250, 230, uint8(40 + seed), 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	im, err := m.ImageFromGo(fmt.Sprintf("synthetic-%d", seed), img)
	if err != nil {
		b.Fatal(err)
	}
	return im
}

// warmed records the benchmarks already warmed up: the testing package runs
// each one twice (b.N = 1, then the asked count), and the second run needs
// no second warm-up.
var warmed = map[string]bool{}

// timed runs call b.N times, recording each call, and reports ns/op,
// p50-ms and p99-ms; it returns the median seconds per call. The first run
// of a benchmark calls it warmup times untimed first.
func timed(b *testing.B, warmup int, call func() error) float64 {
	b.Helper()
	if warmed[b.Name()] {
		warmup = 0
	}
	warmed[b.Name()] = true
	for i := 0; i < warmup; i++ {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	ts := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	rank := func(q float64) time.Duration { return ts[max(1, int(math.Ceil(q/100*float64(len(ts)))))-1] }
	b.ReportMetric(rank(50).Seconds()*1e3, "p50-ms")
	b.ReportMetric(rank(99).Seconds()*1e3, "p99-ms")
	return rank(50).Seconds()
}

// BenchmarkCheckpointMatch: 1 image × 14 captions, ITM P(match) and ITC
// cosine end to end (Model.Match: tokenise, encode the image once, ITC text
// pass, ITM with the image's cross-attention keys/values shared by the 14
// captions). Run with -benchtime 50x for a p99 worth the name.
func BenchmarkCheckpointMatch(b *testing.B) {
	forCheckpoints(b, func(b *testing.B, m *blipcuda.Model) {
		ctx := context.Background()
		img := []*blipcuda.Image{syntheticImage(b, m, 0)}
		texts := benchCaptions()[:envInt(b, "BLIPCUDA_BENCH_MATCH_CAPTIONS", 14)]
		timed(b, 3, func() error {
			_, err := m.Match(ctx, img, texts)
			return err
		})
	})
}

// BenchmarkCheckpointImages: the image encoder (ViT + ITC projection) on
// BLIPCUDA_BENCH_IMAGES images per call (default 256), in batches of
// BLIPCUDA_BENCH_IMAGE_BATCH; reports images/s.
func BenchmarkCheckpointImages(b *testing.B) {
	forCheckpoints(b, func(b *testing.B, m *blipcuda.Model) {
		ctx := context.Background()
		n := envInt(b, "BLIPCUDA_BENCH_IMAGES", 256)
		distinct := []*blipcuda.Image{syntheticImage(b, m, 0), syntheticImage(b, m, 1), syntheticImage(b, m, 2)}
		imgs := make([]*blipcuda.Image, n)
		for i := range imgs {
			imgs[i] = distinct[i%len(distinct)]
		}
		med := timed(b, 1, func() error {
			_, err := m.EncodeImages(ctx, imgs, false)
			return err
		})
		b.ReportMetric(float64(n)/med, "images/s")
	})
}

// BenchmarkCheckpointRerank: re-ranking from cached image features — ITM of
// 256 captions against one image whose raw features were computed earlier by
// EncodeImages (Model.MatchFeatures without embeddings: ITM only, the
// features uploaded from the host in every call); reports captions/s.
func BenchmarkCheckpointRerank(b *testing.B) {
	forCheckpoints(b, func(b *testing.B, m *blipcuda.Model) {
		ctx := context.Background()
		n := envInt(b, "BLIPCUDA_BENCH_RERANK_CAPTIONS", 256)
		all := benchCaptions()
		texts := make([]string, n)
		for i := range texts {
			texts[i] = all[i%len(all)]
		}
		enc, err := m.EncodeImages(ctx, []*blipcuda.Image{syntheticImage(b, m, 0)}, true)
		if err != nil {
			b.Fatal(err)
		}
		feats := []blipcuda.ImageEncoding{{Name: enc[0].Name, Features: enc[0].Features, Tokens: enc[0].Tokens, Width: enc[0].Width}}
		med := timed(b, 2, func() error {
			_, err := m.MatchFeatures(ctx, feats, texts)
			return err
		})
		b.ReportMetric(float64(n)/med, "captions/s")
	})
}
