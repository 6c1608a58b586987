package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/model"
)

// TestConvert: tiny-large's pytorch_model.bin to model.safetensors in each
// precision; the float32 file holds the same values and scores the same.
func TestConvert(t *testing.T) {
	cfg, err := model.LoadConfig(filepath.Join(tinyLarge, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := model.LoadPyTorch(filepath.Join(tinyLarge, model.PyTorchFile), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	for _, f := range []string{"config.json", "vocab.txt", "preprocessor_config.json", model.PyTorchFile} {
		copyFile(t, filepath.Join(tinyLarge, f), filepath.Join(ckpt, f))
	}
	for _, c := range []struct {
		dtype string
		tol   float64 // relative
	}{{"float32", 0}, {"float16", 1.0 / 2048}, {"bfloat16", 1.0 / 256}} {
		out := filepath.Join(dir, c.dtype+".safetensors")
		r := mustRun(t, runOpts{}, "convert", filepath.Join(ckpt, model.PyTorchFile), "--dtype", c.dtype, "-o", out)
		if strings.TrimSpace(r.stdout) != out {
			t.Errorf("convert printed %q", r.stdout)
		}
		w, err := model.LoadSafetensors(out, cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.dtype, err)
		}
		for _, p := range cfg.Params() {
			a, _ := bin.Tensor(p.Name)
			b, _ := w.Tensor(p.Name)
			for i := range a.Data {
				if d := math.Abs(float64(a.Data[i] - b.Data[i])); d > c.tol*math.Abs(float64(a.Data[i]))+1e-7 {
					t.Fatalf("%s: %s[%d] = %g, was %g", c.dtype, p.Name, i, b.Data[i], a.Data[i])
				}
			}
		}
		w.Close()
	}

	// The default output, next to the input (given as its directory); the
	// checkpoint then loads from model.safetensors with the .bin's scores.
	r := mustRun(t, runOpts{}, "convert", ckpt)
	if strings.TrimSpace(r.stdout) != filepath.Join(ckpt, model.SafetensorsFile) {
		t.Errorf("convert printed %q", r.stdout)
	}
	os.Remove(filepath.Join(ckpt, model.PyTorchFile))
	got := parseMatchJSON(t, mustRun(t, runOpts{}, "match", imagesDir, "-t", "a dog", "-t", "a red bus", "-m", ckpt, "-f", "json").stdout)
	want := parseMatchJSON(t, mustRun(t, runOpts{}, "match", imagesDir, "-t", "a dog", "-t", "a red bus", "-m", tinyLarge, "-f", "json").stdout)
	for i := range want.Images {
		for j := range want.Texts {
			if got.ITMLogits[i][j] != want.ITMLogits[i][j] || got.ITC[i][j] != want.ITC[i][j] {
				t.Errorf("image %d text %d: converted %v %v, .bin %v %v", i, j,
					got.ITMLogits[i][j], got.ITC[i][j], want.ITMLogits[i][j], want.ITC[i][j])
			}
		}
	}

	// Refusals, which leave nothing behind.
	noConfig := filepath.Join(dir, "noconfig")
	copyFile(t, filepath.Join(tinyLarge, model.PyTorchFile), filepath.Join(noConfig, model.PyTorchFile))
	before := listDir(t, dir)
	wantFail(t, run(t, runOpts{}, "convert", ckpt), exitFailure, "has no pytorch_model.bin")
	wantFail(t, run(t, runOpts{}, "convert", filepath.Join(tinyLarge, model.PyTorchFile), "-o", filepath.Join(dir, "float16.safetensors")),
		exitFailure, "exists", "--force")
	wantFail(t, run(t, runOpts{}, "convert", tinyLarge, "-d", "int8", "-o", filepath.Join(dir, "x.safetensors")), exitUsage, "--dtype")
	wantFail(t, run(t, runOpts{}, "convert", filepath.Join(dir, "nope.bin")), exitFailure, "nope.bin", "no such file")
	wantFail(t, run(t, runOpts{}, "convert"), exitUsage, "one input")
	wantFail(t, run(t, runOpts{}, "convert", noConfig), exitFailure, "no config.json", "--config")
	// A config of another architecture: the weights do not fit it.
	wantFail(t, run(t, runOpts{}, "convert", noConfig, "--config", filepath.Join(tinyBase, "config.json")), exitFailure, "shape")
	wantFail(t, run(t, runOpts{}, "convert", filepath.Join(tinyLarge, "vocab.txt"), "--config", filepath.Join(tinyLarge, "config.json"),
		"-o", filepath.Join(dir, "v.safetensors")), exitFailure, "vocab.txt")
	if got := listDir(t, dir); strings.Join(got, " ") != strings.Join(before, " ") {
		t.Errorf("refused conversions changed the directory: %v, was %v", got, before)
	}
	if got := listDir(t, noConfig); len(got) != 1 {
		t.Errorf("refused conversions left %v", got)
	}
	// --force replaces the file whole.
	mustRun(t, runOpts{}, "convert", filepath.Join(tinyLarge, model.PyTorchFile), "--force", "-o", filepath.Join(dir, "float16.safetensors"))
	if w, err := model.LoadSafetensors(filepath.Join(dir, "float16.safetensors"), cfg); err != nil {
		t.Error(err)
	} else {
		w.Close()
	}
}
