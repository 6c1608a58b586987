package outfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Use is a path with the part it plays, for messages: {"--plot", "x.png"},
// {"image", "photos/a.jpg"}, {"the texts file", "captions.txt"}.
type Use struct {
	Role string
	Path string
}

func (u Use) String() string { return u.Role + " " + u.Path }

// Clash returns an error naming the first output that is the same file as
// an input or as an earlier output, so that a command refuses it before it
// does any work: writing it would destroy the input, or one output would
// replace the other. Paths are compared after following symbolic links,
// and existing files by identity (a hard link or another spelling of the
// same file clashes too). Outputs that are written directly (a device such
// as /dev/null, a FIFO, /dev/stdout) clash with nothing: writing them twice
// destroys nothing. Empty paths and "-" (stdout) are skipped.
func Clash(outputs, inputs []Use) error {
	type seen struct {
		use Use
		id  identity
	}
	var done []seen
	for _, in := range inputs {
		if id, ok := identify(in.Path, false); ok {
			done = append(done, seen{in, id})
		}
	}
	for _, out := range outputs {
		id, ok := identify(out.Path, true)
		if !ok {
			continue
		}
		for _, s := range done {
			if id.same(s.id) {
				return fmt.Errorf("%s is the same file as %s", out, s.use)
			}
		}
		done = append(done, seen{out, id})
	}
	return nil
}

// identity is what tells two paths apart: the absolute resolved path, and
// the file's identity when it exists.
type identity struct {
	abs  string
	info fs.FileInfo
}

func (a identity) same(b identity) bool {
	if a.info != nil && b.info != nil {
		return os.SameFile(a.info, b.info)
	}
	return a.abs == b.abs
}

// identify resolves path; ok is false for paths that cannot clash.
func identify(path string, output bool) (identity, bool) {
	if path == "" || path == "-" {
		return identity{}, false
	}
	resolved := path
	if t, err := Resolve(path); err == nil {
		if output && t.Mode == Direct {
			return identity{}, false
		}
		resolved = t.Resolved
	}
	dir, base := filepath.Split(resolved)
	if dir == "" {
		dir = "."
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	abs, err := filepath.Abs(filepath.Join(dir, base))
	if err != nil {
		abs = filepath.Clean(resolved)
	}
	id := identity{abs: abs}
	if st, err := os.Stat(abs); err == nil {
		id.info = st
	}
	return id, true
}
