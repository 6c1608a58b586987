package hub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFile is one file of a fake repository.
type fakeFile struct {
	data []byte
	lfs  bool   // served through a redirect to the CDN host, etag = sha256
	etag string // git blob sha1, or sha256 for LFS files
}

// fakeRepo is one repository of the fake Hub.
type fakeRepo struct {
	refs    map[string]string              // revision → commit
	commits map[string]map[string]fakeFile // commit → file name → file
	private bool                           // 401 RepoNotFound without the right token
	gated   bool                           // 403 GatedRepo
	noCode  int                            // answer this status without X-Error-Code
}

// request is a recorded request.
type request struct {
	host    string // "hub" or "cdn"
	method  string
	rawPath string // escaped path as sent
	rng     string
	auth    string
}

// fakeHub is a Hub on 127.0.0.1 with a second host, the CDN, for LFS files.
type fakeHub struct {
	t        *testing.T
	hub, cdn *httptest.Server
	token    string

	mu          sync.Mutex
	repos       map[string]*fakeRepo
	moved       map[string]string // old repo id → new one (relative redirect)
	reqs        []request
	dropAfter   map[string][]int // etag → for each coming GET, bytes sent before the connection is dropped (-1: none)
	stallAfter  map[string]int   // etag → bytes sent before the next GET stalls (once)
	corrupt     map[string]bool  // etag → CDN serves flipped bytes
	ignoreRange bool
	busy        int // answer this many next requests 503 Retry-After: 0
	cdnDelay    time.Duration
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	fh := &fakeHub{
		t:          t,
		token:      "hf_testtoken",
		repos:      map[string]*fakeRepo{},
		moved:      map[string]string{},
		dropAfter:  map[string][]int{},
		stallAfter: map[string]int{},
		corrupt:    map[string]bool{},
	}
	fh.hub = httptest.NewServer(http.HandlerFunc(fh.serveHub))
	fh.cdn = httptest.NewServer(http.HandlerFunc(fh.serveCDN))
	t.Cleanup(func() {
		fh.hub.CloseClientConnections()
		fh.cdn.CloseClientConnections()
		fh.hub.Close()
		fh.cdn.Close()
	})
	return fh
}

func gitBlobSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomBytes(n int, seed byte) []byte {
	var key [32]byte
	key[0] = seed
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// addFile adds a file to repo at commit (created as needed) and points the
// revisions at the commit.
func (fh *fakeHub) addFile(repo, commit, name string, data []byte, lfs bool, revisions ...string) fakeFile {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	r := fh.repos[repo]
	if r == nil {
		r = &fakeRepo{refs: map[string]string{}, commits: map[string]map[string]fakeFile{}}
		fh.repos[repo] = r
	}
	if r.commits[commit] == nil {
		r.commits[commit] = map[string]fakeFile{}
	}
	f := fakeFile{data: data, lfs: lfs, etag: gitBlobSHA1(data)}
	if lfs {
		f.etag = sha256Hex(data)
	}
	r.commits[commit][name] = f
	for _, rev := range revisions {
		r.refs[rev] = commit
	}
	return f
}

func (fh *fakeHub) repo(name string) *fakeRepo {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	return fh.repos[name]
}

func (fh *fakeHub) record(host string, r *http.Request) {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	fh.reqs = append(fh.reqs, request{host: host, method: r.Method, rawPath: r.URL.EscapedPath(),
		rng: r.Header.Get("Range"), auth: r.Header.Get("Authorization")})
}

func (fh *fakeHub) requests() []request {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	return append([]request(nil), fh.reqs...)
}

func (fh *fakeHub) reset() {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	fh.reqs = nil
}

func (fh *fakeHub) count(host, method string) int {
	n := 0
	for _, r := range fh.requests() {
		if r.host == host && r.method == method {
			n++
		}
	}
	return n
}

func hubError(w http.ResponseWriter, status int, code, msg, commit string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	if commit != "" {
		w.Header().Set("X-Repo-Commit", commit)
	}
	w.WriteHeader(status)
}

func (fh *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	fh.record("hub", r)
	fh.mu.Lock()
	busy := fh.busy > 0
	if busy {
		fh.busy--
	}
	fh.mu.Unlock()
	if busy {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	// /{org}/{name}/resolve/{revision}/{file...}
	parts := strings.Split(r.URL.EscapedPath(), "/")
	if len(parts) < 6 || parts[3] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repoID := parts[1] + "/" + parts[2]
	fh.mu.Lock()
	newID, moved := fh.moved[repoID]
	fh.mu.Unlock()
	if moved {
		rest := strings.Join(parts[3:], "/")
		w.Header().Set("Location", "/"+newID+"/"+rest)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	rev, err := url.PathUnescape(parts[4])
	if err != nil {
		http.Error(w, "bad revision", http.StatusBadRequest)
		return
	}
	name, err := url.PathUnescape(strings.Join(parts[5:], "/"))
	if err != nil {
		http.Error(w, "bad file", http.StatusBadRequest)
		return
	}
	repo := fh.repo(repoID)
	if repo == nil {
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found", "")
		return
	}
	if repo.noCode != 0 {
		hubError(w, repo.noCode, "", "", "")
		return
	}
	if repo.private && r.Header.Get("Authorization") != "Bearer "+fh.token {
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Invalid username or password.", "")
		return
	}
	if repo.gated {
		hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+repoID+" is restricted.", "")
		return
	}
	fh.mu.Lock()
	commit, ok := repo.refs[rev]
	if !ok {
		if _, isCommit := repo.commits[rev]; isCommit {
			commit, ok = rev, true
		}
	}
	var f fakeFile
	found := false
	if ok {
		f, found = repo.commits[commit][name]
	}
	fh.mu.Unlock()
	if !ok {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "")
		return
	}
	if !found {
		hubError(w, http.StatusNotFound, "EntryNotFound", name+" does not exist on \""+rev+"\"", commit)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if f.lfs {
		w.Header().Set("ETag", `"`+gitBlobSHA1([]byte("pointer "+f.etag))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+f.etag+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.data)))
		w.Header().Set("Location", fh.cdn.URL+"/repos/xx/"+f.etag+"?X-Amz-Signature=secret")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+f.etag+`"`)
	fh.serveBytes(w, r, f)
}

func (fh *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	fh.record("cdn", r)
	etag := filepath.Base(r.URL.Path)
	fh.mu.Lock()
	var f fakeFile
	found := false
	for _, repo := range fh.repos {
		for _, files := range repo.commits {
			for _, ff := range files {
				if ff.lfs && ff.etag == etag {
					f, found = ff, true
				}
			}
		}
	}
	delay := fh.cdnDelay
	fh.mu.Unlock()
	if !found {
		http.NotFound(w, r)
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	fh.serveBytes(w, r, f)
}

// serveBytes answers GET and HEAD for f, honouring "Range: bytes=N-" and the
// configured faults.
func (fh *fakeHub) serveBytes(w http.ResponseWriter, r *http.Request, f fakeFile) {
	data := f.data
	fh.mu.Lock()
	if fh.corrupt[f.etag] {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	ignoreRange := fh.ignoreRange
	drop := -1
	stall := -1
	if r.Method == http.MethodGet {
		if d := fh.dropAfter[f.etag]; len(d) > 0 {
			drop, fh.dropAfter[f.etag] = d[0], d[1:]
		}
		if s, ok := fh.stallAfter[f.etag]; ok {
			stall = s
			delete(fh.stallAfter, f.etag)
		}
	}
	fh.mu.Unlock()
	start := 0
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && !ignoreRange {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || n < 0 {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		if n >= len(data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	body := data[start:]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Accept-Ranges", "bytes")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	switch {
	case drop >= 0 && drop < len(body):
		_, _ = w.Write(body[:drop])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-file
	case stall >= 0 && stall < len(body):
		_, _ = w.Write(body[:stall])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(body)
}

// testClient returns a Client on fh with a fresh cache, fast retries and no
// environment.
func testClient(t *testing.T, fh *fakeHub, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(fh.hub.URL), WithCacheDir(t.TempDir()), WithRetries(0)}
	c, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.retryBase = time.Millisecond
	c.retryMax = 5 * time.Millisecond
	c.lockPoll = 5 * time.Millisecond
	return c
}

// sameCache returns a second Client on the cache of c (another "process").
func sameCache(t *testing.T, c *Client, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(c.Endpoint()), WithCacheDir(c.CacheDir()), WithRetries(c.retries)}
	if c.token != "" {
		base = append(base, WithToken(c.token))
	}
	c2, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c2.retryBase, c2.retryMax, c2.lockPoll = c.retryBase, c.retryMax, c.lockPoll
	return c2
}

// listTree returns the cache's files relative to root, links shown as
// "name -> target", directories left out.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+filepath.ToSlash(target))
		case fi.Mode().IsRegular():
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
