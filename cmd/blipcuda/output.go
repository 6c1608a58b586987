package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// atomicFile is an output file written under a temporary name in its
// final directory, then synced and renamed into place by commit, so that
// the final name never holds a partial file. abort removes the temporary
// file.
type atomicFile struct {
	path, tmp string
	f         *os.File
	w         *bufio.Writer
	closed    bool
}

func createAtomic(path string) (*atomicFile, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("writing %s: it is a directory", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &atomicFile{path: path, tmp: f.Name(), f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (a *atomicFile) Write(p []byte) (int, error) {
	n, err := a.w.Write(p)
	if err != nil {
		err = fmt.Errorf("writing %s: %w", a.path, err)
	}
	return n, err
}

// finish flushes, syncs and closes the temporary file.
func (a *atomicFile) finish() error {
	if err := a.w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", a.path, err)
	}
	// CreateTemp makes the file 0600; outputs are ordinary files.
	if err := a.f.Chmod(0o644); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("writing %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", a.path, err)
	}
	a.closed = true
	if err := a.f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", a.path, err)
	}
	return nil
}

// rename moves the finished temporary file to its final name.
func (a *atomicFile) rename() error {
	if err := os.Rename(a.tmp, a.path); err != nil {
		return fmt.Errorf("writing %s: %w", a.path, err)
	}
	a.tmp = ""
	return nil
}

// commit finishes the file and renames it into place; on failure the
// temporary file is removed.
func (a *atomicFile) commit() error {
	err := a.finish()
	if err == nil {
		err = a.rename()
	}
	if err != nil {
		a.abort()
	}
	return err
}

// abort removes the temporary file; it is safe after commit.
func (a *atomicFile) abort() {
	if !a.closed {
		a.closed = true
		a.f.Close()
	}
	if a.tmp != "" {
		os.Remove(a.tmp)
		a.tmp = ""
	}
}

// commitAll finishes every file, then renames them all: a failure while
// writing leaves none of them behind.
func commitAll(files []*atomicFile) error {
	for _, f := range files {
		if err := f.finish(); err != nil {
			abortAll(files)
			return err
		}
	}
	for _, f := range files {
		if err := f.rename(); err != nil {
			abortAll(files)
			return err
		}
	}
	return nil
}

func abortAll(files []*atomicFile) {
	for _, f := range files {
		f.abort()
	}
}

// writeAtomic writes path's content with write into a new atomicFile,
// not yet committed, and appends it to files. On error nothing is left and
// files are aborted.
func writeAtomic(files []*atomicFile, path string, write func(w io.Writer) error) ([]*atomicFile, error) {
	f, err := createAtomic(path)
	if err != nil {
		abortAll(files)
		return nil, err
	}
	files = append(files, f)
	if err := write(f); err != nil { // write errors of f name path already
		abortAll(files)
		return nil, err
	}
	return files, nil
}

// writeOutput writes a result to path atomically, or to stdout when path
// is "" or "-".
func (a *app) writeOutput(path string, write func(w io.Writer) error) error {
	if path == "" || path == "-" {
		bw := bufio.NewWriterSize(a.stdout, 1<<16)
		err := write(bw)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return fmt.Errorf("writing the results to stdout: %w", err)
		}
		return nil
	}
	f, err := createAtomic(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.abort()
		return err
	}
	if err := f.commit(); err != nil {
		return err
	}
	a.log.Info("wrote " + path)
	return nil
}

// checkOutputPath fails early, before any work, when path cannot be
// written: its directory is missing or it is a directory.
func checkOutputPath(flagName, path string) error {
	if path == "" || path == "-" {
		return nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s %s is a directory", flagName, path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: directory %s: %w", flagName, path, dir, pathError(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("%s %s: %s is not a directory", flagName, path, dir)
	}
	return nil
}
