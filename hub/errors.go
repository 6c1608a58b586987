package hub

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sentinel errors, for use with errors.Is. The errors returned wrap them and
// name the repository, revision and file concerned.
var (
	// ErrRepoNotFound: the repository does not exist, or it is private or
	// gated and the request carried no valid token (the Hub answers 401
	// with X-Error-Code RepoNotFound in that case).
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: the branch, tag, commit or refs/pr/N does not exist.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the revision has no such file.
	ErrEntryNotFound = errors.New("file not found")
	// ErrGatedRepo: the repository is gated and the token's user has not
	// accepted its conditions.
	ErrGatedRepo = errors.New("gated repository")
	// ErrUnauthorized: the Hub answered 401 or 403.
	ErrUnauthorized = errors.New("access denied")
	// ErrNotCached: the file is not in the local cache and the Hub could not
	// be asked (offline mode, no network, Hub unreachable).
	ErrNotCached = errors.New("not in the local cache")
	// ErrChecksum: the downloaded bytes do not have the sha256 the Hub
	// announced; nothing was kept.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrIncomplete: the transfer ended before the announced size; the bytes
	// received are kept as blobs/{etag}.incomplete and the next Download
	// resumes from them.
	ErrIncomplete = errors.New("incomplete download")
	// ErrDiskFull: writing the cache failed because the disk (or quota) is
	// full; the partial file was removed. The error also wraps the system
	// error (syscall.ENOSPC or EDQUOT).
	ErrDiskFull = errors.New("no space left in the cache directory")
	// ErrBadResponse: the server's answer is not what a Hugging Face Hub
	// sends (missing X-Repo-Commit or ETag, unusable header values).
	ErrBadResponse = errors.New("unexpected response from the Hub")
	// ErrInvalidName: a repository id, revision or file name that cannot be
	// used (empty, "..", a backslash, an absolute path, ...).
	ErrInvalidName = errors.New("invalid name")
)

// HTTPError is an error status from the Hub. It wraps the sentinel matching
// its status and X-Error-Code (ErrRepoNotFound, ErrRevisionNotFound,
// ErrEntryNotFound, ErrGatedRepo, ErrUnauthorized), or nothing for other
// statuses.
type HTTPError struct {
	StatusCode int    // HTTP status
	Code       string // X-Error-Code, may be empty
	Message    string // X-Error-Message, may be empty
	Repo       string
	Revision   string
	File       string
	Endpoint   string
	TokenSent  bool   // whether the request carried a token
	commit     string // X-Repo-Commit of a 404 answer, if any
	kind       error
}

// Unwrap returns the sentinel errors matching the status.
func (e *HTTPError) Unwrap() []error {
	switch e.kind {
	case nil:
		return nil
	case ErrGatedRepo:
		return []error{ErrGatedRepo, ErrUnauthorized}
	}
	return []error{e.kind}
}

// Error names the repository, revision and file and says what to do.
func (e *HTTPError) Error() string {
	var b strings.Builder
	where := fmt.Sprintf("%s (revision %q, file %q)", e.Repo, e.Revision, e.File)
	tokenHint := "set HF_TOKEN to a token with read access (https://huggingface.co/settings/tokens)"
	if e.TokenSent {
		tokenHint = "the token sent (HF_TOKEN or the token file) was refused or has no access to it"
	}
	switch e.kind {
	case ErrRepoNotFound:
		fmt.Fprintf(&b, "hub: repository %s not found on %s (HTTP %d); if it is private or gated, %s",
			where, e.Endpoint, e.StatusCode, tokenHint)
	case ErrRevisionNotFound:
		fmt.Fprintf(&b, "hub: revision %q not found in %s (file %q, HTTP %d)", e.Revision, e.Repo, e.File, e.StatusCode)
	case ErrEntryNotFound:
		fmt.Fprintf(&b, "hub: file %q not found in %s at revision %q (HTTP %d)", e.File, e.Repo, e.Revision, e.StatusCode)
	case ErrGatedRepo:
		fmt.Fprintf(&b, "hub: %s is a gated repository (HTTP %d): accept its conditions at %s/%s and %s",
			where, e.StatusCode, e.Endpoint, e.Repo, tokenHint)
	case ErrUnauthorized:
		fmt.Fprintf(&b, "hub: access to %s denied (HTTP %d): %s", where, e.StatusCode, tokenHint)
	default:
		fmt.Fprintf(&b, "hub: %s: HTTP %d from %s", where, e.StatusCode, e.Endpoint)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, " (server: %s)", e.Message)
	}
	return b.String()
}

// NotCachedError says that a file is not in the local cache and the Hub could
// not be asked for it. It wraps ErrNotCached and the reason (the network
// error, or nothing in offline mode).
type NotCachedError struct {
	Repo     string
	Revision string
	File     string // empty for a whole snapshot
	CacheDir string
	Offline  bool  // offline mode (HF_HUB_OFFLINE) was on
	Cause    error // why the Hub could not be asked; nil in offline mode
}

// Unwrap returns ErrNotCached and the cause.
func (e *NotCachedError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrNotCached}
	}
	return []error{ErrNotCached, e.Cause}
}

// Error says what is missing, why the Hub was not asked, and what to do.
func (e *NotCachedError) Error() string {
	what := fmt.Sprintf("%s (revision %q)", e.Repo, e.Revision)
	if e.File != "" {
		what = fmt.Sprintf("%s (file %q, revision %q)", e.Repo, e.File, e.Revision)
	}
	if e.Offline {
		v := OfflineVariable(os.Getenv)
		if v == "" {
			v = "HF_HUB_OFFLINE"
		}
		return fmt.Sprintf("hub: %s is not in the cache %s and offline mode is on (%s): "+
			"unset %s and run `blipcuda pull %s` with network access", what, e.CacheDir, v, v, e.Repo)
	}
	return fmt.Sprintf("hub: %s is not in the cache %s and the Hub cannot be reached (%v): "+
		"run `blipcuda pull %s` with network access, or set HF_ENDPOINT to a reachable mirror",
		what, e.CacheDir, e.Cause, e.Repo)
}

// ChecksumError reports downloaded bytes whose sha256 is not the one the Hub
// announced. It wraps ErrChecksum.
type ChecksumError struct {
	Repo, Revision, File string
	Want, Got            string // hex sha256
}

// Unwrap returns ErrChecksum.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// Error names the file and both digests.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("hub: %s (revision %q, file %q): sha256 of the downloaded bytes is %s, the Hub announced %s; "+
		"the download was discarded, try again", e.Repo, e.Revision, e.File, e.Got, e.Want)
}

// OfflineVariable names the environment variable that turns offline mode
// on, HF_HUB_OFFLINE or (as transformers reads it) TRANSFORMERS_OFFLINE,
// or returns "" when neither is true. getenv is os.Getenv or a stand-in.
func OfflineVariable(getenv func(string) string) string {
	for _, v := range []string{"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		if isTrue(getenv(v)) {
			return v
		}
	}
	return ""
}
