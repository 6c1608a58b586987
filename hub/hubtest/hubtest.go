// Package hubtest is a fake Hugging Face Hub for tests: two httptest
// servers on 127.0.0.1, the Hub and a CDN, answering HEAD and GET on
// /{repo}/resolve/{revision}/{file} as the Hub does.
//
// A small (git) file answers with X-Repo-Commit and its ETag, the git blob
// sha1, and honours "Range: bytes=N-". A large (LFS) file answers 302 to
// the CDN with X-Linked-Etag (its sha256) and X-Linked-Size. A missing
// file is 404 with X-Error-Code EntryNotFound, a missing revision 404
// RevisionNotFound, a missing repository 401 RepoNotFound; private, gated
// and renamed repositories, a busy Hub, and dropped, stalled, corrupt or
// slow transfers can be configured. Every request is recorded.
//
// It uses the standard library only.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hosts of a recorded Request.
const (
	HostHub = "hub"
	HostCDN = "cdn"
)

// DefaultToken is the token a private repository wants (Hub.Token).
const DefaultToken = "hf_testtoken"

// File is one file of a fake repository.
type File struct {
	Data []byte
	LFS  bool   // served by a redirect to the CDN; ETag is its sha256
	ETag string // git blob sha1, or sha256 for LFS files
}

// Repo is one repository of the fake Hub. Set its fields before requests
// are made.
type Repo struct {
	Private     bool // 401 RepoNotFound without "Bearer " + Hub.Token
	Gated       bool // 403 GatedRepo
	PlainStatus int  // if not 0, answer this status without X-Error-Code

	refs    map[string]string          // revision → commit
	commits map[string]map[string]File // commit → file name → file
}

// Request is a recorded request.
type Request struct {
	Host    string // HostHub or HostCDN
	Method  string
	RawPath string // escaped path as sent
	Range   string // Range header
	Auth    string // Authorization header
}

// Hub is a fake Hub with a second host, the CDN, for LFS files.
type Hub struct {
	URL    string // the Hub's endpoint, http://127.0.0.1:port
	CDNURL string // the CDN's
	Token  string // the token private repositories want, DefaultToken

	hub, cdn *httptest.Server
	stalled  chan string

	mu           sync.Mutex
	repos        map[string]*Repo
	moved        map[string]string // old repo id → new one (relative redirect)
	reqs         []Request
	drops        map[string][]int // etag → for each coming GET, bytes sent before the connection is dropped
	dropAlways   map[string]int   // etag → bytes sent before every GET is dropped
	stalls       map[string]int   // etag → bytes sent before the next GET stalls
	stallAlways  map[string]int   // etag → bytes sent before every GET stalls
	corrupt      map[string]bool  // etag → flipped byte
	ignoreRange  bool
	busy         int // answer this many next requests 503 Retry-After: 0
	cdnDelay     time.Duration
	stallTimeout time.Duration
}

// New starts a fake Hub and its CDN, closed when t ends.
func New(t testing.TB) *Hub {
	t.Helper()
	h := &Hub{
		Token:        DefaultToken,
		stalled:      make(chan string, 4),
		repos:        map[string]*Repo{},
		moved:        map[string]string{},
		drops:        map[string][]int{},
		dropAlways:   map[string]int{},
		stalls:       map[string]int{},
		stallAlways:  map[string]int{},
		corrupt:      map[string]bool{},
		stallTimeout: 5 * time.Second,
	}
	h.hub = newLocalServer(t, http.HandlerFunc(h.serveHub))
	h.cdn = newLocalServer(t, http.HandlerFunc(h.serveCDN))
	h.URL, h.CDNURL = h.hub.URL, h.cdn.URL
	t.Cleanup(func() {
		h.hub.CloseClientConnections()
		h.cdn.CloseClientConnections()
		h.hub.Close()
		h.cdn.Close()
	})
	return h
}

// newLocalServer starts an httptest server listening on 127.0.0.1 only.
func newLocalServer(t testing.TB, handler http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	s := httptest.NewUnstartedServer(handler)
	s.Listener.Close()
	s.Listener = l
	s.Start()
	return s
}

// GitBlobSHA1 is the git blob id of b, the ETag of a small file.
func GitBlobSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// SHA256Hex is the hex sha256 of b, the ETag of an LFS file.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// CommitID makes a 40-hex commit id from a label.
func CommitID(label string) string { return GitBlobSHA1([]byte(label)) }

// AddFile adds a file to repo at commit (both created as needed), points
// the revisions at the commit, and returns the file.
func (h *Hub) AddFile(repo, commit, name string, data []byte, lfs bool, revisions ...string) File {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[repo]
	if r == nil {
		r = &Repo{refs: map[string]string{}, commits: map[string]map[string]File{}}
		h.repos[repo] = r
	}
	if r.commits[commit] == nil {
		r.commits[commit] = map[string]File{}
	}
	f := File{Data: data, LFS: lfs, ETag: GitBlobSHA1(data)}
	if lfs {
		f.ETag = SHA256Hex(data)
	}
	r.commits[commit][name] = f
	for _, rev := range revisions {
		r.refs[rev] = commit
	}
	return f
}

// Repo returns the repository named id, nil if there is none.
func (h *Hub) Repo(id string) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repos[id]
}

// File returns the file served for name at revision of repo, the zero File
// if there is none.
func (h *Hub) File(repo, revision, name string) File {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, _, _, _ := h.lookup(repo, revision, name)
	return f
}

// lookup resolves revision (a ref or a commit id) of repo; h.mu is held.
func (h *Hub) lookup(repo, revision, name string) (f File, commit string, revOK, fileOK bool) {
	r := h.repos[repo]
	if r == nil {
		return File{}, "", false, false
	}
	commit, revOK = r.refs[revision]
	if !revOK {
		if _, isCommit := r.commits[revision]; isCommit {
			commit, revOK = revision, true
		}
	}
	if revOK {
		f, fileOK = r.commits[commit][name]
	}
	return f, commit, revOK, fileOK
}

// Move makes the Hub answer requests for oldID with a relative redirect to
// newID, as for a renamed repository.
func (h *Hub) Move(oldID, newID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.moved[oldID] = newID
}

// Busy makes the Hub answer the next n requests 503 with Retry-After: 0.
func (h *Hub) Busy(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.busy = n
}

// SetCDNDelay makes the CDN wait d before answering.
func (h *Hub) SetCDNDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cdnDelay = d
}

// IgnoreRange makes both hosts ignore Range headers and send whole files.
func (h *Hub) IgnoreRange(ignore bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ignoreRange = ignore
}

// DropAfter makes the next len(cuts) GETs of the file with etag send
// cuts[i] bytes and then drop the connection.
func (h *Hub) DropAfter(etag string, cuts ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drops[etag] = append(h.drops[etag], cuts...)
}

// AlwaysDropAfter makes every GET of the file with etag send n bytes and
// then drop the connection, until ClearFaults.
func (h *Hub) AlwaysDropAfter(etag string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropAlways[etag] = n
}

// StallAfter makes the next GET of the file with etag send n bytes and
// then hang until the client goes or the stall timeout passes.
func (h *Hub) StallAfter(etag string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stalls[etag] = n
}

// AlwaysStallAfter makes every GET of the file with etag stall after n
// bytes, until ClearFaults.
func (h *Hub) AlwaysStallAfter(etag string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stallAlways[etag] = n
}

// SetStallTimeout sets how long a stalled transfer hangs at most before
// its connection is dropped (5s unless set).
func (h *Hub) SetStallTimeout(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stallTimeout = d
}

// Stalled receives the etag of a file whenever a stall begins (the first
// few, if nobody reads them).
func (h *Hub) Stalled() <-chan string { return h.stalled }

// Corrupt makes both hosts serve the file with etag with a flipped byte.
func (h *Hub) Corrupt(etag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.corrupt[etag] = true
}

// ClearFaults removes the drops, stalls and corruption set for etag.
func (h *Hub) ClearFaults(etag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.drops, etag)
	delete(h.dropAlways, etag)
	delete(h.stalls, etag)
	delete(h.stallAlways, etag)
	delete(h.corrupt, etag)
}

// Requests returns the requests recorded since the start or Reset.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// Reset forgets the recorded requests.
func (h *Hub) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = nil
}

// Count returns how many recorded requests went to host with method.
func (h *Hub) Count(host, method string) int {
	n := 0
	for _, r := range h.Requests() {
		if r.Host == host && r.Method == method {
			n++
		}
	}
	return n
}

func (h *Hub) record(host string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, Request{Host: host, Method: r.Method, RawPath: r.URL.EscapedPath(),
		Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization")})
}

// hubError answers as the Hub does, X-Error-Code left out if code is "".
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

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record(HostHub, r)
	h.mu.Lock()
	busy := h.busy > 0
	if busy {
		h.busy--
	}
	h.mu.Unlock()
	if busy {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
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
	repoID := parts[1] + "/" + parts[2]
	h.mu.Lock()
	newID, moved := h.moved[repoID]
	h.mu.Unlock()
	if moved {
		w.Header().Set("Location", "/"+newID+"/"+strings.Join(parts[3:], "/"))
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
	h.mu.Lock()
	var repo Repo
	rp := h.repos[repoID]
	if rp != nil {
		repo = *rp
	}
	f, commit, revOK, fileOK := h.lookup(repoID, rev, name)
	h.mu.Unlock()
	switch {
	case rp == nil:
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found", "")
		return
	case repo.PlainStatus != 0:
		hubError(w, repo.PlainStatus, "", "", "")
		return
	case repo.Private && r.Header.Get("Authorization") != "Bearer "+h.Token:
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Invalid username or password.", "")
		return
	case repo.Gated:
		hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+repoID+" is restricted.", "")
		return
	case !revOK:
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "")
		return
	case !fileOK:
		hubError(w, http.StatusNotFound, "EntryNotFound", name+" does not exist on \""+rev+"\"", commit)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if f.LFS {
		pointer := "version https://git-lfs.github.com/spec/v1\noid sha256:" + f.ETag
		w.Header().Set("ETag", `"`+GitBlobSHA1([]byte(pointer))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+f.ETag+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.Data)))
		w.Header().Set("Location", h.CDNURL+"/blobs/"+f.ETag+"?X-Amz-Signature=secret")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+f.ETag+`"`)
	h.serveBytes(w, r, f)
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record(HostCDN, r)
	etag := path.Base(r.URL.Path)
	h.mu.Lock()
	var f File
	found := false
	for _, repo := range h.repos {
		for _, files := range repo.commits {
			for _, ff := range files {
				if ff.LFS && ff.ETag == etag {
					f, found = ff, true
				}
			}
		}
	}
	delay := h.cdnDelay
	h.mu.Unlock()
	if !found {
		http.NotFound(w, r)
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	h.serveBytes(w, r, f)
}

// serveBytes answers GET and HEAD for f, honouring "Range: bytes=N-" and the
// configured faults.
func (h *Hub) serveBytes(w http.ResponseWriter, r *http.Request, f File) {
	data := f.Data
	h.mu.Lock()
	if h.corrupt[f.ETag] {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	ignoreRange := h.ignoreRange
	stallTimeout := h.stallTimeout
	drop, stall := -1, -1
	if r.Method == http.MethodGet {
		if n, ok := h.dropAlways[f.ETag]; ok {
			drop = n
		} else if d := h.drops[f.ETag]; len(d) > 0 {
			drop, h.drops[f.ETag] = d[0], d[1:]
		}
		if n, ok := h.stallAlways[f.ETag]; ok {
			stall = n
		} else if n, ok := h.stalls[f.ETag]; ok {
			stall = n
			delete(h.stalls, f.ETag)
		}
	}
	h.mu.Unlock()
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
	case drop >= 0 && drop < len(body):
		_, _ = w.Write(body[:drop])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-file
	case stall >= 0 && stall < len(body):
		_, _ = w.Write(body[:stall])
		w.(http.Flusher).Flush()
		select {
		case h.stalled <- f.ETag:
		default: // nobody is listening
		}
		select {
		case <-r.Context().Done():
		case <-time.After(stallTimeout):
		}
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(body)
}
