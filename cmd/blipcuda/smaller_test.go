package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSmallerThings: the wording and small behaviours of issue 11's item 8.
func TestSmallerThings(t *testing.T) {
	img := imagesDir + "/scene.png"
	// The CPU notice is one short line; the details only with -v. (Under
	// -tags cudaemu or CI's stand-in libraries a CUDA device runs: no
	// notice to check.)
	r := mustRun(t, runOpts{}, "match", img, "-t", "a dog", "-m", tinyBase, "--precision", "fp32")
	if !cudaAuto() {
		if !strings.Contains(r.stderr, "running on the CPU (") || strings.Contains(r.stderr, "why=") || strings.Contains(r.stderr, "dlopen") {
			t.Errorf("CPU notice:\n%s", r.stderr)
		}
		if r := mustRun(t, runOpts{}, "match", img, "-t", "a dog", "-m", tinyBase, "-v"); !strings.Contains(r.stderr, "why not CUDA") {
			t.Errorf("-v does not say why not CUDA:\n%s", r.stderr)
		}
	}
	// --top: wording, and a warning with JSON.
	wantFail(t, run(t, runOpts{}, "match", img, "-t", "a dog", "-m", tinyBase, "--top", "-1"), 2, "≥ 1, or 0 for all")
	if r := mustRun(t, runOpts{}, "match", img, "-t", "a dog", "-m", tinyBase, "--top", "1", "-f", "json"); !strings.Contains(r.stderr, "--top applies to the table and csv") {
		t.Errorf("--top with json: no warning:\n%s", r.stderr)
	}
	// embed names the arrays it would write.
	wantFail(t, run(t, runOpts{}, "embed", img, "-t", "a dog", "-m", tinyBase, "-o", filepath.Join(t.TempDir(), "x.npy")), 2,
		"writes 2: image embeddings, text embeddings")
	// A two-part path whose first part is a local directory is a path.
	wantFail(t, run(t, runOpts{dir: "../.."}, "match", "testdata/sample/beach.png", "-t", "a dog", "-m", "testdata/nope"), 2,
		"--model testdata/nope: no such directory")
	// TRANSFORMERS_OFFLINE is named when it is what turned offline mode on.
	wantFail(t, run(t, runOpts{env: []string{"TRANSFORMERS_OFFLINE=1"}}, "match", img, "-t", "a dog", "-m", "base-coco"), 1,
		"TRANSFORMERS_OFFLINE is set")
	// A character no font has: a warning before the work, naming BLIPCUDA_FONTS.
	r = mustRun(t, runOpts{}, "match", img, "-t", "a dog "+string(rune(0x10FFFD)), "-m", tinyBase,
		"--plot", filepath.Join(t.TempDir(), "p.png"))
	if !strings.Contains(r.stderr, "no font found has 1 of the characters") || !strings.Contains(r.stderr, "BLIPCUDA_FONTS") {
		t.Errorf("no warning about a character no font has:\n%s", r.stderr)
	}
	// A float16 checkpoint run in float32 says so.
	dir := t.TempDir()
	for _, f := range listDir(t, tinyBase) {
		if f != "model.safetensors" {
			copyFile(t, filepath.Join(tinyBase, f), filepath.Join(dir, f))
		}
	}
	mustRun(t, runOpts{}, "convert", filepath.Join(tinyBase, "model.safetensors"), "-c", filepath.Join(tinyBase, "config.json"),
		"-o", filepath.Join(dir, "model.safetensors"), "--dtype", "fp16", "-q")
	if r := mustRun(t, runOpts{}, "match", img, "-t", "a dog", "-m", dir); !strings.Contains(r.stderr, "the checkpoint stores float16 weights; running in float32") {
		t.Errorf("no note of the stored precision:\n%s", r.stderr)
	}
}
