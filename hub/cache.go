package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

// repoDir is {cache}/models--{org}--{name}.
func (c *Client) repoDir(repo string) string {
	return filepath.Join(c.cacheDir, repoFolderName(repo))
}

func blobPath(repoDir, etag string) string { return filepath.Join(repoDir, "blobs", etag) }

func pointerPath(repoDir, commit, file string) string {
	return filepath.Join(repoDir, "snapshots", commit, fromSlash(file))
}

func refPath(repoDir, revision string) string {
	return filepath.Join(repoDir, "refs", fromSlash(revision))
}

func noExistPath(repoDir, commit, file string) string {
	return filepath.Join(repoDir, ".no_exist", commit, fromSlash(file))
}

func (c *Client) lockPath(repo, etag string) string {
	return filepath.Join(c.cacheDir, ".locks", repoFolderName(repo), etag+".lock")
}

// readRef returns the commit refs/{revision} points at.
func readRef(repoDir, revision string) (string, bool) {
	b, err := bounded.ReadFile(refPath(repoDir, revision), bounded.SmallLimit)
	if err != nil {
		return "", false
	}
	return parseRef(b)
}

// writeRef records that revision points at commit, as huggingface_hub does:
// the bare commit id, no newline, in refs/{revision} (refs/pr/5 nests as
// refs/refs/pr/5). Nothing is written when the file already says so.
func writeRef(repoDir, revision, commit string) error {
	if revision == commit {
		return nil
	}
	if cur, ok := readRef(repoDir, revision); ok && cur == commit {
		return nil
	}
	if err := writeFileAtomic(refPath(repoDir, revision), []byte(commit)); err != nil {
		return fmt.Errorf("hub: writing ref %s: %w", revision, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+"."+randSuffix()+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func randSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// regularFile reports whether path (followed through links) is a regular
// file, which for a snapshot entry means its blob is complete.
func regularFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// link points snapshots/{commit}/{file} at blobs/{etag} with a relative
// symlink (../../blobs/{etag}, one more ../ per subdirectory), replacing what
// was there atomically. Where symlinks cannot be made (Windows without
// developer mode) the blob is copied, as huggingface_hub does.
func link(blob, pointer string) error {
	dir := filepath.Dir(pointer)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("hub: creating snapshot directory: %w", err)
	}
	rel, err := filepath.Rel(dir, blob)
	if err != nil {
		return fmt.Errorf("hub: linking %s: %w", pointer, err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(pointer)+"."+randSuffix()+".tmp")
	if err := os.Symlink(rel, tmp); err != nil {
		if cerr := copyFile(blob, tmp); cerr != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("hub: linking %s: %w (copying instead: %w)", pointer, err, cerr)
		}
	}
	if err := os.Rename(tmp, pointer); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hub: linking %s: %w", pointer, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// lookup resolves a file from the cache alone, as huggingface_hub does
// offline: a 40-hex revision is the snapshot folder, anything else is read
// from refs/. ok is false unless the snapshot entry leads to a complete blob.
func lookup(repoDir, revision, file string) (path, commit string, ok bool) {
	commit, ok = resolveCommit(repoDir, revision)
	if !ok {
		return "", "", false
	}
	p := pointerPath(repoDir, commit, file)
	if !regularFile(p) {
		return "", "", false
	}
	return p, commit, true
}

func resolveCommit(repoDir, revision string) (string, bool) {
	if isCommitHash(revision) {
		return revision, true
	}
	return readRef(repoDir, revision)
}

// CachedSnapshot returns the snapshot folder snapshots/{commit} of repo at
// revision (a branch, tag, refs/pr/N or commit) from the local cache alone,
// without any network access. With files given, each must be in the
// snapshot; without, the folder must hold at least one file and every entry
// must lead to a complete blob. Otherwise the error wraps ErrNotCached.
func (c *Client) CachedSnapshot(repo, revision string, files ...string) (string, error) {
	if revision == "" {
		revision = DefaultRevision
	}
	if err := validateRepo(repo); err != nil {
		return "", err
	}
	if err := validatePath("revision", revision); err != nil {
		return "", err
	}
	for _, f := range files {
		if err := validatePath("file name", f); err != nil {
			return "", err
		}
	}
	notCached := &NotCachedError{Repo: repo, Revision: revision, CacheDir: c.cacheDir, Offline: true}
	dir := c.repoDir(repo)
	commit, ok := resolveCommit(dir, revision)
	if !ok {
		return "", notCached
	}
	snap := filepath.Join(dir, "snapshots", commit)
	if len(files) > 0 {
		for _, f := range files {
			if !regularFile(pointerPath(dir, commit, f)) {
				notCached.File = f
				return "", notCached
			}
		}
		return snap, nil
	}
	n := 0
	err := filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || isTempName(d.Name()) {
			return nil
		}
		if !regularFile(p) {
			return fmt.Errorf("%s: incomplete or missing blob", p)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		return "", notCached
	}
	return snap, nil
}

func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp")
}

// CachedRepo describes one model repository in the local cache.
type CachedRepo struct {
	// Repo is the repository id, e.g. "Salesforce/blip-itm-base-coco".
	Repo string
	// Dir is {cache}/models--{org}--{name}.
	Dir string
	// Size is the bytes of the complete blobs the snapshots use, counting a
	// blob shared by several snapshots once (as `hf cache scan` does).
	Size int64
	// Incomplete is the bytes of partial downloads (*.incomplete blobs).
	Incomplete int64
	// Refs maps revisions (main, refs/pr/5, ...) to commits.
	Refs map[string]string
	// Snapshots maps each commit with a snapshot folder to the files it holds
	// whose blob is complete ('/'-separated, sorted).
	Snapshots map[string][]string
	// Modified is the latest modification time of a blob.
	Modified time.Time
}

// Complete reports whether some snapshot holds at least one complete file.
func (r CachedRepo) Complete() bool {
	for _, files := range r.Snapshots {
		if len(files) > 0 {
			return true
		}
	}
	return false
}

// Scan lists the model repositories in the cache, sorted by id. A missing
// cache directory yields an empty list. Datasets and spaces are skipped.
func (c *Client) Scan(ctx context.Context) ([]CachedRepo, error) {
	entries, err := os.ReadDir(c.cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hub: scanning cache: %w", err)
	}
	var out []CachedRepo
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		repo, ok := repoFromFolder(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		r, err := scanRepo(ctx, filepath.Join(c.cacheDir, e.Name()), repo)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Repo < out[j].Repo })
	return out, nil
}

// IsCached reports whether repo has at least one complete file in the local
// cache, and the bytes its snapshots use on disk. It does no network access.
func (c *Client) IsCached(repo string) (cached bool, size int64) {
	if validateRepo(repo) != nil {
		return false, 0
	}
	r, err := scanRepo(context.Background(), c.repoDir(repo), repo)
	if err != nil {
		return false, 0
	}
	return r.Complete(), r.Size
}

func scanRepo(ctx context.Context, dir, repo string) (CachedRepo, error) {
	r := CachedRepo{Repo: repo, Dir: dir, Refs: map[string]string{}, Snapshots: map[string][]string{}}
	if _, err := os.Stat(dir); err != nil {
		return r, fmt.Errorf("hub: scanning %s: %w", repo, err)
	}
	refs := filepath.Join(dir, "refs")
	_ = filepath.WalkDir(refs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || isTempName(d.Name()) {
			return nil
		}
		rel, rerr := filepath.Rel(refs, p)
		if rerr != nil {
			return nil
		}
		if b, rerr := bounded.ReadFile(p, bounded.SmallLimit); rerr == nil {
			if commit, ok := parseRef(b); ok {
				r.Refs[filepath.ToSlash(rel)] = commit
			}
		}
		return nil
	})
	blobs := filepath.Join(dir, "blobs")
	if entries, err := os.ReadDir(blobs); err == nil {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".incomplete") {
				if fi, err := e.Info(); err == nil {
					r.Incomplete += fi.Size()
				}
			}
		}
	}
	seen := map[string]bool{}
	snaps := filepath.Join(dir, "snapshots")
	commits, _ := os.ReadDir(snaps)
	for _, ce := range commits {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		if !ce.IsDir() {
			continue
		}
		root := filepath.Join(snaps, ce.Name())
		files := []string{}
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || isTempName(d.Name()) {
				return nil
			}
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				return nil // dangling link: not part of the cached model
			}
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
			key := p
			if target, err := filepath.EvalSymlinks(p); err == nil {
				key = target
			}
			if !seen[key] {
				seen[key] = true
				r.Size += fi.Size()
				if fi.ModTime().After(r.Modified) {
					r.Modified = fi.ModTime()
				}
			}
			return nil
		})
		sort.Strings(files)
		r.Snapshots[ce.Name()] = files
	}
	return r, nil
}

// removeOwnCacheDirTag removes the CACHEDIR.TAG that earlier versions of
// blipcuda wrote in the cache root: the scan_cache_dir() of huggingface_hub
// releases that do not write the tag themselves reports any file there as a
// corrupted repository, and the cache is not blipcuda's to mark for backup
// tools (recent huggingface_hub releases write their own tag, which is left
// alone, as is any tag blipcuda did not write). Failures are ignored.
func (c *Client) removeOwnCacheDirTag() {
	p := filepath.Join(c.cacheDir, "CACHEDIR.TAG")
	b, err := os.ReadFile(p)
	if err == nil && len(b) < 1024 && strings.Contains(string(b), "created by blipcuda") {
		_ = os.Remove(p)
	}
}
