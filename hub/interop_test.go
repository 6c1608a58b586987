package hub

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pythonHub returns a Python interpreter that has huggingface_hub, or skips:
// $BLIPCUDA_HF_PYTHON if set, else python3 from PATH.
func pythonHub(t *testing.T) string {
	t.Helper()
	py := os.Getenv("BLIPCUDA_HF_PYTHON")
	if py == "" {
		var err error
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("no python3; set BLIPCUDA_HF_PYTHON to a Python with huggingface_hub")
		}
	}
	if err := exec.Command(py, "-c", "import huggingface_hub").Run(); err != nil {
		t.Skipf("%s has no huggingface_hub; set BLIPCUDA_HF_PYTHON to a Python with it", py)
	}
	return py
}

// The Python side of the interop test: download (online) or look up
// (HF_HUB_OFFLINE=1) the files, print their paths and what scan_cache_dir
// sees, as JSON.
const interopScript = `
import json, os, sys
import huggingface_hub as h
repo = sys.argv[1]
out = {"version": h.__version__, "paths": {}}
for rev, name in [("main", "config.json"), ("main", "pytorch_model.bin"), ("refs/pr/5", "model.safetensors")]:
    out["paths"][rev + ":" + name] = h.hf_hub_download(repo, name, revision=rev)
info = h.scan_cache_dir()
out["warnings"] = [str(w) for w in info.warnings]
for r in info.repos:
    out["repo"] = {"id": r.repo_id, "size": r.size_on_disk,
                   "refs": sorted(ref for rev in r.revisions for ref in rev.refs),
                   "nb_files": r.nb_files}
print(json.dumps(out))
`

type interopResult struct {
	Version  string            `json:"version"`
	Paths    map[string]string `json:"paths"`
	Warnings []string          `json:"warnings"`
	Repo     struct {
		ID      string   `json:"id"`
		Size    int64    `json:"size"`
		Refs    []string `json:"refs"`
		NbFiles int      `json:"nb_files"`
	} `json:"repo"`
}

func runPython(t *testing.T, py, endpoint, cache string, offline bool) interopResult {
	t.Helper()
	cmd := exec.Command(py, "-c", interopScript, repoID)
	env := []string{"HF_ENDPOINT=" + endpoint, "HF_HUB_CACHE=" + cache, "HF_HOME=" + filepath.Join(cache, "home"),
		"HF_HUB_DISABLE_XET=1", "HF_HUB_DISABLE_TELEMETRY=1", "HF_HUB_DISABLE_PROGRESS_BARS=1", "HOME=" + cache,
		"PATH=" + os.Getenv("PATH")}
	if offline {
		env = append(env, "HF_HUB_OFFLINE=1")
	}
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var res interopResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("python output %q: %v", b, err)
	}
	return res
}

// cacheLayout lists a cache without the parts that legitimately differ
// between clients (lock files, the token home, and CACHEDIR.TAG, which
// recent huggingface_hub releases write and older ones report as a
// corrupted repository, so that blipcuda writes none).
func cacheLayout(t *testing.T, dir string) []string {
	return slices.DeleteFunc(listTree(t, dir), func(s string) bool {
		return strings.HasPrefix(s, ".locks/") || s == "CACHEDIR.TAG" || strings.HasPrefix(s, "home/")
	})
}

// TestPythonInterop checks, when a Python with huggingface_hub is available,
// that a cache written by this package is read by huggingface_hub offline
// and that a cache written by huggingface_hub (from the same fake Hub) is
// read by this package offline, and that both caches have the same layout.
func TestPythonInterop(t *testing.T) {
	py := pythonHub(t)
	fh, files := standardHub(t)
	ctx := context.Background()

	// Go writes, Python reads offline.
	goCache := t.TempDir()
	c := testClient(t, fh, WithCacheDir(goCache))
	want := map[string]string{
		"main:config.json":            mustDownload(t, c, repoID, "main", "config.json"),
		"main:pytorch_model.bin":      mustDownload(t, c, repoID, "main", "pytorch_model.bin"),
		"refs/pr/5:model.safetensors": mustDownload(t, c, repoID, "refs/pr/5", "model.safetensors"),
	}
	fh.Reset()
	res := runPython(t, py, fh.URL, goCache, true)
	t.Logf("huggingface_hub %s", res.Version)
	if len(fh.Requests()) != 0 {
		t.Errorf("offline Python made requests: %v", fh.Requests())
	}
	for k, p := range want {
		if res.Paths[k] != p {
			t.Errorf("Python resolved %s to %q, Go wrote %q", k, res.Paths[k], p)
		}
	}
	size := int64(len(files["config.json"].Data) + len(files["pytorch_model.bin"].Data) + len(files["model.safetensors"].Data))
	if len(res.Warnings) != 0 || res.Repo.ID != repoID || res.Repo.Size != size || res.Repo.NbFiles != 3 ||
		!slices.Equal(res.Repo.Refs, []string{"main", "refs/pr/5"}) {
		t.Errorf("Python scan_cache_dir of the Go cache: %+v", res)
	}

	// Python writes (online, from the fake Hub), Go reads offline.
	pyCache := t.TempDir()
	res = runPython(t, py, fh.URL, pyCache, false)
	off, err := NewClient(WithCacheDir(pyCache), WithOffline(true))
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range res.Paths {
		rev, name, _ := strings.Cut(k, ":")
		got, err := off.Download(ctx, repoID, rev, name)
		if err != nil || got != p {
			t.Errorf("Go offline on the Python cache: %s = %q, %v; Python wrote %q", k, got, err, p)
			continue
		}
		checkContent(t, got, files[name].Data)
	}
	if ok, n := off.IsCached(repoID); !ok || n != size {
		t.Errorf("IsCached on the Python cache = %v, %d; want %d", ok, n, size)
	}
	if _, err := off.CachedSnapshot(repoID, "main", "config.json", "pytorch_model.bin"); err != nil {
		t.Errorf("CachedSnapshot on the Python cache: %v", err)
	}

	// Same files, same layout.
	goTree, pyTree := cacheLayout(t, goCache), cacheLayout(t, pyCache)
	t.Logf("layout:\n%s", strings.Join(goTree, "\n"))
	if !slices.Equal(goTree, pyTree) {
		t.Errorf("layouts differ\nGo:\n%s\nPython:\n%s", strings.Join(goTree, "\n"), strings.Join(pyTree, "\n"))
	}
}
