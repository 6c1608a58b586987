package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Response headers of the Hub.
const (
	headerRepoCommit   = "X-Repo-Commit"
	headerLinkedETag   = "X-Linked-Etag"
	headerLinkedSize   = "X-Linked-Size"
	headerErrorCode    = "X-Error-Code"
	headerErrorMessage = "X-Error-Message"
)

const maxRedirects = 10

// fileRef names one file of one revision of a repository.
type fileRef struct {
	repo, revision, file string
}

// fileMeta is what a HEAD request tells about a file.
type fileMeta struct {
	commit   string
	etag     string
	size     int64 // -1 if unknown
	location string
}

// resolveURL is {endpoint}/{repo}/resolve/{revision}/{file}, with the revision
// escaped as one path segment (refs/pr/5 → refs%2Fpr%2F5).
func (c *Client) resolveURL(ref fileRef) string {
	return c.endpoint.String() + "/" + ref.repo + "/resolve/" + url.PathEscape(ref.revision) + "/" + escapePath(ref.file)
}

// sameOrigin reports whether u has the endpoint's scheme, host and port, the
// only place the token is sent.
func (c *Client) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.endpoint.Scheme) && strings.EqualFold(u.Host, c.endpoint.Host)
}

// send does one request, retrying 408, 429 and 5xx answers with backoff (and
// Retry-After). It never follows redirects. The token is added only when u is
// on the endpoint's origin.
func (c *Client) send(ctx context.Context, method string, u *url.URL, hdr http.Header) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("hub: %s %s: %w", method, redact(u), err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", c.userAgent)
		req.Header.Set("Accept-Encoding", "identity")
		if c.token != "" && c.sameOrigin(u) {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		c.log.DebugContext(ctx, "hub request", "method", method, "url", redact(u), "range", hdr.Get("Range"))
		// No answer within the stall timeout cuts the request; the body keeps
		// the request's context alive until it is closed.
		rctx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(c.stallTimeout, func() { cancel(errStalled) })
		resp, err := c.hc.Do(req.WithContext(rctx))
		timer.Stop()
		if err != nil {
			stalled := errors.Is(context.Cause(rctx), errStalled)
			cancel(nil)
			if stalled {
				return nil, fmt.Errorf("hub: %s %s: no answer within %v: %w", method, redact(u), c.stallTimeout, err)
			}
			return nil, fmt.Errorf("hub: %s %s: %w", method, redact(u), err)
		}
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		if !retryableStatus(resp.StatusCode) || attempt >= c.retries {
			return resp, nil
		}
		wait := c.backoff(attempt)
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
			wait = min(ra, 60*time.Second)
		}
		drain(resp)
		c.log.WarnContext(ctx, "hub: retrying", "method", method, "url", redact(u), "status", resp.StatusCode, "wait", wait)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// follow sends a request and follows redirects itself: every redirect when
// all is true, else only relative ones (and ones to the endpoint's origin).
// It returns the last response and its URL.
func (c *Client) follow(ctx context.Context, method string, u *url.URL, hdr http.Header, all bool) (*http.Response, *url.URL, error) {
	for hops := 0; ; hops++ {
		resp, err := c.send(ctx, method, u, hdr)
		if err != nil {
			return nil, nil, err
		}
		if !isRedirect(resp.StatusCode) {
			return resp, u, nil
		}
		loc := resp.Header.Get("Location")
		if loc == "" {
			return resp, u, nil
		}
		target, err := url.Parse(loc)
		if err != nil {
			drain(resp)
			return nil, nil, fmt.Errorf("hub: %s %s: bad Location %q: %w: %w", method, redact(u), loc, err, ErrBadResponse)
		}
		relative := target.Host == "" && target.Scheme == ""
		if !all && !relative && !c.sameOrigin(u.ResolveReference(target)) {
			return resp, u, nil
		}
		if hops >= maxRedirects {
			drain(resp)
			return nil, nil, fmt.Errorf("hub: %s %s: more than %d redirects: %w", method, redact(u), maxRedirects, ErrBadResponse)
		}
		drain(resp)
		u = u.ResolveReference(target)
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, nil, fmt.Errorf("hub: redirect to unsupported URL %s: %w", redact(u), ErrBadResponse)
		}
	}
}

// head fetches a file's metadata. On an error status it returns an
// *HTTPError.
func (c *Client) head(ctx context.Context, ref fileRef) (fileMeta, error) {
	u, err := url.Parse(c.resolveURL(ref))
	if err != nil {
		return fileMeta{}, fmt.Errorf("hub: %w", err)
	}
	hctx, cancel := context.WithTimeout(ctx, c.metaTimeout)
	defer cancel()
	resp, final, err := c.follow(hctx, http.MethodHead, u, nil, false)
	if err != nil {
		return fileMeta{}, err
	}
	defer drain(resp)
	if resp.StatusCode >= 400 || resp.StatusCode < 200 {
		return fileMeta{}, c.statusError(resp, ref, final)
	}
	return parseMeta(resp.Header, resp.StatusCode, final, ref)
}

// parseMeta reads commit, etag, size and location from a HEAD answer.
func parseMeta(h http.Header, status int, reqURL *url.URL, ref fileRef) (fileMeta, error) {
	m := fileMeta{size: -1, location: reqURL.String()}
	bad := func(why string) error {
		return fmt.Errorf("hub: %s (revision %q, file %q): %s; is HF_ENDPOINT a Hugging Face Hub?: %w",
			ref.repo, ref.revision, ref.file, why, ErrBadResponse)
	}
	commit, ok := parseRef([]byte(h.Get(headerRepoCommit)))
	if !ok {
		if h.Get(headerRepoCommit) == "" {
			return m, bad("the answer has no " + headerRepoCommit + " header")
		}
		return m, bad(fmt.Sprintf("unusable %s %q", headerRepoCommit, h.Get(headerRepoCommit)))
	}
	m.commit = commit
	rawTag := h.Get(headerLinkedETag)
	if rawTag == "" {
		rawTag = h.Get("ETag")
	}
	if rawTag == "" {
		return m, bad("the answer has no ETag")
	}
	if m.etag, ok = normalizeETag(rawTag); !ok {
		return m, bad(fmt.Sprintf("unusable ETag %q", rawTag))
	}
	if s := h.Get(headerLinkedSize); s != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 0 {
			return m, bad(fmt.Sprintf("bad %s %q", headerLinkedSize, s))
		}
		m.size = n
	} else if !isRedirect(status) {
		if s := h.Get("Content-Length"); s != "" {
			if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n >= 0 {
				m.size = n
			}
		}
	}
	if loc := h.Get("Location"); loc != "" && isRedirect(status) {
		t, err := url.Parse(loc)
		if err != nil {
			return m, bad(fmt.Sprintf("bad Location %q", loc))
		}
		m.location = reqURL.ResolveReference(t).String()
	}
	return m, nil
}

// statusError maps an error answer to an *HTTPError.
func (c *Client) statusError(resp *http.Response, ref fileRef, u *url.URL) error {
	e := &HTTPError{
		StatusCode: resp.StatusCode,
		Code:       resp.Header.Get(headerErrorCode),
		Message:    resp.Header.Get(headerErrorMessage),
		Repo:       ref.repo,
		Revision:   ref.revision,
		File:       ref.file,
		Endpoint:   c.endpoint.String(),
		TokenSent:  c.token != "" && c.sameOrigin(u),
	}
	if commit, ok := parseRef([]byte(resp.Header.Get(headerRepoCommit))); ok {
		e.commit = commit
	}
	switch {
	case e.Code == "RepoNotFound":
		e.kind = ErrRepoNotFound
	case e.Code == "RevisionNotFound":
		e.kind = ErrRevisionNotFound
	case e.Code == "EntryNotFound":
		e.kind = ErrEntryNotFound
	case e.Code == "GatedRepo":
		e.kind = ErrGatedRepo
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.kind = ErrUnauthorized
	case resp.StatusCode == http.StatusNotFound:
		// A plain 404 (a static mirror, an old Hub) means the file is missing.
		e.kind = ErrEntryNotFound
	}
	return e
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// parseRetryAfter reads the seconds form of Retry-After.
func parseRetryAfter(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 86400 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// parseContentRange reads "bytes first-last/total" (total may be "*").
func parseContentRange(s string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err error
	if first, err = strconv.ParseInt(a, 10, 64); err != nil || first < 0 {
		return 0, 0, 0, false
	}
	if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= last {
			return 0, 0, 0, false
		}
	}
	return first, last, total, true
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryBase << min(attempt, 10)
	if d > c.retryMax || d <= 0 {
		d = c.retryMax
	}
	// Up to 25% jitter so that parallel clients do not retry in lockstep.
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// drain reads a little of the body (so the connection can be reused) and
// closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}

// redact drops the query (signed CDN URLs carry credentials there) and any
// user info from a URL for messages and logs.
func redact(u *url.URL) string {
	v := *u
	v.User = nil
	if v.RawQuery != "" {
		v.RawQuery = ""
		return v.String() + "?…"
	}
	return v.String()
}

// isNetworkError reports whether err means the Hub could not be reached or
// did not answer usefully, so that a cached copy may be used instead.
func isNetworkError(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		// Like huggingface_hub: a missing revision or file is definite;
		// other statuses (auth, 5xx after retries) let the cache answer.
		return !errors.Is(err, ErrRevisionNotFound) && !errors.Is(err, ErrEntryNotFound)
	}
	return !errors.Is(err, ErrInvalidName)
}
