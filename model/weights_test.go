package model

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

func tinyConfig(t testing.TB, name string) Config {
	t.Helper()
	c, err := LoadConfig(filepath.Join(fixtureDir, name, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpenWeightsBothFormats(t *testing.T) {
	for _, name := range []string{"tiny-base", "tiny-large"} {
		t.Run(name, func(t *testing.T) {
			cfg := tinyConfig(t, name)
			w, err := OpenWeights(filepath.Join(fixtureDir, name), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if got, want := len(w.Names()), len(cfg.Params()); got != want {
				t.Errorf("%d tensors loaded, want %d", got, want)
			}
			// position_ids is in tiny-large's .bin and must be skipped.
			if _, ok := w.Tensor("text_encoder.embeddings.position_ids"); ok {
				t.Error("position_ids was loaded")
			}
			ln, _ := w.Tensor("vision_model.post_layernorm.weight")
			if len(ln.Data) != cfg.Vision.HiddenSize || ln.Data[0] == 0 {
				t.Errorf("post_layernorm.weight = %v", ln.Data)
			}
		})
	}
}

// writeSafetensors writes tensors (all F32 unless dtype says otherwise).
func writeSafetensors(t *testing.T, path string, tensors map[string]safetensors.TensorView) {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.SerializeToWriter(tensors, nil, &buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func f32View(t *testing.T, data []float32, shape []int) safetensors.TensorView {
	t.Helper()
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	s := make([]uint64, len(shape))
	for i, d := range shape {
		s[i] = uint64(d)
	}
	tv, err := safetensors.NewTensorView(safetensors.F32, s, b)
	if err != nil {
		t.Fatal(err)
	}
	return tv
}

// fullViews returns every parameter of cfg as zero F32 views.
func fullViews(t *testing.T, cfg Config) map[string]safetensors.TensorView {
	m := map[string]safetensors.TensorView{}
	for _, p := range cfg.Params() {
		m[p.Name] = f32View(t, make([]float32, p.Len()), p.Shape)
	}
	return m
}

func TestSafetensorsBadInput(t *testing.T) {
	cfg := tinyConfig(t, "tiny-base")
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(fixtureDir, "tiny-base", SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]struct {
		path string
		want string
	}{
		"empty":     {write("empty.safetensors", nil), "too short"},
		"truncated": {write("trunc.safetensors", good[:len(good)/2]), ""},
		"header length beyond file": {write("hdr.safetensors",
			append(binary.LittleEndian.AppendUint64(nil, 1<<40), []byte("{}")...)), ""},
		"corrupt header": {write("json.safetensors",
			append(binary.LittleEndian.AppendUint64(nil, 5), []byte("{nope")...)), ""},
	}
	// Wrong shape: weights of a different config.
	other := DefaultConfig()
	other.Vision = cfg.Vision
	other.Text = cfg.Text
	other.Text.IntermediateSize = 25
	views := fullViews(t, other)
	p := filepath.Join(dir, "shape.safetensors")
	writeSafetensors(t, p, views)
	cases["wrong shape"] = struct{ path, want string }{p, "intermediate.dense.weight has shape [25 16]"}

	// Missing tensor.
	views = fullViews(t, cfg)
	delete(views, "itm_head.bias")
	p = filepath.Join(dir, "missing.safetensors")
	writeSafetensors(t, p, views)
	cases["missing"] = struct{ path, want string }{p, "1 tensors missing, e.g. itm_head.bias"}

	// Unexpected tensor.
	views = fullViews(t, cfg)
	views["text_encoder.pooler.dense.weight"] = f32View(t, make([]float32, 4), []int{2, 2})
	p = filepath.Join(dir, "unexpected.safetensors")
	writeSafetensors(t, p, views)
	cases["unexpected"] = struct{ path, want string }{p, "unexpected tensors, e.g. \"text_encoder.pooler.dense.weight\""}

	// Wrong dtype.
	views = fullViews(t, cfg)
	tv, err := safetensors.NewTensorView(safetensors.I32, []uint64{2}, make([]byte, 8))
	if err != nil {
		t.Fatal(err)
	}
	views["itm_head.bias"] = tv
	p = filepath.Join(dir, "dtype.safetensors")
	writeSafetensors(t, p, views)
	cases["wrong dtype"] = struct{ path, want string }{p, "itm_head.bias has dtype I32"}

	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w, err := LoadSafetensors(c.path, cfg)
			if err == nil {
				w.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrWeights) {
				t.Errorf("err = %v, want ErrWeights", err)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %q, want it to name %s and say %q", err, c.path, c.want)
			}
		})
	}
}

func TestSafetensorsHalfPrecision(t *testing.T) {
	cfg := tinyConfig(t, "tiny-base")
	views := fullViews(t, cfg)
	// itm_head.bias as F16 [1.5, -2] and text_proj.bias as BF16 (all 0.5).
	h := []byte{0x00, 0x3e, 0x00, 0xc0}
	tv, _ := safetensors.NewTensorView(safetensors.F16, []uint64{2}, h)
	views["itm_head.bias"] = tv
	bf := make([]byte, 2*256)
	for i := 0; i < 256; i++ {
		binary.LittleEndian.PutUint16(bf[2*i:], 0x3f00)
	}
	tv, _ = safetensors.NewTensorView(safetensors.BF16, []uint64{256}, bf)
	views["text_proj.bias"] = tv
	p := filepath.Join(t.TempDir(), "half.safetensors")
	writeSafetensors(t, p, views)
	w, err := LoadSafetensors(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b, _ := w.Tensor("itm_head.bias")
	if b.Data[0] != 1.5 || b.Data[1] != -2 {
		t.Errorf("F16 bias = %v, want [1.5 -2]", b.Data)
	}
	tb, _ := w.Tensor("text_proj.bias")
	if tb.Data[0] != 0.5 || tb.Data[255] != 0.5 {
		t.Errorf("BF16 bias = %v…, want 0.5", tb.Data[:2])
	}
}

// zipWith builds a PyTorch-style archive holding the given data.pkl and
// storage records.
func zipWith(t *testing.T, path string, pkl []byte, records map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(pkl)
	for k, v := range records {
		w, _ := zw.Create("archive/data/" + k)
		w.Write(v)
	}
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPyTorchBadInput(t *testing.T) {
	cfg := tinyConfig(t, "tiny-large")
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(fixtureDir, "tiny-large", PyTorchFile))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		setup func(p string)
		want  string
	}{
		"not a zip": {func(p string) { os.WriteFile(p, []byte("PK? no"), 0o644) }, "not a PyTorch zip checkpoint"},
		"truncated": {func(p string) { os.WriteFile(p, good[:len(good)*2/3], 0o644) }, ""},
		"no data.pkl": {func(p string) { zipWith(t, p, nil, nil); rewriteWithout(t, p, "archive/data.pkl") },
			"no data.pkl"},
		// GLOBAL 'os system' then STOP: the classic pickle exploit.
		"forbidden global": {func(p string) { zipWith(t, p, []byte("\x80\x02cos\nsystem\nq\x00."), nil) },
			"forbidden global os.system"},
		"forbidden rebuild": {func(p string) {
			zipWith(t, p, []byte("\x80\x02ctorch._utils\n_rebuild_parameter\nq\x00."), nil)
		}, "forbidden global torch._utils._rebuild_parameter"},
		"not a dict":      {func(p string) { zipWith(t, p, []byte("\x80\x02K\x07."), nil) }, "not a state dict"},
		"garbage pickle":  {func(p string) { zipWith(t, p, []byte("\xff\xff\xff"), nil) }, "data.pkl"},
		"empty state":     {func(p string) { zipWith(t, p, []byte("\x80\x02}q\x00."), nil) }, "tensors missing"},
		"non-tensor item": {func(p string) { zipWith(t, p, []byte("\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s."), nil) }, `entry "a" is a int`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".bin")
			c.setup(p)
			w, err := LoadPyTorch(p, cfg)
			if err == nil {
				w.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %q, want ErrWeights naming %s and saying %q", err, p, c.want)
			}
		})
	}
}

// rewriteWithout rewrites a zip without the named entry.
func rewriteWithout(t *testing.T, path, name string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.Create("archive/version")
	zw.Close()
	os.WriteFile(path, buf.Bytes(), 0o644)
}

func TestPyTorchWrongConfig(t *testing.T) {
	// The tiny-large .bin against tiny-base's config: shapes disagree.
	_, err := LoadPyTorch(filepath.Join(fixtureDir, "tiny-large", PyTorchFile), tinyConfig(t, "tiny-base"))
	if !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "has shape") {
		t.Fatalf("err = %v, want a shape error", err)
	}
}

func TestOpenWeightsMissingFiles(t *testing.T) {
	_, err := OpenWeights(t.TempDir(), tinyConfig(t, "tiny-base"))
	if !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "neither model.safetensors nor pytorch_model.bin") {
		t.Fatalf("err = %v", err)
	}
}
