package model

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/imageproc"
	"github.com/blipcuda/blipcuda/ops"
)

// Parity with transformers on the tiny fixtures. The token ids are the ones
// transformers' tokenizer produced (recorded in expected.json), so these
// tests check the network alone; the root package checks the whole pipeline
// including tokenizer and protocols.
//
// Tolerances:
//   - ITM logits, ITC values and embeddings: 1e-4 absolute, the issue's
//     parity bar. Both sides are float32; they differ only in summation
//     order (oneDNN's blocked GEMM vs ours), which moves values of order 1 by
//     a few ulps per layer — observed maxima are ~1e-6.
//   - Per-layer activations: 1e-4 absolute after normalising by the layer's
//     largest magnitude (activations grow with depth in the un-normalised
//     pre-LN residual stream, so a relative bound is the meaningful one).
const (
	parityTol     = 1e-4
	activationTol = 1e-4
)

func openTiny(t testing.TB, name string) (*Model, *Weights) {
	t.Helper()
	cfg := tinyConfig(t, name)
	w, err := OpenWeights(filepath.Join(fixtureDir, name), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(ops.NewCPU(), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	return m, w
}

// fixturePixels preprocesses the fixture images exactly as transformers did
// (checked through the recorded SHA-256 of pixel_values).
func fixturePixels(t testing.TB, fx modelFixture) []float32 {
	t.Helper()
	paths := make([]string, len(fx.Images))
	for i, name := range fx.Images {
		paths[i] = filepath.Join(fixtureDir, "images", name)
	}
	return pixelsChecked(t, paths, fx.PixelSHA256)
}

// pixelsChecked preprocesses the images at paths and checks each against the
// SHA-256 of transformers' pixel_values.
func pixelsChecked(t testing.TB, paths, sha []string) []float32 {
	t.Helper()
	pre := imageproc.DefaultConfig()
	var all []float32
	for i, path := range paths {
		px, err := pre.Load(path, imageproc.DefaultMaxPixels)
		if err != nil {
			t.Fatal(err)
		}
		if got := pixelHash(px); got != sha[i] {
			t.Fatalf("%s: pixel_values differ from transformers' (sha256 %s, want %s)", path, got, sha[i])
		}
		all = append(all, px...)
	}
	return all
}

func maxAbsDiff(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}

func assertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	if d, at := maxAbsDiff(got, want); d > tol || at >= 0 && math.IsNaN(float64(got[at])) {
		t.Errorf("%s: max |diff| %.3g at %d (got %g, want %g), tolerance %g", what, d, at, got[at], want[at], tol)
	} else {
		t.Logf("%s: max |diff| %.3g", what, d)
	}
}

func TestParityWithTransformers(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	for _, name := range []string{"tiny-base", "tiny-large"} {
		t.Run(name, func(t *testing.T) {
			fx := f.Models[name]
			m, w := openTiny(t, name)
			defer w.Close()
			defer m.Close()
			if got := m.Config().NumParams(); got != fx.NumParams {
				t.Errorf("NumParams = %d, transformers counts %d", got, fx.NumParams)
			}
			nImg := len(fx.Images)
			feats, imgEmb := encodeFixture(ctx, t, m, fixturePixels(t, fx), nImg)
			defer feats.Free()
			for _, proto := range []struct {
				name string
				p    protocolFixture
			}{{"hf", fx.HF}, {"blip", fx.BLIP}} {
				t.Run(proto.name, func(t *testing.T) {
					checkProtocol(ctx, t, m, feats, imgEmb, nImg, proto.p)
				})
			}
		})
	}
}

// encodeFixture encodes n preprocessed images and returns their features
// (the caller frees them, before closing the model) and ITC embeddings.
func encodeFixture(ctx context.Context, t *testing.T, m *Model, px []float32, n int) (*ImageFeatures, []float32) {
	t.Helper()
	feats, err := m.EncodeImages(ctx, px, n)
	if err != nil {
		t.Fatal(err)
	}
	imgEmb, err := m.ImageEmbeddings(ctx, feats)
	if err != nil {
		feats.Free()
		t.Fatal(err)
	}
	return feats, imgEmb
}

// checkProtocol compares embeddings, ITC and ITM logits of nImg encoded
// images (feats, imgEmb) with one protocol's references.
func checkProtocol(ctx context.Context, t *testing.T, m *Model, feats *ImageFeatures, imgEmb []float32, nImg int, p protocolFixture) {
	t.Helper()
	assertClose(t, "image embeddings", imgEmb, p.ImageEmbeds, parityTol)
	txtEmb, err := m.TextEmbeddings(ctx, batchOf(p.InputIDs))
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "text embeddings", txtEmb, p.TextEmbeds, parityTol)
	nTxt := len(p.InputIDs)
	d := m.Config().ImageTextHiddenSize
	itc := make([]float32, nImg*nTxt)
	for i := 0; i < nImg; i++ {
		for j := 0; j < nTxt; j++ {
			var s float32
			for k := 0; k < d; k++ {
				s += imgEmb[i*d+k] * txtEmb[j*d+k]
			}
			itc[i*nTxt+j] = s
		}
	}
	assertClose(t, "ITC", itc, p.ITC, parityTol)
	var logits []float32
	for i := 0; i < nImg; i++ {
		l, err := m.ITMLogits(ctx, feats, i, batchOf(p.ITMInputIDs))
		if err != nil {
			t.Fatal(err)
		}
		logits = append(logits, l...)
	}
	assertClose(t, "ITM logits", logits, p.ITMLogits, parityTol)
}

// TestParityJPEG: a photo-like 4:2:0 JPEG, decoded by imageproc's own JPEG
// decoder, gives transformers' pixel_values exactly (transformers got them
// through Pillow's libjpeg-turbo) and its embeddings, ITC and ITM logits at
// the same 1e-4 tolerance as the PNG images.
func TestParityJPEG(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	for _, name := range []string{"tiny-base", "tiny-large"} {
		t.Run(name, func(t *testing.T) {
			jc := f.Models[name].JPEG
			if jc == nil {
				t.Fatal("expected.json has no jpeg case (rerun testdata/models/make_fixtures.py)")
			}
			m, w := openTiny(t, name)
			defer w.Close()
			defer m.Close()
			px := pixelsChecked(t, []string{filepath.Join(fixtureDir, jc.Image)}, []string{jc.PixelSHA256})
			feats, imgEmb := encodeFixture(ctx, t, m, px, 1)
			defer feats.Free()
			checkProtocol(ctx, t, m, feats, imgEmb, 1, jc.HF)
		})
	}
}

func TestParityPerLayer(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	for _, name := range []string{"tiny-base", "tiny-large"} {
		t.Run(name, func(t *testing.T) {
			fx := f.Models[name]
			want := loadActivations(t, name)
			m, w := openTiny(t, name)
			defer w.Close()
			defer m.Close()
			got := map[string][]float32{}
			m.SetTrace(func(name string, shape []int, data []float32) { got[name] = data })
			px := fixturePixels(t, fx)
			tokens := m.Config().NumImageTokens() * NumChannels * 0
			_ = tokens
			size := NumChannels * m.Config().Vision.ImageSize * m.Config().Vision.ImageSize
			feats, err := m.EncodeImages(ctx, px[:size], 1)
			if err != nil {
				t.Fatal(err)
			}
			defer feats.Free()
			tb := batchOf(fx.HF.InputIDs[:1])
			if _, err := m.TextEmbeddings(ctx, tb); err != nil {
				t.Fatal(err)
			}
			if _, err := m.ITMLogits(ctx, feats, 0, tb); err != nil {
				t.Fatal(err)
			}
			names := make([]string, 0, len(want))
			for n := range want {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				g, ok := got[n]
				if !ok {
					t.Errorf("%s: not traced", n)
					continue
				}
				scale := 0.0
				for _, v := range want[n] {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				d, at := maxAbsDiff(g, want[n])
				if rel := d / math.Max(scale, 1); rel > activationTol || len(g) != len(want[n]) {
					t.Errorf("%s: max |diff| %.3g (at %d) relative to max |x| %.3g = %.3g > %g",
						n, d, at, scale, rel, activationTol)
				}
			}
			for n := range got {
				if _, ok := want[n]; !ok && !strings.HasPrefix(n, "x") {
					t.Errorf("traced %s has no reference", n)
				}
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	m, w := openTiny(t, "tiny-base")
	defer w.Close()
	defer m.Close()
	ctx := context.Background()
	if _, err := m.EncodeImages(ctx, make([]float32, 10), 1); err == nil {
		t.Error("EncodeImages accepted 10 pixels")
	}
	bad := []TextBatch{
		{IDs: []int32{101, 30524}, Mask: []int32{1, 1}, Batch: 1, Len: 2},
		{IDs: []int32{101, -1}, Mask: []int32{1, 1}, Batch: 1, Len: 2},
		{IDs: []int32{101, 102}, Mask: []int32{1, 2}, Batch: 1, Len: 2},
		{IDs: []int32{101}, Mask: []int32{1, 1}, Batch: 1, Len: 2},
		{IDs: make([]int32, 513), Mask: make([]int32, 513), Batch: 1, Len: 513},
		{},
	}
	for i, tb := range bad {
		if _, err := m.TextEmbeddings(ctx, tb); err == nil {
			t.Errorf("case %d: TextEmbeddings accepted %+v", i, tb)
		} else if !strings.Contains(err.Error(), "bad input") {
			t.Errorf("case %d: err = %v, want ErrInput", i, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	size := NumChannels * 384 * 384
	if _, err := m.EncodeImages(cctx, make([]float32, size), 1); err == nil {
		t.Error("EncodeImages ignored a cancelled context")
	}
	feats, err := m.EncodeImages(ctx, make([]float32, 2*size), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ITMLogits(ctx, feats, 2, batchOf([][]int32{{101, 102}})); err == nil {
		t.Error("ITMLogits accepted image 2 of 2")
	}
	if _, err := m.CrossKeys(ctx, feats, -1); err == nil {
		t.Error("CrossKeys accepted image -1")
	}
	kv, err := m.CrossKeys(ctx, feats, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ITMLogitsKV(ctx, kv, TextBatch{}); err == nil {
		t.Error("ITMLogitsKV accepted an empty batch")
	}
	kv.Free()
	kv.Free() // twice is allowed
	if _, err := m.ITMLogitsKV(ctx, kv, batchOf([][]int32{{101, 102}})); err == nil || !strings.Contains(err.Error(), "bad input") {
		t.Errorf("ITMLogitsKV of freed keys: err = %v, want ErrInput", err)
	}
	if _, err := m.ITMLogitsKV(ctx, nil, batchOf([][]int32{{101, 102}})); err == nil {
		t.Error("ITMLogitsKV accepted nil keys")
	}
	feats.Free()
	if _, err := m.ITMLogits(ctx, feats, 0, batchOf([][]int32{{101, 102}})); err == nil {
		t.Error("ITMLogits accepted freed features")
	}
	if _, err := m.CrossKeys(ctx, feats, 0); err == nil {
		t.Error("CrossKeys accepted freed features")
	}
}

// TestCrossKeysShared: an image's cross keys and values computed once and
// used for several batches give each batch exactly ITMLogits' logits (the
// same operations on the same values), whichever image of a batch of
// features they come from and in whatever order two images' keys are
// used.
func TestCrossKeysShared(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t, "tiny-base")
	m, err := New(ops.NewCPU(), cfg, RandomWeights(cfg, 11))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	size := NumChannels * cfg.Vision.ImageSize * cfg.Vision.ImageSize
	px := make([]float32, 2*size)
	for i := range px {
		px[i] = float32(math.Sin(float64(i) * 0.37))
	}
	feats, err := m.EncodeImages(ctx, px, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer feats.Free()
	batches := []TextBatch{
		batchOf([][]int32{{101, 2003, 2004, 102}, {101, 2005, 102}}),
		batchOf([][]int32{{101, 2006, 2007, 2008, 2009, 102}}),
		batchOf([][]int32{{101, 2003, 102}, {101, 2010, 2011, 102}, {101, 102}}),
	}
	var kvs [2]*CrossKeys
	for i := range kvs {
		if kvs[i], err = m.CrossKeys(ctx, feats, i); err != nil {
			t.Fatal(err)
		}
		defer kvs[i].Free()
	}
	for _, order := range [][]int{{0, 1}, {1, 0}, {1, 1, 0}} {
		for bi, tb := range batches {
			for _, i := range order {
				want, err := m.ITMLogits(ctx, feats, i, tb)
				if err != nil {
					t.Fatal(err)
				}
				got, err := m.ITMLogitsKV(ctx, kvs[i], tb)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("image %d, batch %d: shared keys %v, per call %v", i, bi, got, want)
				}
			}
		}
	}
}

// TestRandomAndZeroWeights builds the real base architecture from its
// configuration alone.
func TestRandomAndZeroWeights(t *testing.T) {
	cfg := tinyConfig(t, "tiny-large")
	for _, w := range []*Weights{RandomWeights(cfg, 1), ZeroWeights(cfg)} {
		m, err := New(ops.NewCPU(), cfg, w)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		size := NumChannels * 384 * 384
		feats, err := m.EncodeImages(ctx, make([]float32, size), 1)
		if err != nil {
			t.Fatal(err)
		}
		l, err := m.ITMLogits(ctx, feats, 0, batchOf([][]int32{{101, 2003, 102}}))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range l {
			if math.IsNaN(float64(v)) {
				t.Errorf("%s: NaN logit", w.Source)
			}
		}
		feats.Free()
		m.Close()
	}
	a, b := RandomWeights(cfg, 7), RandomWeights(cfg, 7)
	x, _ := a.Tensor("itm_head.weight")
	y, _ := b.Tensor("itm_head.weight")
	if fmt.Sprint(x.Data) != fmt.Sprint(y.Data) {
		t.Error("RandomWeights is not deterministic")
	}
}

// TestCLSOnlyLastLayer: carrying only the [CLS] rows through the last text
// layer (the default) gives the same ITM logits and text embeddings as the
// whole-sequence layer (which tracing forces), bit for bit on the CPU: the
// [CLS] row's arithmetic is the same, and the CPU GEMM and attention compute
// each row independently of how many rows there are.
func TestCLSOnlyLastLayer(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	for _, name := range []string{"tiny-base", "tiny-large"} {
		t.Run(name, func(t *testing.T) {
			fx := f.Models[name]
			m, w := openTiny(t, name)
			defer w.Close()
			defer m.Close()
			feats, err := m.EncodeImages(ctx, fixturePixels(t, fx), len(fx.Images))
			if err != nil {
				t.Fatal(err)
			}
			defer feats.Free()
			run := func() (logits, emb []float32) {
				tb := batchOf(fx.BLIP.ITMInputIDs)
				if tb.Len < 2 {
					t.Fatalf("fixture texts of %d tokens do not exercise the [CLS]-only layer", tb.Len)
				}
				if logits, err = m.ITMLogits(ctx, feats, 0, tb); err != nil {
					t.Fatal(err)
				}
				if emb, err = m.TextEmbeddings(ctx, batchOf(fx.BLIP.InputIDs)); err != nil {
					t.Fatal(err)
				}
				return logits, emb
			}
			fastL, fastE := run()
			layers := 0
			m.SetTrace(func(string, []int, []float32) { layers++ })
			fullL, fullE := run()
			m.SetTrace(nil)
			if layers == 0 {
				t.Fatal("tracing did not run the whole-sequence path")
			}
			for i := range fastL {
				if math.Float32bits(fastL[i]) != math.Float32bits(fullL[i]) {
					t.Fatalf("ITM logit %d: [CLS]-only %v, whole sequence %v", i, fastL[i], fullL[i])
				}
			}
			for i := range fastE {
				if math.Float32bits(fastE[i]) != math.Float32bits(fullE[i]) {
					t.Fatalf("text embedding value %d: [CLS]-only %v, whole sequence %v", i, fastE[i], fullE[i])
				}
			}
		})
	}
}
