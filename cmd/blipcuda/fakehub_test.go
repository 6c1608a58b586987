package main

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	lfs  bool   // served by a redirect to the CDN; etag is its sha256
	etag string // git blob sha1, or sha256 for LFS files
}

// fakeHub is a Hugging Face Hub on 127.0.0.1: HEAD and GET on
// /{repo}/resolve/{revision}/{file} answer with X-Repo-Commit and ETag;
// large (LFS) files answer 302 to a second server, the CDN, with
// X-Linked-Etag (their sha256) and X-Linked-Size. A missing file is 404
// with X-Error-Code EntryNotFound, a missing revision RevisionNotFound, a
// missing repository 401 RepoNotFound, as the Hub answers.
type fakeHub struct {
	hub, cdn *httptest.Server

	mu      sync.Mutex
	refs    map[string]map[string]string   // repo → revision → commit
	commits map[string]map[string]fakeFile // commit → file → content
	// Faults of the CDN, by etag.
	dropAfter  map[string]int  // send this many bytes, then drop the connection (every GET)
	stallAfter map[string]int  // send this many bytes, then hang until the client goes
	corrupt    map[string]bool // flip a byte
	stalled    chan string     // receives the etag when a stall begins
	ranges     []string        // Range headers the CDN received
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	fh := &fakeHub{
		refs:       map[string]map[string]string{},
		commits:    map[string]map[string]fakeFile{},
		dropAfter:  map[string]int{},
		stallAfter: map[string]int{},
		corrupt:    map[string]bool{},
		stalled:    make(chan string, 4),
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

// commitID makes a 40-hex commit id from a label.
func commitID(label string) string { return gitBlobSHA1([]byte(label)) }

// addCommit adds a commit holding the named files of dir (weights are LFS
// files) and points revisions at it.
func (fh *fakeHub) addCommit(t *testing.T, repo, commit, dir string, files []string, revisions ...string) {
	t.Helper()
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if fh.commits[commit] == nil {
		fh.commits[commit] = map[string]fakeFile{}
	}
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f := fakeFile{data: b, etag: gitBlobSHA1(b)}
		if strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".bin") {
			f.lfs, f.etag = true, sha256Hex(b)
		}
		fh.commits[commit][name] = f
	}
	if fh.refs[repo] == nil {
		fh.refs[repo] = map[string]string{}
	}
	for _, rev := range revisions {
		fh.refs[repo][rev] = commit
	}
}

// file returns the file served for name at revision of repo.
func (fh *fakeHub) file(repo, revision, name string) fakeFile {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	return fh.commits[fh.refs[repo][revision]][name]
}

func hubError(w http.ResponseWriter, status int, code, msg, commit string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	if commit != "" {
		w.Header().Set("X-Repo-Commit", commit)
	}
	w.WriteHeader(status)
}

func (fh *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodHead && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// /{org}/{name}/resolve/{revision}/{file...}, the revision one escaped
	// segment (refs%2Fpr%2F5).
	parts := strings.Split(r.URL.EscapedPath(), "/")
	if len(parts) < 6 || parts[3] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo := parts[1] + "/" + parts[2]
	rev, err1 := url.PathUnescape(parts[4])
	name, err2 := url.PathUnescape(strings.Join(parts[5:], "/"))
	if err1 != nil || err2 != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	fh.mu.Lock()
	refs, repoOK := fh.refs[repo]
	commit, revOK := refs[rev]
	f, fileOK := fh.commits[commit][name]
	fh.mu.Unlock()
	switch {
	case !repoOK:
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found", "")
		return
	case !revOK:
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "")
		return
	case !fileOK:
		hubError(w, http.StatusNotFound, "EntryNotFound", name+" does not exist on \""+rev+"\"", commit)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if f.lfs {
		w.Header().Set("ETag", `"`+gitBlobSHA1([]byte("version https://git-lfs.github.com/spec/v1\noid sha256:"+f.etag))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+f.etag+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.data)))
		w.Header().Set("Location", fh.cdn.URL+"/blobs/"+f.etag+"?X-Amz-Signature=secret")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+f.etag+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.data)
	}
}

func (fh *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	etag := filepath.Base(r.URL.Path)
	fh.mu.Lock()
	var f fakeFile
	for _, files := range fh.commits {
		for _, ff := range files {
			if ff.lfs && ff.etag == etag {
				f = ff
			}
		}
	}
	data := f.data
	if fh.corrupt[etag] {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	drop, dropping := fh.dropAfter[etag]
	stall, stalling := fh.stallAfter[etag]
	if r.Method == http.MethodGet {
		fh.ranges = append(fh.ranges, r.Header.Get("Range"))
	}
	fh.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	start := 0
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || n < 0 || n >= len(data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, status = n, http.StatusPartialContent
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
	case dropping && drop < len(body):
		_, _ = w.Write(body[:drop])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-file
	case stalling && stall < len(body):
		_, _ = w.Write(body[:stall])
		w.(http.Flusher).Flush()
		fh.stalled <- etag
		select {
		case <-r.Context().Done():
		case <-time.After(60 * time.Second):
		}
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(body)
}

// Files of the tiny checkpoints as the Hub holds them.
var (
	baseMainFiles  = []string{"config.json", "preprocessor_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"}
	largeMainFiles = []string{"config.json", "preprocessor_config.json", "vocab.txt", "pytorch_model.bin"}
)

// serveTinyModels serves tiny-base as Salesforce/blip-itm-base-coco, as
// the real repository is laid out: config and tokenizer on main, and
// model.safetensors only on the SFconvertbot revision refs/pr/5; and
// tiny-large as Salesforce/blip-itm-large-flickr with pytorch_model.bin on
// main and no refs/pr/4 (so that the safetensors probe gets
// RevisionNotFound).
func (fh *fakeHub) serveTinyModels(t *testing.T) {
	fh.addCommit(t, "Salesforce/blip-itm-base-coco", commitID("base main"), tinyBase, baseMainFiles, "main")
	fh.addCommit(t, "Salesforce/blip-itm-base-coco", commitID("base pr5"), tinyBase,
		append(append([]string{}, baseMainFiles...), "model.safetensors"), "refs/pr/5")
	fh.addCommit(t, "Salesforce/blip-itm-large-flickr", commitID("large main"), tinyLarge, largeMainFiles, "main")
}
