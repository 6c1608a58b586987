package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/blipcuda/blipcuda/internal/outfile"
)

// isStdout reports whether an output flag's value means stdout.
func isStdout(path string) bool { return path == "" || path == "-" }

// writeOutput writes a result to path (through outfile: a regular file is
// replaced atomically, a device, FIFO or /dev/fd path written directly),
// or to stdout when path is "" or "-".
func (a *app) writeOutput(ctx context.Context, path string, write func(w io.Writer) error) error {
	if isStdout(path) {
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
	if err := outfile.WriteFile(ctx, path, write); err != nil {
		return err
	}
	a.log.Info("wrote " + path)
	return nil
}

// openOutput opens an output flag's file, or returns a writer to stdout
// (and a nil file) when path means stdout.
func (a *app) openOutput(ctx context.Context, path string) (io.Writer, *outfile.File, error) {
	if isStdout(path) {
		return a.stdout, nil, nil
	}
	f, err := outfile.Create(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// commitOutputs puts the files in place together (none if one fails) and
// says so.
func (a *app) commitOutputs(files ...*outfile.File) error {
	var real []*outfile.File
	for _, f := range files {
		if f != nil {
			real = append(real, f)
		}
	}
	if err := outfile.CommitAll(real...); err != nil {
		return err
	}
	for _, f := range real {
		a.log.Info("wrote " + f.Path())
	}
	return nil
}

// checkOutputPath fails early, before any work, when an output flag's path
// cannot be written: it is a directory, or its directory is missing.
func checkOutputPath(flagName, path string) error {
	if isStdout(path) {
		return nil
	}
	if _, err := outfile.Resolve(path); err != nil {
		return fmt.Errorf("%s %w", flagName, err)
	}
	return nil
}

// writtenDirectly reports an output that is a device, FIFO or descriptor
// (/dev/null, /dev/stdout), whose name says nothing of the format.
func writtenDirectly(path string) bool {
	t, err := outfile.Resolve(path)
	return err == nil && t.Mode == outfile.Direct
}

// checkClash refuses, as a usage error, an output that is one of the
// inputs or another output.
func checkClash(outputs, inputs []outfile.Use) error {
	if err := outfile.Clash(outputs, inputs); err != nil {
		return usagef("%v: name another output", err)
	}
	return nil
}
