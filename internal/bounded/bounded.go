// Package bounded reads the small files blipcuda trusts least (configs,
// vocabularies, Hub refs and tokens) with limits decided before anything is
// allocated: only regular files are opened (a FIFO or a device never blocks
// the process), a file is read only up to a cap that a real file of its kind
// stays far below, and inputs are quoted in error messages at a bounded
// length.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"unicode/utf8"
)

var (
	// ErrNotRegular reports a path that is a FIFO, a device, a socket or a
	// directory where a regular file is needed.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge reports a file larger than the cap for its kind.
	ErrTooLarge = errors.New("file is too large")
)

// Caps on the files read whole. Each is far above what the real file of
// its kind needs (the figures are those of Salesforce/blip-itm-large-coco and
// of the largest tokenizers on the Hugging Face Hub) and far below what
// would hurt.
const (
	ConfigLimit    = 1 << 20  // config.json (3 KB real), preprocessor_config.json (0.5 KB)
	TokenizerLimit = 64 << 20 // tokenizer.json (0.7 MB for BERT; multilingual ones reach ~20 MB)
	VocabLimit     = 16 << 20 // vocab.txt (0.23 MB)
	SmallLimit     = 4 << 10  // a Hub ref (a 40-character commit) or token file
)

// Open opens path for reading if it is a regular file (symbolic links are
// followed) and refuses anything else with ErrNotRegular, naming the kind.
// A special file is refused from its metadata, without being opened (opening
// some devices has effects); a file swapped for one between that check and
// the open is opened non-blocking, so a FIFO cannot block, and refused.
func Open(path string) (*os.File, fs.FileInfo, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, nil, err
	} else if !st.Mode().IsRegular() {
		return nil, nil, notRegular(path, st.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, st.Mode())
	}
	return f, st, nil
}

func notRegular(path string, m fs.FileMode) error {
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, Kind(m))}
}

// Kind names the type of file mode m: "a directory", "a FIFO", ...
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

// ReadFile reads the regular file path whole if it holds at most limit
// bytes; a larger one is refused with ErrTooLarge before its contents are
// read. The size is checked again while reading, so a file that grows
// meanwhile cannot make it allocate more than limit+1 bytes.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, st, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, tooLarge(path, st.Size(), limit)
	}
	return readAll(path, f, st.Size(), limit)
}

// ReadAll reads r to its end, refusing (ErrTooLarge, naming name) more than
// limit bytes.
func ReadAll(name string, r io.Reader, limit int64) ([]byte, error) {
	return readAll(name, r, 512, limit)
}

func readAll(name string, r io.Reader, hint, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(hint, limit)+1)
	for {
		if int64(len(buf)) > limit {
			return nil, tooLarge(name, -1, limit)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(int64(cap(buf)), limit+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return nil, tooLarge(name, -1, limit)
			}
			return buf, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
	}
}

func tooLarge(name string, size, limit int64) error {
	if size < 0 {
		return &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)}
	}
	return &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: %d bytes, more than the %d a real one needs", ErrTooLarge, size, limit)}
}

// QuoteLen is the most characters of an input Quote shows.
const QuoteLen = 80

// Quote returns s as a Go-quoted string of at most QuoteLen characters of
// s, with "…" after the quote when s was cut, for error messages that show
// what was read: a 1 MB bad line gives a short message.
func Quote(s string) string {
	if utf8.RuneCountInString(s) <= QuoteLen {
		return strconv.Quote(s)
	}
	n, i := 0, 0
	for i = range s {
		if n == QuoteLen {
			break
		}
		n++
	}
	return strconv.Quote(s[:i]) + "…"
}
