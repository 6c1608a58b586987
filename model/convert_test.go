package model_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/model"
	"github.com/nlpodyssey/safetensors"
)

const convertFixtures = "../testdata/models"

// halfToF32 decodes IEEE half-precision bits (an independent decoder for
// the tests).
func halfToF32(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * mant * math.Pow(2, -24)
	case 0x1f:
		if mant == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
}

func TestFloat32ToFloat16Known(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.1, 0x2e66},
		{1.0 / 3, 0x3555},
		{65504, 0x7bff},
		{65519.996, 0x7bff},                // below the midpoint to Inf
		{65520, 0x7c00},                    // the midpoint: ties to even, which is Inf
		{1e6, 0x7c00},                      // overflow
		{-1e6, 0xfc00},                     // overflow
		{float32(math.Inf(1)), 0x7c00},     // Inf
		{float32(math.Inf(-1)), 0xfc00},    // -Inf
		{6.1035156e-05, 0x0400},            // smallest normal, 2^-14
		{5.9604645e-08, 0x0001},            // smallest subnormal, 2^-24
		{2.9802322e-08, 0x0000},            // 2^-25: a tie between 0 and 2^-24, to even
		{4.4703484e-08, 0x0001},            // 1.5·2^-25 rounds up
		{1e-10, 0x0000},                    // underflow
		{1 + 1.0/2048, 0x3c00},             // tie, to even (down)
		{1 + 3.0/2048, 0x3c02},             // tie, to even (up)
		{1 + 1.0/2048 + 1.0/65536, 0x3c01}, // just above the tie
		{6.0975552e-05, 0x03ff},            // largest subnormal
		{6.1005353e-05, 0x0400},            // between largest subnormal and 2^-14, rounds into the normal
	}
	for _, c := range cases {
		if got := model.Float32ToFloat16(c.in); got != c.want {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if got := model.Float32ToFloat16(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("Float32ToFloat16(NaN) = %#04x, not a NaN", got)
	}
}

// TestFloat32ToFloat16Exhaustive checks every finite half: it converts back
// to itself, and the midpoint between it and the next one rounds to the
// even of the two.
func TestFloat32ToFloat16Exhaustive(t *testing.T) {
	for h := 0; h < 0x7c00; h++ {
		for _, sign := range []uint16{0, 0x8000} {
			bits := uint16(h) | sign
			v := halfToF32(bits)
			if got := model.Float32ToFloat16(float32(v)); got != bits && !(v == 0 && got&0x7fff == 0) {
				t.Fatalf("half %#04x (%g) converts back to %#04x", bits, v, got)
			}
			if h == 0x7bff {
				continue
			}
			next := halfToF32(bits + 1)
			mid := float32((v + next) / 2) // exact in float32
			want := bits
			if bits&1 == 1 {
				want = bits + 1
			}
			if got := model.Float32ToFloat16(mid); got != want {
				t.Fatalf("midpoint %g of %#04x and %#04x gives %#04x, want %#04x", mid, bits, bits+1, got, want)
			}
			// Just above and below the midpoint.
			up := math.Nextafter32(mid, float32(math.Inf(int(1-2*int(sign>>15)))))
			if got := model.Float32ToFloat16(up); got != bits+1 {
				t.Fatalf("above the midpoint %g of %#04x: %#04x", up, bits, got)
			}
			down := math.Nextafter32(mid, 0)
			if got := model.Float32ToFloat16(down); got != bits {
				t.Fatalf("below the midpoint %g of %#04x: %#04x", down, bits, got)
			}
		}
	}
}

func TestFloat32ToBFloat16Known(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Pi, 0x4049},
		{0.1, 0x3dcd},
		{1 + 1.0/256, 0x3f80},                      // tie, to even (down)
		{1 + 3.0/256, 0x3f82},                      // tie, to even (up)
		{1 + 1.0/256 + 1.0/65536, 0x3f81},          // just above the tie
		{math.MaxFloat32, 0x7f80},                  // rounds up to Inf
		{float32(math.Inf(-1)), 0xff80},            //
		{math.Float32frombits(0x00010000), 0x0001}, // subnormal kept
		{math.Float32frombits(0x7f7f7fff), 0x7f7f}, // below the tie to Inf
	}
	for _, c := range cases {
		if got := model.Float32ToBFloat16(c.in); got != c.want {
			t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if got := model.Float32ToBFloat16(math.Float32frombits(0x7f800001)); got&0x7f80 != 0x7f80 || got&0x7f == 0 {
		t.Errorf("Float32ToBFloat16(NaN) = %#04x, not a NaN", got)
	}
}

func loadTinyLarge(t *testing.T) (*model.Weights, model.Config) {
	t.Helper()
	cfg, err := model.LoadConfig(filepath.Join(convertFixtures, "tiny-large", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := model.LoadPyTorch(filepath.Join(convertFixtures, "tiny-large", model.PyTorchFile), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, cfg
}

// headerOrder returns the tensor names of a safetensors header in file
// order, and its metadata.
func headerOrder(t *testing.T, path string) ([]string, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Errorf("header of %d bytes leaves the data unaligned", n)
	}
	dec := json.NewDecoder(bytes.NewReader(b[8 : 8+n]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("header does not start with an object: %v %v", tok, err)
	}
	var names []string
	var meta map[string]string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		if key == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
		names = append(names, key)
	}
	return names, meta
}

func TestWriteSafetensorsRoundTrip(t *testing.T) {
	w, cfg := loadTinyLarge(t)
	dir := t.TempDir()
	for _, dtype := range []string{"float32", "float16", "bfloat16"} {
		t.Run(dtype, func(t *testing.T) {
			p := filepath.Join(dir, dtype+".safetensors")
			err := model.WriteSafetensors(context.Background(), p, w, cfg, dtype, map[string]string{"source": "tiny-large"})
			if err != nil {
				t.Fatal(err)
			}
			// The header: Params order, transformers' metadata.
			names, meta := headerOrder(t, p)
			params := cfg.Params()
			if len(names) != len(params) {
				t.Fatalf("%d tensors written, want %d", len(names), len(params))
			}
			for i, p := range params {
				if names[i] != p.Name {
					t.Fatalf("tensor %d is %s, want %s", i, names[i], p.Name)
				}
			}
			if meta["format"] != "pt" || meta["source"] != "tiny-large" {
				t.Errorf("metadata = %v", meta)
			}
			// The third-party reader agrees.
			b, _ := os.ReadFile(p)
			st, err := safetensors.Deserialize(b)
			if err != nil {
				t.Fatal(err)
			}
			wantDT, _ := model.SafetensorsDType(dtype)
			for _, nt := range st.Tensors() {
				if nt.TensorView.DType().String() != wantDT {
					t.Fatalf("%s has dtype %s, want %s", nt.Name, nt.TensorView.DType(), wantDT)
				}
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", fi.Mode().Perm())
			}

			got, err := model.LoadSafetensors(p, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			for _, p := range params {
				a, _ := w.Tensor(p.Name)
				g, _ := got.Tensor(p.Name)
				for i, v := range a.Data {
					var want float32
					switch dtype {
					case "float32":
						want = v
					case "float16":
						want = float32(halfToF32(model.Float32ToFloat16(v)))
						if d := math.Abs(float64(want - v)); d > math.Abs(float64(v))/2048+math.Pow(2, -25) {
							t.Fatalf("%s[%d]: %g rounds to half %g", p.Name, i, v, want)
						}
					case "bfloat16":
						want = math.Float32frombits(uint32(model.Float32ToBFloat16(v)) << 16)
						if d := math.Abs(float64(want - v)); d > math.Abs(float64(v))/256 {
							t.Fatalf("%s[%d]: %g rounds to bfloat16 %g", p.Name, i, v, want)
						}
					}
					if g.Data[i] != want {
						t.Fatalf("%s[%d] = %g, want %g (from %g)", p.Name, i, g.Data[i], want, v)
					}
				}
			}
		})
	}
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteSafetensorsLeavesNothingOnError(t *testing.T) {
	w, cfg := loadTinyLarge(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	ctx := context.Background()

	if err := model.WriteSafetensors(ctx, p, w, cfg, "float8", nil); err == nil {
		t.Error("unknown dtype: no error")
	}
	other := cfg
	other.Text.NumHiddenLayers++
	if err := model.WriteSafetensors(ctx, p, w, other, "float32", nil); !errors.Is(err, model.ErrWeights) {
		t.Errorf("weights of another config: err = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := model.WriteSafetensors(cancelled, p, w, cfg, "float16", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if err := model.WriteSafetensors(ctx, filepath.Join(dir, "missing", "m.safetensors"), w, cfg, "float32", nil); err == nil {
		t.Error("missing directory: no error")
	}
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Errorf("failed writes left %v", got)
	}

	// An existing file is replaced whole, or kept when the write fails.
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := model.WriteSafetensors(cancelled, p, w, cfg, "float32", nil); err == nil {
		t.Error("cancelled: no error")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("a failed write changed the existing file to %d bytes", len(b))
	}
	if err := model.WriteSafetensors(ctx, p, w, cfg, "float32", nil); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, dir); len(got) != 1 {
		t.Errorf("directory holds %v, want model.safetensors alone", got)
	}
	if err := model.WriteSafetensors(ctx, dir, w, cfg, "float32", nil); err == nil {
		t.Error("path is a directory: no error")
	}
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConvertedCheckpointScores: tiny-large converted to safetensors gives
// the .bin's scores through the library: the same bits in float32, close
// ones in float16 and bfloat16.
func TestConvertedCheckpointScores(t *testing.T) {
	w, cfg := loadTinyLarge(t)
	ctx := context.Background()
	src := filepath.Join(convertFixtures, "tiny-large")
	images := []string{"blocks.png", "scene.png", "waves_rgba.png"}
	texts := []string{"a woman and her dog sitting on a beach", "a red bus", "colourful waves"}
	score := func(dir string) *blipcuda.Scores {
		t.Helper()
		m, err := blipcuda.Load(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var ims []*blipcuda.Image
		for _, name := range images {
			im, err := m.LoadImage(filepath.Join(convertFixtures, "images", name))
			if err != nil {
				t.Fatal(err)
			}
			ims = append(ims, im)
		}
		s, err := m.Match(ctx, ims, texts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := score(src)
	for _, c := range []struct {
		dtype string
		tol   float64
	}{{"float32", 0}, {"float16", 2e-3}, {"bfloat16", 5e-2}} {
		t.Run(c.dtype, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"config.json", "vocab.txt", "preprocessor_config.json"} {
				copyFile(t, filepath.Join(src, f), filepath.Join(dir, f))
			}
			if err := model.WriteSafetensors(ctx, filepath.Join(dir, model.SafetensorsFile), w, cfg, c.dtype, nil); err != nil {
				t.Fatal(err)
			}
			got := score(dir)
			for i := range images {
				for j := range texts {
					pairs := [][2]float32{
						{got.ITMLogits[i][j][0], want.ITMLogits[i][j][0]},
						{got.ITMLogits[i][j][1], want.ITMLogits[i][j][1]},
						{got.ITMProb[i][j], want.ITMProb[i][j]},
						{got.ITC[i][j], want.ITC[i][j]},
					}
					for _, p := range pairs {
						if d := math.Abs(float64(p[0] - p[1])); d > c.tol || math.IsNaN(d) {
							t.Errorf("image %d text %d: %g, want %g (tolerance %g)", i, j, p[0], p[1], c.tol)
						}
					}
				}
			}
		})
	}
}
