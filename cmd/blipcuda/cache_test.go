package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/hub"
)

// TestPullCompletesPRSnapshot: the refs/pr/5 snapshot that holds
// model.safetensors also holds the small files, as the Hub has them at
// that revision, so that transformers can load revision="refs/pr/5"
// offline; no CACHEDIR.TAG is left in the cache root.
func TestPullCompletesPRSnapshot(t *testing.T) {
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	cache := t.TempDir()
	os.WriteFile(filepath.Join(cache, "CACHEDIR.TAG"), []byte("Signature: 8a477f597d28d172789f06886806bc55\n"+
		"# This file is a cache directory tag created by blipcuda (Hugging Face Hub cache).\n"), 0o644)
	mustRun(t, runOpts{env: []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + cache}}, "pull", "base-coco", "-q")
	pr := commitID("base pr5")
	for _, f := range append(append([]string{}, baseMainFiles...), "model.safetensors") {
		if !snapshotHas(cache, "Salesforce/blip-itm-base-coco", pr, f) {
			t.Errorf("the refs/pr/5 snapshot lacks %s", f)
		}
	}
	if _, err := os.Lstat(filepath.Join(cache, "CACHEDIR.TAG")); err == nil {
		t.Error("CACHEDIR.TAG in the cache root (huggingface_hub's scan_cache_dir reports it as a corrupted repo)")
	}
}

// TestPullReusesCachedBin: weights already cached on main (downloaded by
// transformers, or an earlier pull) are used; the Hub's safetensors
// revision is not downloaded on top of them.
func TestPullReusesCachedBin(t *testing.T) {
	fh := newFakeHub(t)
	repo := "Salesforce/blip-itm-large-flickr" // its conversion is refs/pr/4
	addCommit(t, fh, repo, commitID("large main"), tinyLarge, largeMainFiles, "main")
	conv := t.TempDir()
	for _, f := range largeMainFiles {
		copyFile(t, filepath.Join(tinyLarge, f), filepath.Join(conv, f))
	}
	mustRun(t, runOpts{}, "convert", conv, "-q")
	addCommit(t, fh, repo, commitID("large pr4"), conv, append(largeMainFiles[:3:3], "model.safetensors"), "refs/pr/4")

	cache := t.TempDir()
	c, err := hub.NewClient(hub.WithEndpoint(fh.URL), hub.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := c.Download(context.Background(), repo, "main", "pytorch_model.bin")
	if err != nil {
		t.Fatal(err)
	}
	fh.Reset()
	env := []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + cache}
	r := mustRun(t, runOpts{env: env}, "pull", "large-flickr", "-q")
	if f := strings.Split(strings.TrimSpace(r.stdout), "\t"); len(f) != 3 || f[2] != bin {
		t.Errorf("pull printed %q, want the cached %s", r.stdout, bin)
	}
	if n := len(cdnRanges(fh)); n != 0 {
		t.Errorf("pull downloaded %d large files although the weights were cached", n)
	}
	// match uses them too, without downloading.
	mustRun(t, runOpts{env: env}, "match", imagesDir+"/scene.png", "-t", "a dog", "-m", "large-flickr", "-q")
	if n := len(cdnRanges(fh)); n != 0 {
		t.Errorf("match downloaded %d large files although the weights were cached", n)
	}
}

// TestModelsCountsPartialDownloads: a cache holding only an interrupted
// download is "partial", with its bytes.
func TestModelsCountsPartialDownloads(t *testing.T) {
	cache := t.TempDir()
	blobs := filepath.Join(cache, "models--Salesforce--blip-itm-base-coco", "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, strings.Repeat("ab", 32)+".incomplete"), make([]byte, 12345), 0o644)
	ms := modelsOf(t, []string{"HF_HUB_CACHE=" + cache})
	if m := ms["base-coco"]; m.Cached || !m.Partial || m.CacheBytes != 12345 {
		t.Errorf("models with a partial download: %+v", m)
	}
}

// transformersPython returns a Python with transformers and
// huggingface_hub: $BLIPCUDA_HF_PYTHON, else python3 from PATH. .ci/run
// installs them (pinned), so CI never skips this.
func transformersPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("BLIPCUDA_HF_PYTHON")
	if py == "" {
		var err error
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("no python3; set BLIPCUDA_HF_PYTHON to a Python with transformers and huggingface_hub (.ci/run does)")
		}
	}
	if err := exec.Command(py, "-c", "import transformers, huggingface_hub").Run(); err != nil {
		t.Skipf("%s lacks transformers or huggingface_hub; set BLIPCUDA_HF_PYTHON to one that has them (.ci/run does)", py)
	}
	return py
}

// transformersScript loads, offline, what `blipcuda pull` cached, as the
// README tells transformers users to: config, tokenizer and image
// processor from revision refs/pr/5, the weights with safetensors (and the
// whole model when torch is installed), and checks scan_cache_dir.
const transformersScript = `
import json, os, sys
import huggingface_hub as h
import transformers as tf
repo, rev = sys.argv[1], sys.argv[2]
out = {"transformers": tf.__version__, "huggingface_hub": h.__version__}
cfg = tf.AutoConfig.from_pretrained(repo, revision=rev)
out["model_type"] = cfg.model_type
tok = tf.AutoTokenizer.from_pretrained(repo, revision=rev)
out["ids"] = tok("a dog on a beach")["input_ids"]
try:
    proc = tf.BlipImageProcessor.from_pretrained(repo, revision=rev)
    out["image_size"] = proc.size
except ImportError:  # no Pillow/torchvision: the file, as the processor reads it
    pre = json.load(open(h.hf_hub_download(repo, "preprocessor_config.json", revision=rev)))
    out["image_size"] = pre.get("size")
    out["image_processor"] = "preprocessor_config.json read (no Pillow/torchvision)"
from safetensors.numpy import load_file
w = load_file(h.hf_hub_download(repo, "model.safetensors", revision=rev))
out["tensors"] = len(w)
try:
    import torch
    m = tf.BlipForImageTextRetrieval.from_pretrained(repo, revision=rev)
    out["model"] = type(m).__name__
except ImportError:
    out["model"] = "no torch"
info = h.scan_cache_dir()
out["warnings"] = [str(x) for x in info.warnings]
out["repos"] = [r.repo_id for r in info.repos]
print(json.dumps(out))
`

// TestTransformersReadsTheCache: after `blipcuda pull base-coco`,
// transformers and huggingface_hub load the model offline from revision
// refs/pr/5 (the README's from_pretrained(..., revision="refs/pr/5")).
func TestTransformersReadsTheCache(t *testing.T) {
	py := transformersPython(t)
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	cache := t.TempDir()
	mustRun(t, runOpts{env: []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + cache}}, "pull", "base-coco", "-q")

	cmd := exec.Command(py, "-c", transformersScript, "Salesforce/blip-itm-base-coco", "refs/pr/5")
	cmd.Env = []string{"HF_HUB_CACHE=" + cache, "HF_HOME=" + t.TempDir(), "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1",
		"HF_ENDPOINT=http://127.0.0.1:1", "HF_HUB_DISABLE_TELEMETRY=1", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("transformers could not load the cache blipcuda filled: %v\n%s", err, stderr.String())
	}
	var res struct {
		Transformers   string   `json:"transformers"`
		HuggingfaceHub string   `json:"huggingface_hub"`
		ModelType      string   `json:"model_type"`
		Model          string   `json:"model"`
		Ids            []int    `json:"ids"`
		ImageSize      any      `json:"image_size"`
		Tensors        int      `json:"tensors"`
		Warnings       []string `json:"warnings"`
		Repos          []string `json:"repos"`
		ImageProcessor string   `json:"image_processor"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	t.Logf("transformers %s, huggingface_hub %s, model: %s %s", res.Transformers, res.HuggingfaceHub, res.Model, res.ImageProcessor)
	if res.ModelType != "blip" || len(res.Ids) < 4 || res.Ids[0] != 101 || res.Tensors == 0 || res.ImageSize == nil {
		t.Errorf("transformers read: %s", b)
	}
	if len(res.Warnings) != 0 || len(res.Repos) != 1 {
		t.Errorf("scan_cache_dir: warnings %q, repos %q", res.Warnings, res.Repos)
	}
}
