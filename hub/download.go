package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Download returns the local path of filename in repo at revision (a branch,
// tag, refs/pr/N or 40-hex commit; empty means "main"), downloading it into
// the cache if needed. The path is {cache}/models--{org}--{name}/snapshots/
// {commit}/{filename}, a relative symlink to the blob.
//
// Online, a HEAD request asks the Hub which commit and blob the revision
// names (none is made when revision is a commit already in the cache); the
// file is fetched only when its blob is not cached. Offline (WithOffline,
// HF_HUB_OFFLINE) or when the Hub cannot be reached, the cache answers alone;
// if it does not have the file the error wraps ErrNotCached and says what to
// do. Error statuses wrap ErrRepoNotFound, ErrRevisionNotFound,
// ErrEntryNotFound, ErrGatedRepo or ErrUnauthorized.
//
// The bytes go to blobs/{etag}.incomplete (resumed with Range if a previous
// attempt left one), are checked against the announced size and, for LFS
// files, sha256, and only then renamed to blobs/{etag} and linked. A wrong
// checksum (ErrChecksum) or a write error (ErrDiskFull for a full disk)
// removes the partial file; an interrupted transfer keeps it for the next
// attempt (ErrIncomplete).
func (c *Client) Download(ctx context.Context, repo, revision, filename string) (string, error) {
	p, _, err := c.download(ctx, fileRef{repo: repo, revision: revision, file: filename})
	return p, err
}

func (ref *fileRef) validate() error {
	if ref.revision == "" {
		ref.revision = DefaultRevision
	}
	if err := validateRepo(ref.repo); err != nil {
		return err
	}
	if err := validatePath("revision", ref.revision); err != nil {
		return err
	}
	return validatePath("file name", ref.file)
}

func (c *Client) download(ctx context.Context, ref fileRef) (path, commit string, err error) {
	if err := ref.validate(); err != nil {
		return "", "", err
	}
	dir := c.repoDir(ref.repo)
	// A commit's content never changes: a cached file needs no request.
	if isCommitHash(ref.revision) {
		if p, cm, ok := lookup(dir, ref.revision, ref.file); ok {
			return p, cm, nil
		}
	}
	if c.offline {
		if p, cm, ok := lookup(dir, ref.revision, ref.file); ok {
			return p, cm, nil
		}
		return "", "", c.notCached(ref, nil)
	}
	meta, err := c.head(ctx, ref)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", fmt.Errorf("hub: %s/%s: %w", ref.repo, ref.file, ctx.Err())
		}
		var he *HTTPError
		if errors.As(err, &he) && errors.Is(err, ErrEntryNotFound) && he.commit != "" {
			c.recordNoExist(dir, ref, he.commit)
		}
		if !isNetworkError(err) {
			return "", "", err
		}
		if p, cm, ok := lookup(dir, ref.revision, ref.file); ok {
			c.log.WarnContext(ctx, "hub: using the cached file, the Hub could not be asked",
				"repo", ref.repo, "revision", ref.revision, "file", ref.file, "err", err)
			return p, cm, nil
		}
		if errors.As(err, &he) {
			return "", "", err // an auth or server answer says more than "not cached"
		}
		return "", "", c.notCached(ref, err)
	}
	c.removeOwnCacheDirTag()
	if err := writeRef(dir, ref.revision, meta.commit); err != nil {
		return "", "", err
	}
	pointer := pointerPath(dir, meta.commit, ref.file)
	if regularFile(pointer) {
		return pointer, meta.commit, nil
	}
	blob := blobPath(dir, meta.etag)
	if regularFile(blob) {
		return pointer, meta.commit, link(blob, pointer)
	}
	unlock, err := c.lockFile(ctx, c.lockPath(ref.repo, meta.etag))
	if err != nil {
		return "", "", fmt.Errorf("hub: %s/%s: %w", ref.repo, ref.file, err)
	}
	defer unlock()
	// Another goroutine or process may have finished it while we waited.
	if !regularFile(blob) {
		if err := c.fetchBlob(ctx, ref, meta, blob); err != nil {
			return "", "", err
		}
	}
	return pointer, meta.commit, link(blob, pointer)
}

func (c *Client) notCached(ref fileRef, cause error) error {
	return &NotCachedError{Repo: ref.repo, Revision: ref.revision, File: ref.file,
		CacheDir: c.cacheDir, Offline: c.offline, Cause: cause}
}

// recordNoExist writes the empty .no_exist/{commit}/{file} marker
// huggingface_hub writes when the Hub says a file does not exist.
func (c *Client) recordNoExist(dir string, ref fileRef, commit string) {
	p := noExistPath(dir, commit, ref.file)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return
	}
	if f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o666); err == nil {
		_ = f.Close()
	}
	_ = writeRef(dir, ref.revision, commit)
}

// Snapshot downloads files of repo at revision into one snapshot folder and
// returns it ({cache}/models--{org}--{name}/snapshots/{commit}). The first
// file fixes the commit; the others are fetched at that commit, so the
// folder is consistent even if the branch moves meanwhile. Errors are those
// of Download.
func (c *Client) Snapshot(ctx context.Context, repo, revision string, files []string) (string, error) {
	if len(files) == 0 {
		return "", fmt.Errorf("hub: snapshot of %s: no file named: %w", repo, ErrInvalidName)
	}
	rev := revision
	commit := ""
	for _, f := range files {
		_, cm, err := c.download(ctx, fileRef{repo: repo, revision: rev, file: f})
		if err != nil {
			return "", err
		}
		if commit == "" {
			commit = cm
			if isCommitHash(cm) {
				rev = cm
			}
		} else if cm != commit {
			return "", fmt.Errorf("hub: snapshot of %s: %s is at commit %s, not %s: %w", repo, f, cm, commit, ErrBadResponse)
		}
	}
	return filepath.Join(c.repoDir(repo), "snapshots", commit), nil
}

// FileExists asks the Hub (HEAD, no download) whether revision of repo has
// filename, e.g. to prefer model.safetensors on refs/pr/N over
// pytorch_model.bin on main. A missing file or a missing revision gives
// false and no error; a missing repository, an auth failure or any other
// error is returned. Offline or when the Hub cannot be reached, the cache
// answers: true if the file is cached, false if huggingface_hub or this
// package recorded that the Hub said it does not exist (.no_exist), else an
// error wrapping ErrNotCached.
func (c *Client) FileExists(ctx context.Context, repo, revision, filename string) (bool, error) {
	ref := fileRef{repo: repo, revision: revision, file: filename}
	if err := ref.validate(); err != nil {
		return false, err
	}
	dir := c.repoDir(ref.repo)
	if isCommitHash(ref.revision) {
		if _, _, ok := lookup(dir, ref.revision, ref.file); ok {
			return true, nil
		}
	}
	var cause error
	if !c.offline {
		_, err := c.head(ctx, ref)
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("hub: %s/%s: %w", ref.repo, ref.file, ctx.Err())
		}
		var he *HTTPError
		if errors.As(err, &he) && errors.Is(err, ErrEntryNotFound) && he.commit != "" {
			c.recordNoExist(dir, ref, he.commit)
		}
		if errors.Is(err, ErrEntryNotFound) || errors.Is(err, ErrRevisionNotFound) {
			return false, nil
		}
		if !isNetworkError(err) {
			return false, err
		}
		cause = err
	}
	if _, _, ok := lookup(dir, ref.revision, ref.file); ok {
		return true, nil
	}
	if commit, ok := resolveCommit(dir, ref.revision); ok {
		if _, err := os.Stat(noExistPath(dir, commit, ref.file)); err == nil {
			return false, nil
		}
	}
	var he *HTTPError
	if errors.As(cause, &he) {
		return false, cause
	}
	return false, c.notCached(ref, cause)
}

// errWrite marks an error of the local file (as opposed to the network).
type errWrite struct{ err error }

func (e *errWrite) Error() string { return e.err.Error() }
func (e *errWrite) Unwrap() error { return e.err }

// errRestart asks fetchBlob to start the file again from byte 0.
var errRestart = errors.New("restart from zero")

var errStalled = errors.New("no data received")

// fetchBlob downloads meta.location into blob+".incomplete", retrying
// interrupted transfers with Range, then verifies and renames it to blob.
// The caller holds the blob's lock.
func (c *Client) fetchBlob(ctx context.Context, ref fileRef, meta fileMeta, blob string) (err error) {
	if err := os.MkdirAll(filepath.Dir(blob), 0o777); err != nil {
		return c.writeError(ref, blob, err)
	}
	tmp := blob + ".incomplete"
	off := fileSize(tmp)
	if meta.size >= 0 && off > meta.size {
		c.log.WarnContext(ctx, "hub: partial download longer than the file, starting over", "file", tmp)
		if err := os.Remove(tmp); err != nil {
			return c.writeError(ref, tmp, err)
		}
		off = 0
	}
	var task Task
	if c.progress != nil {
		task = c.progress.Start(Transfer{Repo: ref.repo, Revision: ref.revision, File: ref.file, Size: meta.size, Offset: off})
		defer func() { task.Finish(err) }()
	}
	for attempt := 0; ; attempt++ {
		err = c.transfer(ctx, ref, meta, tmp, task)
		if err == nil {
			break
		}
		var we *errWrite
		switch {
		case errors.As(err, &we):
			_ = os.Remove(tmp)
			return c.writeError(ref, tmp, we.err)
		case errors.Is(err, ErrChecksum), errors.Is(err, ErrBadResponse):
			_ = os.Remove(tmp)
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("hub: %s/%s: download interrupted (kept %s for resuming): %w", ref.repo, ref.file, tmp, ctx.Err())
		case errors.Is(err, errRestart):
			_ = os.Remove(tmp)
		}
		var he *HTTPError
		if errors.As(err, &he) {
			return err
		}
		if attempt >= c.retries {
			if errors.Is(err, ErrIncomplete) {
				return err
			}
			return fmt.Errorf("hub: %s/%s: %w after %d attempts (%d bytes kept in %s for the next run): %w",
				ref.repo, ref.file, ErrIncomplete, attempt+1, fileSize(tmp), tmp, err)
		}
		wait := c.backoff(attempt)
		c.log.WarnContext(ctx, "hub: transfer interrupted, resuming", "file", ref.file, "err", err, "wait", wait)
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("hub: %s/%s: %w", ref.repo, ref.file, err)
		}
	}
	if err := os.Rename(tmp, blob); err != nil {
		_ = os.Remove(tmp)
		return c.writeError(ref, blob, err)
	}
	return nil
}

func (c *Client) writeError(ref fileRef, path string, err error) error {
	if isDiskFull(err) {
		return fmt.Errorf("hub: %s/%s: writing %s: %w (free some space or set HF_HUB_CACHE to another disk): %w",
			ref.repo, ref.file, path, ErrDiskFull, err)
	}
	return fmt.Errorf("hub: %s/%s: writing %s: %w", ref.repo, ref.file, path, err)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}

// transfer makes one GET attempt, appending to tmp from its current size.
// Network errors are returned as is (resumable); local file errors as
// *errWrite; a checksum mismatch as *ChecksumError.
func (c *Client) transfer(ctx context.Context, ref fileRef, meta fileMeta, tmp string, task Task) error {
	off := fileSize(tmp)
	var h hash.Hash
	if isSHA256(meta.etag) {
		h = sha256.New()
	}
	if meta.size >= 0 && off == meta.size && off > 0 {
		// A previous run received everything but did not finish; verify.
		if err := hashPrefix(h, tmp, off); err != nil {
			return &errWrite{err}
		}
		return c.verify(ref, meta, h, off)
	}
	u, err := url.Parse(meta.location)
	if err != nil {
		return fmt.Errorf("hub: bad download URL: %w: %w", err, ErrBadResponse)
	}
	hdr := http.Header{}
	if off > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, final, err := c.follow(rctx, http.MethodGet, u, hdr, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && off > 0:
		first, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != off || (meta.size >= 0 && total >= 0 && total != meta.size) {
			c.log.WarnContext(ctx, "hub: unexpected Content-Range, starting over", "got", resp.Header.Get("Content-Range"), "want_from", off)
			return errRestart
		}
	case resp.StatusCode == http.StatusOK:
		if off > 0 {
			c.log.InfoContext(ctx, "hub: server ignored Range, starting over", "file", ref.file)
			off = 0
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return errRestart
	default:
		return c.statusError(resp, ref, final)
	}
	if h != nil && off > 0 {
		if err := hashPrefix(h, tmp, off); err != nil {
			return &errWrite{err}
		}
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if off > 0 {
		flag = os.O_WRONLY | os.O_APPEND
	}
	f, err := c.openFile(tmp, flag, 0o666)
	if err != nil {
		return &errWrite{err}
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close()
		}
	}()
	if task != nil {
		task.Update(off)
	}
	// Stop reading one byte past the announced size (or past the bound
	// for a file of this kind when none was announced): a server that
	// over-sends cannot fill the disk before the check below.
	limit := meta.size
	if limit < 0 {
		limit = unannouncedLimit(ref.file)
	}
	n, err := c.copyBody(rctx, cancel, f, h, io.LimitReader(resp.Body, max(0, limit-off)+1), off, task)
	total := off + n
	if err != nil {
		var we *errWrite
		if !errors.As(err, &we) {
			// Keep what arrived for the next attempt.
			if serr := f.Sync(); serr != nil {
				return &errWrite{serr}
			}
		}
		return err
	}
	if err := f.Sync(); err != nil {
		return &errWrite{err}
	}
	closed = true
	if err := f.Close(); err != nil {
		return &errWrite{err}
	}
	if meta.size >= 0 && total < meta.size {
		return fmt.Errorf("hub: %s/%s: connection closed after %d of %d bytes: %w", ref.repo, ref.file, total, meta.size, ErrIncomplete)
	}
	if meta.size >= 0 && total > meta.size {
		return fmt.Errorf("hub: %s/%s: received more than the %d bytes the Hub announced: %w", ref.repo, ref.file, meta.size, ErrBadResponse)
	}
	if meta.size < 0 && total > limit {
		return fmt.Errorf("hub: %s/%s: received more than %d bytes without an announced size, more than a file of its kind needs: %w",
			ref.repo, ref.file, limit, ErrBadResponse)
	}
	return c.verify(ref, meta, h, total)
}

// unannouncedLimit bounds a download whose size the Hub did not announce:
// weights files (16 GiB, twice the largest model the loader accepts) and
// anything else (64 MiB, the cap on tokenizer.json).
func unannouncedLimit(file string) int64 {
	if strings.HasSuffix(file, ".safetensors") || strings.HasSuffix(file, ".bin") {
		return 16 << 30
	}
	return 64 << 20
}

func (c *Client) verify(ref fileRef, meta fileMeta, h hash.Hash, size int64) error {
	if h == nil {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != meta.etag {
		return &ChecksumError{Repo: ref.repo, Revision: ref.revision, File: ref.file, Want: meta.etag, Got: got}
	}
	return nil
}

// hashPrefix feeds the first n bytes of path to h (nil h: nothing to do).
func hashPrefix(h hash.Hash, path string, n int64) error {
	if h == nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := io.Copy(h, io.LimitReader(f, n))
	if err == nil && m != n {
		err = fmt.Errorf("%s: shrank while resuming", path)
	}
	return err
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyBody copies body to f (and h), reporting progress, and cuts the
// request (cancel) when no byte arrives for the stall timeout. Write errors
// come back as *errWrite.
func (c *Client) copyBody(ctx context.Context, cancel context.CancelCauseFunc, f writeFile, h hash.Hash, body io.Reader,
	off int64, task Task) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	stall := time.AfterFunc(c.stallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	var n int64
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			stall.Reset(c.stallTimeout)
			w, werr := f.Write(buf[:k])
			if h != nil {
				h.Write(buf[:w])
			}
			n += int64(w)
			if werr == nil && w < k {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, &errWrite{werr}
			}
			if task != nil {
				task.Update(off + n)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			if errors.Is(context.Cause(ctx), errStalled) {
				return n, fmt.Errorf("hub: %s for %v: %w", errStalled, c.stallTimeout, rerr)
			}
			return n, fmt.Errorf("hub: reading download: %w", rerr)
		}
	}
}
