package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda/hub/hubtest"
)

const (
	repoID  = "Salesforce/blip-itm-base-coco"
	commit1 = "e53efa8d6e2f1aa8bc0a2cbbd1e8f2f7b3bd9a11"
	commit2 = "98cf803a3a4b9bd5e9f0c1a1e8ac41b9d1b2c3d4"
)

// standardHub is a fake Hub with the files of a BLIP repo: small git files
// on main, the weights as an LFS file on main, and model.safetensors on a
// pull-request revision refs/pr/5.
func standardHub(t *testing.T) (*hubtest.Hub, map[string]hubtest.File) {
	fh := hubtest.New(t)
	files := map[string]hubtest.File{
		"config.json":       fh.AddFile(repoID, commit1, "config.json", []byte(`{"model_type":"blip"}`+"\n"), false, "main"),
		"vocab.txt":         fh.AddFile(repoID, commit1, "vocab.txt", []byte("[PAD]\n[UNK]\nhello\n"), false, "main"),
		"sub/dir/notes.txt": fh.AddFile(repoID, commit1, "sub/dir/notes.txt", []byte("nested\n"), false, "main"),
		"pytorch_model.bin": fh.AddFile(repoID, commit1, "pytorch_model.bin", randomBytes(3<<20+17, 1), true, "main"),
		"model.safetensors": fh.AddFile(repoID, commit2, "model.safetensors", randomBytes(1<<20+5, 2), true, "refs/pr/5"),
	}
	fh.AddFile(repoID, commit2, "config.json", files["config.json"].Data, false, "refs/pr/5")
	return fh, files
}

func mustDownload(t *testing.T, c *Client, repo, rev, file string) string {
	t.Helper()
	p, err := c.Download(context.Background(), repo, rev, file)
	if err != nil {
		t.Fatalf("Download(%s, %s, %s): %v", repo, rev, file, err)
	}
	return p
}

func checkContent(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (got %d bytes, want %d)", path, len(got), len(want))
	}
}

func TestDownloadLayout(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh)
	for _, name := range []string{"config.json", "pytorch_model.bin", "sub/dir/notes.txt"} {
		p := mustDownload(t, c, repoID, "main", name)
		want := filepath.Join(c.CacheDir(), "models--Salesforce--blip-itm-base-coco", "snapshots", commit1, filepath.FromSlash(name))
		if p != want {
			t.Errorf("path = %s, want %s", p, want)
		}
		checkContent(t, p, files[name].Data)
	}
	cfg, bin, notes := files["config.json"].ETag, files["pytorch_model.bin"].ETag, files["sub/dir/notes.txt"].ETag
	if len(cfg) != 40 || len(bin) != 64 {
		t.Fatalf("bad test etags %q %q", cfg, bin)
	}
	want := []string{
		".locks/models--Salesforce--blip-itm-base-coco/" + bin + ".lock",
		"models--Salesforce--blip-itm-base-coco/blobs/" + bin,
		"models--Salesforce--blip-itm-base-coco/blobs/" + cfg,
		"models--Salesforce--blip-itm-base-coco/blobs/" + notes,
		"models--Salesforce--blip-itm-base-coco/refs/main",
		"models--Salesforce--blip-itm-base-coco/snapshots/" + commit1 + "/config.json -> ../../blobs/" + cfg,
		"models--Salesforce--blip-itm-base-coco/snapshots/" + commit1 + "/pytorch_model.bin -> ../../blobs/" + bin,
		"models--Salesforce--blip-itm-base-coco/snapshots/" + commit1 + "/sub/dir/notes.txt -> ../../../../blobs/" + notes,
	}
	got := listTree(t, c.CacheDir())
	// Lock files of the small files exist too; only check the LFS one.
	got = slices.DeleteFunc(got, func(s string) bool {
		return strings.HasPrefix(s, ".locks/") && !strings.Contains(s, bin)
	})
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("cache tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ref, err := os.ReadFile(filepath.Join(c.CacheDir(), "models--Salesforce--blip-itm-base-coco", "refs", "main"))
	if err != nil || string(ref) != commit1 {
		t.Errorf("refs/main = %q, %v; want %q without newline", ref, err, commit1)
	}
	// The LFS file came from the CDN host, metadata from the Hub by HEAD.
	var cdnGets, hubHeads int
	for _, r := range fh.Requests() {
		switch {
		case r.Host == "cdn" && r.Method == "GET":
			cdnGets++
			if !strings.Contains(r.RawPath, bin) {
				t.Errorf("CDN GET %s is not the LFS blob", r.RawPath)
			}
		case r.Host == "hub" && r.Method == "HEAD":
			hubHeads++
		}
	}
	if cdnGets != 1 || hubHeads != 3 {
		t.Errorf("CDN GETs = %d, Hub HEADs = %d; want 1 and 3", cdnGets, hubHeads)
	}
}

func TestTokenOnlyToHub(t *testing.T) {
	fh, files := standardHub(t)
	fh.Repo(repoID).Private = true
	c := testClient(t, fh, WithToken(fh.Token))
	for _, name := range []string{"config.json", "pytorch_model.bin"} {
		checkContent(t, mustDownload(t, c, repoID, "main", name), files[name].Data)
	}
	reqs := fh.Requests()
	sawCDN := false
	for _, r := range reqs {
		switch r.Host {
		case "hub":
			if r.Auth != "Bearer "+fh.Token {
				t.Errorf("Hub %s %s: Authorization %q, want the token", r.Method, r.RawPath, r.Auth)
			}
		case "cdn":
			sawCDN = true
			if r.Auth != "" {
				t.Errorf("CDN %s %s got Authorization %q: the token leaked to the redirect host", r.Method, r.RawPath, r.Auth)
			}
		}
	}
	if !sawCDN {
		t.Fatal("no request reached the CDN host")
	}
}

func TestSecondDownloadUsesCache(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh)
	first := mustDownload(t, c, repoID, "main", "pytorch_model.bin")

	fh.Reset()
	if p := mustDownload(t, c, repoID, "main", "pytorch_model.bin"); p != first {
		t.Errorf("second path %s != %s", p, first)
	}
	reqs := fh.Requests()
	if len(reqs) != 1 || reqs[0].Method != "HEAD" || reqs[0].Host != "hub" {
		t.Errorf("online cached download made %v, want one HEAD", reqs)
	}

	fh.Reset()
	off := sameCache(t, c, WithOffline(true))
	if p := mustDownload(t, off, repoID, "main", "pytorch_model.bin"); p != first {
		t.Errorf("offline path %s != %s", p, first)
	}
	// A commit id needs no request either, even online.
	checkContent(t, mustDownload(t, c, repoID, commit1, "pytorch_model.bin"), files["pytorch_model.bin"].Data)
	if reqs := fh.Requests(); len(reqs) != 0 {
		t.Errorf("offline / commit-pinned downloads made requests: %v", reqs)
	}
}

func TestRevisionWithSlash(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh)
	p := mustDownload(t, c, repoID, "refs/pr/5", "model.safetensors")
	checkContent(t, p, files["model.safetensors"].Data)
	if !strings.Contains(p, filepath.Join("snapshots", commit2, "model.safetensors")) {
		t.Errorf("path %s not in the refs/pr/5 commit's snapshot", p)
	}
	head := fh.Requests()[0]
	if want := "/" + repoID + "/resolve/refs%2Fpr%2F5/model.safetensors"; head.RawPath != want {
		t.Errorf("HEAD path %s, want %s", head.RawPath, want)
	}
	ref, err := os.ReadFile(filepath.Join(c.repoDir(repoID), "refs", "refs", "pr", "5"))
	if err != nil || string(ref) != commit2 {
		t.Errorf("refs/refs/pr/5 = %q, %v; want %q", ref, err, commit2)
	}
	off := sameCache(t, c, WithOffline(true))
	if p2 := mustDownload(t, off, repoID, "refs/pr/5", "model.safetensors"); p2 != p {
		t.Errorf("offline resolution of refs/pr/5 gave %s, want %s", p2, p)
	}
}

func TestErrorStatuses(t *testing.T) {
	fh, _ := standardHub(t)
	fh.AddFile("org/private", commit1, "config.json", []byte("{}"), false, "main")
	fh.Repo("org/private").Private = true
	fh.AddFile("org/gated", commit1, "config.json", []byte("{}"), false, "main")
	fh.Repo("org/gated").Gated = true
	fh.AddFile("org/plain401", commit1, "config.json", []byte("{}"), false, "main")
	fh.Repo("org/plain401").PlainStatus = 401
	c := testClient(t, fh)
	sentinels := []error{ErrRepoNotFound, ErrRevisionNotFound, ErrEntryNotFound, ErrGatedRepo, ErrUnauthorized}
	cases := []struct {
		repo, rev, file string
		want            []error
		status          int
		words           []string
	}{
		{"org/private", "main", "config.json", []error{ErrRepoNotFound}, 401, []string{"HF_TOKEN"}},
		{"org/plain401", "main", "config.json", []error{ErrUnauthorized}, 401, []string{"HF_TOKEN"}},
		{"org/gated", "main", "config.json", []error{ErrGatedRepo, ErrUnauthorized}, 403, []string{"HF_TOKEN", "gated"}},
		{"org/missing", "main", "config.json", []error{ErrRepoNotFound}, 401, []string{"HF_TOKEN"}},
		{repoID, "refs/pr/99", "config.json", []error{ErrRevisionNotFound}, 404, nil},
		{repoID, "main", "model.safetensors", []error{ErrEntryNotFound}, 404, nil},
	}
	for _, tc := range cases {
		t.Run(tc.repo+"@"+tc.rev, func(t *testing.T) {
			_, err := c.Download(context.Background(), tc.repo, tc.rev, tc.file)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range sentinels {
				if errors.Is(err, s) != slices.Contains(tc.want, s) {
					t.Errorf("errors.Is(err, %v) = %v; err = %v", s, errors.Is(err, s), err)
				}
			}
			if errors.Is(err, ErrNotCached) {
				t.Errorf("an HTTP error is reported as not cached: %v", err)
			}
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != tc.status {
				t.Errorf("want *HTTPError with status %d, got %#v", tc.status, err)
			}
			msg := err.Error()
			for _, w := range append([]string{tc.repo, tc.rev, tc.file}, tc.words...) {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
		})
	}
	// The missing file was recorded as huggingface_hub does.
	if _, err := os.Stat(filepath.Join(c.repoDir(repoID), ".no_exist", commit1, "model.safetensors")); err != nil {
		t.Errorf(".no_exist marker: %v", err)
	}
	// Nothing was linked for any failure.
	for _, repo := range []string{"org/private", "org/gated", "org/missing"} {
		if _, err := os.Stat(filepath.Join(c.repoDir(repo), "snapshots")); err == nil {
			t.Errorf("%s has a snapshots folder after an error", repo)
		}
	}
}

func assertNothingLinked(t *testing.T, c *Client, commit, name, etag string) {
	t.Helper()
	dir := c.repoDir(repoID)
	if _, err := os.Lstat(pointerPath(dir, commit, name)); err == nil {
		t.Errorf("snapshot link for %s exists after a failed download", name)
	}
	if _, err := os.Stat(blobPath(dir, etag)); err == nil {
		t.Errorf("blob %s exists after a failed download", etag)
	}
}

func TestResumeAfterDroppedConnection(t *testing.T) {
	fh, files := standardHub(t)
	f := files["pytorch_model.bin"]
	const cut = 1<<20 + 123
	fh.DropAfter(f.ETag, cut)
	c := testClient(t, fh) // no in-run retries: the first call fails
	_, err := c.Download(context.Background(), repoID, "main", "pytorch_model.bin")
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("first Download: %v, want ErrIncomplete", err)
	}
	assertNothingLinked(t, c, commit1, "pytorch_model.bin", f.ETag)
	part := blobPath(c.repoDir(repoID), f.ETag) + ".incomplete"
	if n := fileSize(part); n != cut {
		t.Fatalf(".incomplete has %d bytes, want %d", n, cut)
	}
	if ok, _ := c.IsCached(repoID); ok {
		t.Error("IsCached true with only a partial download")
	}

	fh.Reset()
	p := mustDownload(t, c, repoID, "main", "pytorch_model.bin")
	checkContent(t, p, f.Data)
	var gets []hubtest.Request
	for _, r := range fh.Requests() {
		if r.Method == "GET" {
			gets = append(gets, r)
		}
	}
	if len(gets) != 1 || gets[0].Range != fmt.Sprintf("bytes=%d-", cut) {
		t.Errorf("resumed GETs %+v, want one with Range bytes=%d-", gets, cut)
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".incomplete left behind: %v", err)
	}
}

func TestResumeWithinOneCall(t *testing.T) {
	fh, files := standardHub(t)
	f := files["pytorch_model.bin"]
	fh.DropAfter(f.ETag, 1000, 500000)
	c := testClient(t, fh, WithRetries(3))
	rec := &recorder{}
	c.progress = rec
	checkContent(t, mustDownload(t, c, repoID, "main", "pytorch_model.bin"), f.Data)
	var ranges []string
	for _, r := range fh.Requests() {
		if r.Method == "GET" {
			ranges = append(ranges, r.Range)
		}
	}
	if want := []string{"", "bytes=1000-", "bytes=501000-"}; !slices.Equal(ranges, want) {
		t.Errorf("GET ranges %q, want %q", ranges, want)
	}
	if len(rec.starts) != 1 || rec.starts[0].Size != int64(len(f.Data)) || rec.finished != 1 || rec.err != nil {
		t.Errorf("progress: %+v", rec)
	}
	if rec.last != int64(len(f.Data)) {
		t.Errorf("last progress %d, want %d", rec.last, len(f.Data))
	}
}

func TestServerIgnoringRange(t *testing.T) {
	fh, files := standardHub(t)
	f := files["pytorch_model.bin"]
	fh.DropAfter(f.ETag, 4096)
	fh.IgnoreRange(true)
	c := testClient(t, fh, WithRetries(2))
	checkContent(t, mustDownload(t, c, repoID, "main", "pytorch_model.bin"), f.Data)
}

func TestStalledTransferIsCutAndResumed(t *testing.T) {
	fh, files := standardHub(t)
	f := files["model.safetensors"]
	fh.StallAfter(f.ETag, 70000)
	c := testClient(t, fh, WithRetries(2), WithTimeouts(0, 150*time.Millisecond))
	start := time.Now()
	checkContent(t, mustDownload(t, c, repoID, "refs/pr/5", "model.safetensors"), f.Data)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stall detection took %v", d)
	}
	if n := fh.Count("cdn", "GET"); n != 2 {
		t.Errorf("CDN GETs = %d, want 2", n)
	}
}

func TestWrongChecksum(t *testing.T) {
	fh, files := standardHub(t)
	f := files["pytorch_model.bin"]
	fh.Corrupt(f.ETag)
	c := testClient(t, fh, WithRetries(2))
	_, err := c.Download(context.Background(), repoID, "main", "pytorch_model.bin")
	var ce *ChecksumError
	if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) || ce.Want != f.ETag {
		t.Fatalf("err = %v, want a ChecksumError for %s", err, f.ETag)
	}
	assertNothingLinked(t, c, commit1, "pytorch_model.bin", f.ETag)
	if _, err := os.Stat(blobPath(c.repoDir(repoID), f.ETag) + ".incomplete"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("corrupt .incomplete kept: %v", err)
	}
	if n := fh.Count("cdn", "GET"); n != 1 {
		t.Errorf("a checksum error was retried: %d GETs", n)
	}
}

// fullDisk is a file that fails with ENOSPC once limit bytes are written.
type fullDisk struct {
	f       *os.File
	limit   int
	written *int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	room := d.limit - *d.written
	if room <= 0 {
		return 0, &os.PathError{Op: "write", Path: d.f.Name(), Err: syscall.ENOSPC}
	}
	if len(p) > room {
		n, _ := d.f.Write(p[:room])
		*d.written += n
		return n, &os.PathError{Op: "write", Path: d.f.Name(), Err: syscall.ENOSPC}
	}
	n, err := d.f.Write(p)
	*d.written += n
	return n, err
}
func (d *fullDisk) Sync() error  { return d.f.Sync() }
func (d *fullDisk) Close() error { return d.f.Close() }

func TestDiskFull(t *testing.T) {
	fh, files := standardHub(t)
	f := files["pytorch_model.bin"]
	c := testClient(t, fh, WithRetries(3))
	written := 0
	c.openFile = func(name string, flag int, perm os.FileMode) (writeFile, error) {
		of, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &fullDisk{f: of, limit: 200000, written: &written}, nil
	}
	_, err := c.Download(context.Background(), repoID, "main", "pytorch_model.bin")
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ErrDiskFull wrapping ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "HF_HUB_CACHE") {
		t.Errorf("message %q does not say how to fix it", err)
	}
	assertNothingLinked(t, c, commit1, "pytorch_model.bin", f.ETag)
	if _, err := os.Stat(blobPath(c.repoDir(repoID), f.ETag) + ".incomplete"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file kept on a full disk: %v", err)
	}
	if n := fh.Count("cdn", "GET"); n != 1 {
		t.Errorf("a full disk was retried: %d GETs", n)
	}
}

func TestOfflineMode(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh, WithOffline(true))
	_, err := c.Download(context.Background(), repoID, "main", "config.json")
	var nc *NotCachedError
	if !errors.Is(err, ErrNotCached) || !errors.As(err, &nc) || !nc.Offline {
		t.Fatalf("err = %v, want an offline NotCachedError", err)
	}
	for _, w := range []string{"HF_HUB_OFFLINE", "blipcuda pull " + repoID, "config.json", c.CacheDir()} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not mention %q", err, w)
		}
	}
	if _, err := c.Snapshot(context.Background(), repoID, "main", []string{"config.json"}); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline Snapshot: %v", err)
	}
	if n := len(fh.Requests()); n != 0 {
		t.Fatalf("offline client made %d requests", n)
	}
	online := sameCache(t, c, WithOffline(false))
	mustDownload(t, online, repoID, "main", "config.json")
	fh.Reset()
	checkContent(t, mustDownload(t, c, repoID, "main", "config.json"), files["config.json"].Data)
	if n := len(fh.Requests()); n != 0 {
		t.Fatalf("offline client made %d requests", n)
	}
}

// deadEndpoint returns the URL of a port nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestHubUnreachable(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh)
	mustDownload(t, c, repoID, "main", "config.json")
	down := sameCache(t, c, WithEndpoint(deadEndpoint(t)))
	checkContent(t, mustDownload(t, down, repoID, "main", "config.json"), files["config.json"].Data)
	_, err := down.Download(context.Background(), repoID, "main", "vocab.txt")
	var nc *NotCachedError
	if !errors.As(err, &nc) || nc.Offline || nc.Cause == nil {
		t.Fatalf("err = %v, want a NotCachedError with the network cause", err)
	}
	for _, w := range []string{"blipcuda pull " + repoID, "HF_ENDPOINT", "vocab.txt"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not mention %q", err, w)
		}
	}
	// FileExists falls back to the cache too.
	if ok, err := down.FileExists(context.Background(), repoID, "main", "config.json"); !ok || err != nil {
		t.Errorf("FileExists(cached) with the Hub down = %v, %v", ok, err)
	}
}

func TestRetryOn503(t *testing.T) {
	fh, files := standardHub(t)
	fh.Busy(2)
	c := testClient(t, fh, WithRetries(2))
	checkContent(t, mustDownload(t, c, repoID, "main", "config.json"), files["config.json"].Data)
}

func TestRenamedRepoRelativeRedirect(t *testing.T) {
	fh, files := standardHub(t)
	fh.Move("Salesforce/old-name", repoID)
	c := testClient(t, fh, WithToken(fh.Token))
	p := mustDownload(t, c, "Salesforce/old-name", "main", "pytorch_model.bin")
	checkContent(t, p, files["pytorch_model.bin"].Data)
	if !strings.Contains(p, "models--Salesforce--old-name") {
		t.Errorf("cached under %s, want the requested repo id's folder", p)
	}
	for _, r := range fh.Requests() {
		if r.Host == "hub" && r.Auth == "" {
			t.Errorf("relative redirect on the Hub lost the token: %+v", r)
		}
	}
}

func TestDanglingLinkIsRepaired(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh)
	p := mustDownload(t, c, repoID, "main", "config.json")
	if err := os.Remove(blobPath(c.repoDir(repoID), files["config.json"].ETag)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CachedSnapshot(repoID, "main"); !errors.Is(err, ErrNotCached) {
		t.Errorf("CachedSnapshot with a dangling link: %v", err)
	}
	checkContent(t, mustDownload(t, c, repoID, "main", "config.json"), files["config.json"].Data)
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link not restored: %v", err)
	}
}

func TestConcurrentDownloadsOfOneFile(t *testing.T) {
	fh, files := standardHub(t)
	fh.SetCDNDelay(50 * time.Millisecond)
	c := testClient(t, fh)
	const n = 6
	var wg sync.WaitGroup
	paths := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		cl := c
		if i%2 == 1 {
			cl = sameCache(t, c) // another Client, as another process would be
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = cl.Download(context.Background(), repoID, "main", "pytorch_model.bin")
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("paths differ: %s vs %s", paths[i], paths[0])
		}
	}
	checkContent(t, paths[0], files["pytorch_model.bin"].Data)
	if got := fh.Count("cdn", "GET"); got != 1 {
		t.Errorf("the blob was fetched %d times, want once", got)
	}
}

func TestSnapshotAndCachedSnapshot(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh)
	names := []string{"config.json", "vocab.txt", "pytorch_model.bin"}
	dir, err := c.Snapshot(context.Background(), repoID, "main", names)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(c.repoDir(repoID), "snapshots", commit1); dir != want {
		t.Errorf("dir %s, want %s", dir, want)
	}
	for _, n := range names {
		checkContent(t, filepath.Join(dir, n), files[n].Data)
	}
	// The later files were asked for at the commit the first one fixed.
	for _, r := range fh.Requests()[1:] {
		if r.Host == "hub" && r.Method == "HEAD" && !strings.Contains(r.RawPath, "/resolve/"+commit1+"/") {
			t.Errorf("request %s not pinned to the commit", r.RawPath)
		}
	}
	for _, tc := range []struct {
		rev   string
		files []string
		ok    bool
	}{
		{"main", nil, true},
		{"main", names, true},
		{commit1, []string{"config.json"}, true},
		{"main", []string{"sub/dir/notes.txt"}, false},
		{"refs/pr/5", nil, false},
	} {
		got, err := c.CachedSnapshot(repoID, tc.rev, tc.files...)
		if tc.ok && (err != nil || got != dir) {
			t.Errorf("CachedSnapshot(%s, %v) = %s, %v", tc.rev, tc.files, got, err)
		}
		if !tc.ok && !errors.Is(err, ErrNotCached) {
			t.Errorf("CachedSnapshot(%s, %v) = %s, %v; want ErrNotCached", tc.rev, tc.files, got, err)
		}
	}
}

func TestFileExists(t *testing.T) {
	fh, _ := standardHub(t)
	c := testClient(t, fh)
	ctx := context.Background()
	for _, tc := range []struct {
		rev, file string
		want      bool
	}{
		{"refs/pr/5", "model.safetensors", true},
		{"main", "model.safetensors", false},
		{"refs/pr/99", "model.safetensors", false},
		{"main", "pytorch_model.bin", true},
	} {
		got, err := c.FileExists(ctx, repoID, tc.rev, tc.file)
		if err != nil || got != tc.want {
			t.Errorf("FileExists(%s, %s) = %v, %v; want %v", tc.rev, tc.file, got, err, tc.want)
		}
	}
	if n := fh.Count("hub", "GET") + fh.Count("cdn", "GET"); n != 0 {
		t.Errorf("FileExists downloaded: %d GETs", n)
	}
	if _, err := c.FileExists(ctx, "org/missing", "main", "config.json"); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("FileExists on a missing repo: %v", err)
	}
	// Offline, the cache (and the .no_exist marker the probe above left) answers.
	mustDownload(t, c, repoID, "refs/pr/5", "model.safetensors")
	off := sameCache(t, c, WithOffline(true))
	fh.Reset()
	if ok, err := off.FileExists(ctx, repoID, "refs/pr/5", "model.safetensors"); !ok || err != nil {
		t.Errorf("offline FileExists(cached) = %v, %v", ok, err)
	}
	if ok, err := off.FileExists(ctx, repoID, "main", "model.safetensors"); ok || err != nil {
		t.Errorf("offline FileExists(.no_exist) = %v, %v", ok, err)
	}
	if _, err := off.FileExists(ctx, repoID, "main", "tokenizer.json"); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline FileExists(unknown) = %v, want ErrNotCached", err)
	}
	if n := len(fh.Requests()); n != 0 {
		t.Errorf("offline FileExists made %d requests", n)
	}
}

func TestScanAndIsCached(t *testing.T) {
	fh, files := standardHub(t)
	c := testClient(t, fh)
	if repos, err := c.Scan(context.Background()); err != nil || len(repos) != 0 {
		t.Fatalf("Scan of an empty cache: %v, %v", repos, err)
	}
	mustDownload(t, c, repoID, "main", "config.json")
	mustDownload(t, c, repoID, "main", "pytorch_model.bin")
	mustDownload(t, c, repoID, "refs/pr/5", "config.json") // same blob as main's
	repos, err := c.Scan(context.Background())
	if err != nil || len(repos) != 1 {
		t.Fatalf("Scan: %v, %v", repos, err)
	}
	r := repos[0]
	wantSize := int64(len(files["config.json"].Data) + len(files["pytorch_model.bin"].Data))
	if r.Repo != repoID || r.Size != wantSize || !r.Complete() {
		t.Errorf("Scan = %+v, want size %d", r, wantSize)
	}
	if r.Refs["main"] != commit1 || r.Refs["refs/pr/5"] != commit2 {
		t.Errorf("refs %v", r.Refs)
	}
	if got := r.Snapshots[commit1]; !slices.Equal(got, []string{"config.json", "pytorch_model.bin"}) {
		t.Errorf("snapshot files %v", got)
	}
	if ok, size := c.IsCached(repoID); !ok || size != wantSize {
		t.Errorf("IsCached = %v, %d", ok, size)
	}
	if ok, _ := c.IsCached("Salesforce/blip-itm-large-coco"); ok {
		t.Error("IsCached true for a repo never downloaded")
	}
	if ok, _ := c.IsCached("../../etc"); ok {
		t.Error("IsCached true for an invalid id")
	}
}

func TestInvalidNames(t *testing.T) {
	fh, _ := standardHub(t)
	c := testClient(t, fh)
	for _, tc := range [][3]string{
		{"", "main", "config.json"},
		{"a/b/c", "main", "config.json"},
		{"../x", "main", "config.json"},
		{"org/na--me", "main", "config.json"},
		{repoID, "../../x", "config.json"},
		{repoID, "refs//pr", "config.json"},
		{repoID, "main", "../config.json"},
		{repoID, "main", "/etc/passwd"},
		{repoID, "main", `a\b`},
		{repoID, "main", "a/./b"},
	} {
		if _, err := c.Download(context.Background(), tc[0], tc[1], tc[2]); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Download(%q, %q, %q) = %v, want ErrInvalidName", tc[0], tc[1], tc[2], err)
		}
	}
	if n := len(fh.Requests()); n != 0 {
		t.Errorf("invalid names made %d requests", n)
	}
}

func TestBadHubAnswers(t *testing.T) {
	// A server that is not a Hub (no X-Repo-Commit) and a hostile ETag.
	for name, hdr := range map[string][2]string{
		"no commit":   {"", `"abc"`},
		"hostile tag": {commit1, `"../../../etc/passwd"`},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hdr[0] != "" {
					w.Header().Set("X-Repo-Commit", hdr[0])
				}
				w.Header().Set("ETag", hdr[1])
				w.Header().Set("Content-Length", "3")
				w.WriteHeader(200)
				if r.Method == "GET" {
					_, _ = io.WriteString(w, "abc")
				}
			}))
			defer srv.Close()
			c, err := NewClient(WithEndpoint(srv.URL), WithCacheDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Download(context.Background(), repoID, "main", "config.json")
			if !errors.Is(err, ErrNotCached) || !errors.Is(err, ErrBadResponse) {
				t.Errorf("err = %v, want ErrNotCached wrapping ErrBadResponse", err)
			}
			if tree := listTree(t, c.CacheDir()); len(tree) != 0 {
				t.Errorf("cache written: %v", tree)
			}
		})
	}
}

func TestCancelledContextKeepsPartial(t *testing.T) {
	fh, files := standardHub(t)
	f := files["pytorch_model.bin"]
	fh.StallAfter(f.ETag, 100000)
	c := testClient(t, fh, WithRetries(3))
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{onUpdate: func(done int64) {
		if done >= 100000 {
			cancel()
		}
	}}
	c.progress = rec
	_, err := c.Download(ctx, repoID, "main", "pytorch_model.bin")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertNothingLinked(t, c, commit1, "pytorch_model.bin", f.ETag)
	if n := fileSize(blobPath(c.repoDir(repoID), f.ETag) + ".incomplete"); n != 100000 {
		t.Errorf(".incomplete has %d bytes, want 100000", n)
	}
	checkContent(t, mustDownload(t, c, repoID, "main", "pytorch_model.bin"), f.Data)
}

// recorder is a Reporter that records calls.
type recorder struct {
	mu       sync.Mutex
	starts   []Transfer
	last     int64
	finished int
	err      error
	onUpdate func(int64)
}

func (r *recorder) Start(t Transfer) Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, t)
	return r
}

func (r *recorder) Update(done int64) {
	r.mu.Lock()
	r.last = done
	f := r.onUpdate
	r.mu.Unlock()
	if f != nil {
		f(done)
	}
}

func (r *recorder) Finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished++
	r.err = err
}
