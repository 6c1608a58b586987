package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda"
)

// modelsOf runs `models --format json` and indexes the result by name.
func modelsOf(t *testing.T, env []string) map[string]modelRow {
	t.Helper()
	r := mustRun(t, runOpts{env: env}, "models", "--format", "json")
	var doc struct {
		CacheDir string     `json:"cache_dir"`
		Models   []modelRow `json:"models"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	out := map[string]modelRow{}
	for _, m := range doc.Models {
		out[m.Name] = m
	}
	if len(out) != 4 {
		t.Errorf("models lists %d models", len(out))
	}
	return out
}

// stderrLines counts the non-empty lines of stderr.
func stderrLines(r result) int {
	return len(strings.Split(strings.TrimSpace(r.stderr), "\n"))
}

// TestPullThenOffline: pull downloads base-coco from the fake Hub (config
// from main, model.safetensors from refs/pr/5); models sees it; match then
// works with HF_HUB_OFFLINE=1 and no Hub at all, with the library's
// numbers.
func TestPullThenOffline(t *testing.T) {
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	cache := t.TempDir()
	online := []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + cache}
	offline := []string{"HF_HUB_CACHE=" + cache, "HF_HUB_OFFLINE=1"} // and HF_ENDPOINT unreachable
	matchArgs := []string{"match", imagesDir, "-t", "a dog", "-t", "a red bus", "--model", "base-coco", "-f", "json"}

	ms := modelsOf(t, online)
	if ms["base-coco"].Cached || ms["base-coco"].Partial || ms["base-coco"].HubID != "Salesforce/blip-itm-base-coco" ||
		ms["large-coco"].Architecture != "ViT-L/16" || ms["base-coco"].Parameters < 200e6 || ms["base-coco"].DownloadBytes == 0 {
		t.Errorf("before pull: %+v", ms["base-coco"])
	}

	// Not cached, and offline or no network: one message saying what to do.
	r := run(t, runOpts{env: offline}, matchArgs...)
	wantFail(t, r, exitFailure, "not in the Hugging Face cache", "HF_HUB_OFFLINE is set", "blipcuda pull base-coco")
	if n := stderrLines(r); n != 1 {
		t.Errorf("offline: %d lines on stderr, want one message:\n%s", n, r.stderr)
	}
	r = run(t, runOpts{env: []string{"HF_HUB_CACHE=" + cache}}, matchArgs...)
	wantFail(t, r, exitFailure, "cannot be reached", "blipcuda pull", "HF_ENDPOINT")
	if n := stderrLines(r); n != 2 { // "downloading the model on first use", then the error
		t.Errorf("no network: %d lines on stderr:\n%s", n, r.stderr)
	}

	r = mustRun(t, runOpts{env: online}, "pull", "base-coco")
	f := strings.Split(strings.TrimSpace(r.stdout), "\t")
	repoDir := filepath.Join(cache, "models--Salesforce--blip-itm-base-coco")
	if len(f) != 3 || f[0] != "base-coco" || f[1] != filepath.Join(repoDir, "snapshots", commitID("base main")) ||
		f[2] != filepath.Join(repoDir, "snapshots", commitID("base pr5"), "model.safetensors") {
		t.Errorf("pull printed %q", r.stdout)
	}
	for _, w := range []string{"downloading Salesforce/blip-itm-base-coco/model.safetensors @ refs/pr/5", "downloaded model.safetensors"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("pull's progress lacks %q:\n%s", w, r.stderr)
		}
	}
	ms = modelsOf(t, online)
	if !ms["base-coco"].Cached || ms["base-coco"].Weights != f[2] || ms["base-coco"].CacheBytes < 2e6 || ms["base-flickr"].Cached {
		t.Errorf("after pull: %+v", ms)
	}
	r = mustRun(t, runOpts{env: offline}, "models")
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "base-coco ") && !strings.Contains(line, "yes (") ||
			strings.HasPrefix(line, "large-coco ") && !strings.HasSuffix(line, "no") {
			t.Errorf("models table line %q", line)
		}
	}
	if !strings.Contains(r.stdout, "cache: "+cache) {
		t.Errorf("models table does not name the cache:\n%s", r.stdout)
	}

	// Offline, with no Hub: the cached copy answers, with the library's
	// numbers for the same checkpoint.
	got := parseMatchJSON(t, mustRun(t, runOpts{env: offline}, matchArgs...).stdout)
	want := libScores(t, tinyBase, blipcuda.ProtocolBLIP, fixtureImages(), []string{"a dog", "a red bus"})
	if got.Repo != "Salesforce/blip-itm-base-coco" || got.Model != "base-coco" {
		t.Errorf("model %q repo %q", got.Model, got.Repo)
	}
	for i := range got.Images {
		for j := range got.Texts {
			if got.ITMProb[i][j] != want.ITMProb[i][j] || got.ITC[i][j] != want.ITC[i][j] {
				t.Errorf("image %d text %d differs from tiny-base's scores", i, j)
			}
		}
	}

	// Offline, pull finds everything in the cache (the Hub said main has no
	// model.safetensors, and the cache remembers it).
	r = mustRun(t, runOpts{env: offline}, "pull", "base-coco")
	if strings.TrimSpace(r.stdout) != strings.Join(f, "\t") {
		t.Errorf("offline pull printed %q", r.stdout)
	}

	// Pulling again downloads nothing; --quiet prints no progress.
	before := len(cdnRanges(fh))
	if r := mustRun(t, runOpts{env: online}, "pull", "-q", "Salesforce/blip-itm-base-coco"); r.stderr != "" {
		t.Errorf("pull -q: stderr %q", r.stderr)
	}
	if len(cdnRanges(fh)) != before {
		t.Errorf("a cached model was downloaded again")
	}
}

// TestMatchPullsOnFirstUse: match downloads a model it does not have
// (pytorch_model.bin from main, as the Hub has no safetensors revision
// for it) and scores as the library does.
func TestMatchPullsOnFirstUse(t *testing.T) {
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	env := []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + t.TempDir()}
	r := mustRun(t, runOpts{env: env}, "match", imagesDir, "-t", "a dog", "--model", "large-flickr", "-f", "json")
	if !strings.Contains(r.stderr, "downloading the model on first use") || !strings.Contains(r.stderr, "pytorch_model.bin") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	got := parseMatchJSON(t, r.stdout)
	want := libScores(t, tinyLarge, blipcuda.ProtocolBLIP, fixtureImages(), []string{"a dog"})
	for i := range got.Images {
		if got.ITMLogits[i][0] != want.ITMLogits[i][0] || got.ITC[i][0] != want.ITC[i][0] {
			t.Errorf("image %d differs from tiny-large's scores", i)
		}
	}
	// embed uses the cache now, offline.
	mustRun(t, runOpts{env: append(env, "HF_HUB_OFFLINE=1")}, "embed", "-t", "a dog", "--model", "Salesforce/blip-itm-large-flickr")
}

// blobState reports whether the cache holds the complete blob named etag
// and a partial download of it.
func blobState(t *testing.T, cache, repo, etag string) (complete, partial bool) {
	t.Helper()
	blobs := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"), "blobs")
	_, err := os.Stat(filepath.Join(blobs, etag))
	complete = err == nil
	_, err = os.Stat(filepath.Join(blobs, etag+".incomplete"))
	partial = err == nil
	return complete, partial
}

// snapshotHas reports whether the snapshot entry of file leads to a
// complete file.
func snapshotHas(cache, repo, commit, file string) bool {
	st, err := os.Stat(filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"), "snapshots", commit, file))
	return err == nil && st.Mode().IsRegular()
}

// TestPullDroppedConnection: a transfer cut mid-file leaves no
// complete-looking blob or snapshot entry, only the partial download, and
// the next pull resumes from it.
func TestPullDroppedConnection(t *testing.T) {
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	const repo = "Salesforce/blip-itm-base-coco"
	etag := fh.File(repo, "refs/pr/5", "model.safetensors").ETag
	fh.AlwaysDropAfter(etag, 1<<20)
	cache := t.TempDir()
	env := []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + cache, "BLIPCUDA_HUB_RETRIES=0"}

	r := run(t, runOpts{env: env}, "pull", "base-coco")
	wantFail(t, r, exitFailure, "model.safetensors", "incomplete download")
	if complete, partial := blobState(t, cache, repo, etag); complete || !partial {
		t.Errorf("after the drop: complete blob %v, partial %v", complete, partial)
	}
	if snapshotHas(cache, repo, commitID("base pr5"), "model.safetensors") {
		t.Error("the snapshot links a weights file that was cut off")
	}
	if ms := modelsOf(t, env); ms["base-coco"].Cached || !ms["base-coco"].Partial {
		t.Errorf("models says %+v", ms["base-coco"])
	}
	wantFail(t, run(t, runOpts{env: []string{"HF_HUB_CACHE=" + cache, "HF_HUB_OFFLINE=1"}},
		"match", imagesDir, "-t", "a dog"), exitFailure, "blipcuda pull base-coco")

	fh.ClearFaults(etag)
	fh.Reset()
	mustRun(t, runOpts{env: env}, "pull", "base-coco")
	ranges := cdnRanges(fh)
	if len(ranges) != 1 || ranges[0] != "bytes=1048576-" {
		t.Errorf("the second pull sent Range %q, want a resume from byte 1048576", ranges)
	}
	if complete, partial := blobState(t, cache, repo, etag); !complete || partial {
		t.Errorf("after resuming: complete blob %v, partial %v", complete, partial)
	}
}

// TestPullCorruptDownload: bytes whose sha256 is not the one announced are
// discarded entirely.
func TestPullCorruptDownload(t *testing.T) {
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	const repo = "Salesforce/blip-itm-base-coco"
	etag := fh.File(repo, "refs/pr/5", "model.safetensors").ETag
	fh.Corrupt(etag)
	cache := t.TempDir()
	env := []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + cache}
	r := run(t, runOpts{env: env}, "match", imagesDir, "-t", "a dog")
	wantFail(t, r, exitFailure, "sha256", etag, "discarded")
	if complete, partial := blobState(t, cache, repo, etag); complete || partial {
		t.Errorf("after a checksum mismatch: complete blob %v, partial %v", complete, partial)
	}
	if snapshotHas(cache, repo, commitID("base pr5"), "model.safetensors") {
		t.Error("the snapshot links corrupt weights")
	}
}

// TestPullInterrupt: Ctrl-C during a download stops cleanly with status
// 130, keeping the partial download for the next run and nothing that
// looks complete.
func TestPullInterrupt(t *testing.T) {
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	const repo = "Salesforce/blip-itm-base-coco"
	etag := fh.File(repo, "refs/pr/5", "model.safetensors").ETag
	fh.AlwaysStallAfter(etag, 1<<19)
	cache := t.TempDir()
	cmd, _, stderr := binCmd(t, runOpts{env: []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + cache}}, "pull", "base-coco")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fh.Stalled():
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the download never started")
	}
	// Let the client write what it received.
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit: %v, want status %d\n%s", err, exitInterrupted, stderr)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if complete, partial := blobState(t, cache, repo, etag); complete || !partial {
		t.Errorf("after Ctrl-C: complete blob %v, partial %v", complete, partial)
	}
	if snapshotHas(cache, repo, commitID("base pr5"), "model.safetensors") {
		t.Error("the snapshot links weights that were cut off")
	}
}

func TestPullErrors(t *testing.T) {
	fh := newFakeHub(t)
	serveTinyModels(t, fh)
	addCommit(t, fh, "acme/blip-novocab", commitID("novocab"), tinyBase, []string{"config.json", "model.safetensors"}, "main")
	addCommit(t, fh, "acme/blip-noconfig", commitID("noconfig"), tinyBase, []string{"vocab.txt", "model.safetensors"}, "main")
	env := []string{"HF_ENDPOINT=" + fh.URL, "HF_HUB_CACHE=" + t.TempDir()}
	wantFail(t, run(t, runOpts{env: env}, "pull"), exitUsage, "name a model")
	wantFail(t, run(t, runOpts{env: env}, "pull", "base-cocoa"), exitUsage, `unknown model "base-cocoa"`, "base-coco, base-flickr")
	wantFail(t, run(t, runOpts{env: env}, "pull", "acme/nothing"), exitFailure, "acme/nothing", "not found")
	wantFail(t, run(t, runOpts{env: env}, "pull", "acme/blip-novocab"), exitFailure, "neither tokenizer.json nor vocab.txt")
	wantFail(t, run(t, runOpts{env: env}, "pull", "acme/blip-noconfig"), exitFailure, `"config.json" not found`)
	wantFail(t, run(t, runOpts{env: env}, "match", imagesDir, "-t", "a dog", "-m", "models/tiny"), exitFailure,
		"models/tiny", "not found", "local directory")
	wantFail(t, run(t, runOpts{env: append(env, "BLIPCUDA_HUB_RETRIES=many")}, "pull", "base-coco"), exitUsage,
		"BLIPCUDA_HUB_RETRIES")
}
