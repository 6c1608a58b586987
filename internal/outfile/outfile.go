// Package outfile is the one writer of output files in blipcuda: the
// command's results (-o), its plots (--plot), converted checkpoints.
//
// What happens depends on what the output path is, after following
// symbolic links:
//
//   - a regular file, or a path that does not exist yet, is written to a
//     temporary file in the directory of the resolved path, synced, and
//     renamed over it by Commit: the path holds either its old contents or
//     the complete new ones, never a part. A symbolic link is written
//     through (its target is replaced), never replaced itself. An existing
//     file keeps its permission bits; a new one gets 0644.
//   - a device (/dev/null, a tape, /dev/full), a FIFO, or a file descriptor
//     path (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N, as bash's
//     >(…) hands out) is written directly, as a shell redirection would, and
//     every write error is reported (so /dev/full fails).
//   - a directory is refused.
//
// Every File honours a context: once it is cancelled, writes fail with the
// context's error, a write blocked on a pipe or FIFO is woken, Commit
// refuses to rename, and Abort removes the temporary file. RemoveTemps
// removes the temporary files of every File still open, for a process
// about to exit on a signal.
package outfile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bufSize is the write buffer of every File: large enough that writes reach
// the system in big pieces, small enough that a cancelled context is noticed
// within one of them.
const bufSize = 1 << 20

// Mode says how a File writes its path.
type Mode int

const (
	// Replace writes a temporary file in the destination directory and
	// renames it over the destination on Commit.
	Replace Mode = iota
	// Direct writes the destination itself (a device, FIFO or descriptor).
	Direct
)

func (m Mode) String() string {
	if m == Direct {
		return "direct"
	}
	return "replace"
}

// Target is what an output path turned out to be.
type Target struct {
	// Path is the path as given.
	Path string
	// Resolved is Path with symbolic links followed: the file that is
	// written or created.
	Resolved string
	// Mode is how it is written.
	Mode Mode
	// Exists is true when Resolved exists.
	Exists bool
	// Perm is the permission bits the output gets (Replace only).
	Perm fs.FileMode
	// fd is the descriptor a /dev/fd/N path names, or -1.
	fd int
}

// maxLinks bounds the symbolic links followed, as the kernel's ELOOP does.
const maxLinks = 40

// Resolve says what path is and how it would be written, without creating
// or opening anything. It fails when path is a directory, a socket, a loop
// of symbolic links, or when the directory a new file would go in does not
// exist or is not a directory.
func Resolve(path string) (Target, error) {
	t := Target{Path: path, fd: -1, Perm: 0o644}
	if path == "" {
		return t, errors.New("empty output path")
	}
	p := path
	for range maxLinks {
		if fd, ok := descriptorPath(p); ok {
			t.Resolved, t.Mode, t.Exists, t.fd = p, Direct, true, fd
			return t, nil
		}
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			t.Resolved = p
			return t, checkDir(t)
		}
		if err != nil {
			return t, fmt.Errorf("%s: %w", path, unwrapPath(err))
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			link, err := os.Readlink(p)
			if err != nil {
				return t, fmt.Errorf("%s: %w", path, unwrapPath(err))
			}
			if !filepath.IsAbs(link) {
				link = filepath.Join(filepath.Dir(p), link)
			}
			p = link
			continue
		}
		t.Resolved, t.Exists = p, true
		switch m := st.Mode(); {
		case m.IsRegular():
			t.Perm = m.Perm()
			return t, nil
		case m.IsDir():
			return t, fmt.Errorf("%s: is a directory", path)
		case m&fs.ModeSocket != 0:
			return t, fmt.Errorf("%s: is a socket", path)
		default: // device, FIFO
			t.Mode = Direct
			return t, nil
		}
	}
	return t, fmt.Errorf("%s: too many levels of symbolic links", path)
}

// checkDir fails when the directory a new file would be created in is
// missing or not a directory.
func checkDir(t Target) error {
	dir := filepath.Dir(t.Resolved)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: directory %s: %w", t.Path, dir, unwrapPath(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", t.Path, dir)
	}
	return nil
}

// unwrapPath drops the *PathError wrapper, whose message repeats a path
// the caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// descriptorPath reports whether p names an open file descriptor of this
// process, and which.
func descriptorPath(p string) (int, bool) {
	if !haveDescriptorPaths {
		return 0, false
	}
	p = filepath.ToSlash(filepath.Clean(p))
	switch p {
	case "/dev/stdin":
		return 0, true
	case "/dev/stdout":
		return 1, true
	case "/dev/stderr":
		return 2, true
	}
	var rest string
	switch {
	case strings.HasPrefix(p, "/dev/fd/"):
		rest = p[len("/dev/fd/"):]
	case strings.HasPrefix(p, "/proc/self/fd/"):
		rest = p[len("/proc/self/fd/"):]
	case strings.HasPrefix(p, "/proc/"+strconv.Itoa(os.Getpid())+"/fd/"):
		rest = p[len("/proc/"+strconv.Itoa(os.Getpid())+"/fd/"):]
	default:
		return 0, false
	}
	fd, err := strconv.Atoi(rest)
	if err != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}

// File is an output being written. Write to it, then Commit; Abort (or
// Close) drops it. Its errors name the path as given.
type File struct {
	t      Target
	ctx    context.Context
	f      *os.File
	w      *bufio.Writer
	tmp    string // the temporary file (Replace) until renamed or removed
	stop   func() bool
	err    error // the first write error, repeated by later calls
	closed bool
	done   bool // committed or aborted
}

// Create opens path for writing as the package documentation describes.
// Nothing is visible under path before Commit when path is a regular file
// or new; a device, FIFO or descriptor is opened now (a FIFO waits for its
// reader, or for ctx).
func Create(ctx context.Context, path string) (*File, error) {
	t, err := Resolve(path)
	if err != nil {
		return nil, fmt.Errorf("writing %w", err)
	}
	return Open(ctx, t)
}

// Open opens a Target that Resolve returned.
func Open(ctx context.Context, t Target) (*File, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", t.Path, err)
	}
	out := &File{t: t, ctx: ctx}
	var err error
	switch {
	case t.Mode == Replace:
		dir, base := filepath.Split(t.Resolved)
		if dir == "" {
			dir = "."
		}
		out.f, err = createTemp(dir, "."+base+".tmp-*")
		if err == nil {
			out.tmp = out.f.Name()
		}
	case t.fd >= 0:
		out.f, err = dupFile(t.fd, t.Path)
	default:
		out.f, err = openCtx(ctx, t.Resolved)
	}
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", t.Path, unwrapPath(err))
	}
	out.w = bufio.NewWriterSize(ctxWriter{out}, bufSize)
	if t.Mode == Direct {
		// Wake a write blocked on a pipe or FIFO when ctx is cancelled;
		// files that have no deadlines are not blocked long anyway.
		f := out.f
		out.stop = context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	}
	return out, nil
}

// openCtx opens a device or FIFO for writing. Opening a FIFO blocks until
// a reader opens it; the wait ends with ctx (the blocked open is left to
// finish or to end with the process).
func openCtx(ctx context.Context, path string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.f != nil {
				r.f.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Path is the path as given to Create.
func (f *File) Path() string { return f.t.Path }

// Target is what the path was resolved to.
func (f *File) Target() Target { return f.t }

// ctxWriter is the File's underlying writer: it stops at a cancelled
// context and names the path in its errors.
type ctxWriter struct{ f *File }

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.f.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.f.f.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.f.ctx.Err() != nil {
		err = c.f.ctx.Err()
	}
	return n, unwrapPath(err)
}

// Write writes p (buffered). Its errors name the path.
func (f *File) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.done {
		return 0, fmt.Errorf("writing %s: %w", f.t.Path, os.ErrClosed)
	}
	n, err := f.w.Write(p)
	if err != nil {
		f.err = fmt.Errorf("writing %s: %w", f.t.Path, err)
		return n, f.err
	}
	return n, nil
}

// finish flushes and syncs the file and closes it.
func (f *File) finish() error {
	if f.err != nil {
		return f.err
	}
	if f.done {
		return fmt.Errorf("writing %s: %w", f.t.Path, os.ErrClosed)
	}
	wrap := func(err error) error {
		f.err = fmt.Errorf("writing %s: %w", f.t.Path, unwrapPath(err))
		return f.err
	}
	if err := f.w.Flush(); err != nil {
		return wrap(err)
	}
	if f.t.Mode == Replace {
		if err := f.f.Chmod(f.t.Perm); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return wrap(err)
		}
		if err := f.f.Sync(); err != nil {
			return wrap(err)
		}
	}
	if f.stop != nil {
		f.stop()
	}
	f.closed = true
	if err := f.f.Close(); err != nil {
		return wrap(err)
	}
	if err := f.ctx.Err(); err != nil {
		return wrap(err)
	}
	return nil
}

// rename moves the finished temporary file into place.
func (f *File) rename() error {
	if f.t.Mode == Replace {
		if err := f.ctx.Err(); err != nil {
			return fmt.Errorf("writing %s: %w", f.t.Path, err)
		}
		if err := os.Rename(f.tmp, f.t.Resolved); err != nil {
			return fmt.Errorf("writing %s: %w", f.t.Path, unwrapPath(err))
		}
		untrack(f.tmp)
		f.tmp = ""
		syncDir(filepath.Dir(f.t.Resolved))
	}
	f.done = true
	return nil
}

// Commit flushes what was written and puts it in place: a regular file is
// synced and renamed over the path; a device or pipe is flushed and closed.
// On failure (a write error, a cancelled context) the temporary file is
// removed and the path is left as it was.
func (f *File) Commit() error {
	err := f.finish()
	if err == nil {
		err = f.rename()
	}
	if err != nil {
		f.Abort()
	}
	return err
}

// Abort drops the file: the temporary file is closed and removed, the path
// keeps its old contents (what went to a device or pipe cannot be taken
// back). It is safe to call more than once and after Commit.
func (f *File) Abort() {
	if f == nil {
		return
	}
	if f.stop != nil {
		f.stop()
	}
	if !f.closed {
		f.closed = true
		f.f.Close()
	}
	if f.tmp != "" {
		os.Remove(f.tmp)
		untrack(f.tmp)
		f.tmp = ""
	}
	f.done = true
}

// Close is Abort, for defer: after Commit it does nothing.
func (f *File) Close() error {
	f.Abort()
	return nil
}

// CommitAll commits files together: each is finished first, and only when
// all are complete are they renamed, so that a write error leaves none of
// them in place. On failure every file is aborted.
func CommitAll(files ...*File) error {
	for _, f := range files {
		if err := f.finish(); err != nil {
			AbortAll(files...)
			return err
		}
	}
	for _, f := range files {
		if err := f.rename(); err != nil {
			AbortAll(files...)
			return err
		}
	}
	return nil
}

// AbortAll aborts every file.
func AbortAll(files ...*File) {
	for _, f := range files {
		f.Abort()
	}
}

// WriteFile writes path with write and commits it; on any error nothing is
// left and the path keeps its old contents.
func WriteFile(ctx context.Context, path string, write func(w io.Writer) error) error {
	f, err := Create(ctx, path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Abort()
		if f.err != nil {
			return f.err
		}
		return err
	}
	return f.Commit()
}

// syncDir makes a rename in dir durable; not every system can sync a
// directory, and a failure there loses nothing that was written.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// temps are the temporary files of the Files not yet committed or aborted.
var temps struct {
	sync.Mutex
	m map[string]struct{}
}

func createTemp(dir, pattern string) (*os.File, error) {
	temps.Lock()
	defer temps.Unlock()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if temps.m == nil {
		temps.m = map[string]struct{}{}
	}
	temps.m[f.Name()] = struct{}{}
	return f, nil
}

func untrack(name string) {
	temps.Lock()
	delete(temps.m, name)
	temps.Unlock()
}

// RemoveTemps removes the temporary files of every File not yet committed
// or aborted. A command calls it when a signal makes it exit without
// unwinding (a second interrupt), so that no hidden temporary file is left
// next to an output. The Files themselves become unusable.
func RemoveTemps() {
	temps.Lock()
	defer temps.Unlock()
	for name := range temps.m {
		os.Remove(name)
	}
	clear(temps.m)
}
