package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/image/draw"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/imageproc"
	"github.com/blipcuda/blipcuda/internal/bounded"
	"github.com/blipcuda/blipcuda/internal/outfile"
	"github.com/blipcuda/blipcuda/internal/progress"
	"github.com/blipcuda/blipcuda/tokenizer"
)

// imageExts are the file extensions taken from directories. Files named on
// the command line are decoded whatever their extension.
var imageExts = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}

func isImageName(name string) bool {
	return contains(imageExts, strings.ToLower(filepath.Ext(name)))
}

// pathError strips the operation and path from an *fs.PathError, for
// messages that name the path themselves.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// collectImages expands the image arguments: files as given, directories
// to the image files they hold (sorted; hidden files skipped; with
// recursive, their subdirectories too). Only regular files are images: an
// argument that is a FIFO or a device is refused, and such an entry of a
// directory is skipped with a note passed to skip.
func collectImages(args []string, recursive bool, skip func(note string)) ([]string, error) {
	var out []string
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", arg, pathError(err))
		}
		if !st.IsDir() {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("image %s is %s, not a regular file", arg, bounded.Kind(st.Mode()))
			}
			out = append(out, arg)
			continue
		}
		var found []string
		subdirs := 0
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("image directory %s: %w", p, pathError(err))
			}
			if p == arg {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				subdirs++
				if !recursive {
					return filepath.SkipDir
				}
				return nil
			}
			if isImageName(d.Name()) {
				// Stat follows a symbolic link to a regular file.
				if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
					if skip != nil {
						why := "unreadable"
						if err == nil {
							why = bounded.Kind(st.Mode())
						}
						skip(fmt.Sprintf("skipping %s: %s, not a regular file", p, why))
					}
					return nil
				}
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			hint := ""
			if subdirs > 0 && !recursive {
				hint = "; it has subdirectories: add --recursive to look in them"
			}
			return nil, fmt.Errorf("image directory %s holds no images (%s)%s", arg, strings.Join(imageExts, ", "), hint)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// textFlags are the flags that give texts.
type textFlags struct {
	texts []string // --text
	files []string // --texts
}

func (t *textFlags) register(fs *flagSet) {
	fs.strs(&t.texts, "text", "t", "TEXT", "a text (repeatable)")
	fs.strs(&t.files, "texts", "", "FILE",
		"a file of texts, one per line; blank lines are skipped; - reads stdin (repeatable)")
}

// maxTextsFile bounds a texts file.
const maxTextsFile = 256 << 20

// collect returns the texts: the --text values first, then the lines of
// each --texts file. A --text the model would refuse is a usage error; a
// bad line of a file is an error naming the file and line.
func (t *textFlags) collect(stdin io.Reader, protocol string) ([]string, error) {
	var out []string
	for i, s := range t.texts {
		if err := checkText(s, protocol); err != nil {
			return nil, usagef("--text #%d (%s) %v", i+1, bounded.Quote(s), err)
		}
		out = append(out, s)
	}
	stdinUsed := false
	for _, name := range t.files {
		var r io.Reader
		display := name
		if name == "-" {
			if stdinUsed {
				return nil, usagef("--texts - (stdin) given twice")
			}
			stdinUsed = true
			r, display = stdin, "stdin"
		} else {
			f, err := os.Open(name)
			if err != nil {
				return nil, fmt.Errorf("texts file %s: %w", name, pathError(err))
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil && st.IsDir() {
				return nil, fmt.Errorf("texts file %s is a directory", name)
			}
			r = f
		}
		data, err := bounded.ReadAll(display, r, maxTextsFile)
		if errors.Is(err, bounded.ErrTooLarge) {
			return nil, fmt.Errorf("texts file %s is larger than %d MiB", display, maxTextsFile>>20)
		}
		if err != nil {
			return nil, fmt.Errorf("texts file %s: %w", display, pathError(err))
		}
		data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), maxTextsFile)
		for line := 1; sc.Scan(); line++ {
			s := strings.TrimSuffix(sc.Text(), "\r")
			if strings.TrimSpace(s) == "" {
				continue
			}
			if err := checkText(s, protocol); err != nil {
				return nil, fmt.Errorf("texts file %s, line %d (%s) %w", display, line, bounded.Quote(s), err)
			}
			out = append(out, s)
			n++
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("texts file %s: %w", display, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("texts file %s has no texts: it is empty or every line is blank", display)
		}
	}
	return out, nil
}

// checkText refuses what the library would refuse, before the model is
// loaded, so that the message can say where the text came from.
func checkText(s, protocol string) error {
	switch {
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.TrimSpace(s) == "":
		return errors.New("is empty or whitespace only")
	case protocol == "blip" && tokenizer.PreCaption(s, 1<<20) == "":
		return errors.New("has no words left after BLIP's caption cleaning (punctuation removed); " +
			"use --protocol hf to keep it as is")
	}
	return nil
}

// decoded is one image read for the model, with a thumbnail for the plot.
type decoded struct {
	name  string
	img   *blipcuda.Image
	thumb image.Image // nil unless thumbnails were asked for
	err   error
}

// forImages decodes paths imageChunk at a time and calls fn with each
// chunk's images, which bounds the memory the preprocessed images take. An
// image that cannot be read or decoded is an error, or with skipBad a
// warning, and it is left out; if every image is left out, that is an
// error. run shows the progress over paths.
func (a *app) forImages(ctx context.Context, m *blipcuda.Model, paths []string, thumbs, skipBad bool, run *imageRun,
	fn func([]decoded) error) error {
	stop := run.start(a, len(paths))
	defer stop()
	skipped := 0
	for first := 0; first < len(paths); first += imageChunk {
		var good []decoded
		for _, d := range decodeImages(ctx, m, paths[first:min(first+imageChunk, len(paths))], thumbs) {
			switch {
			case d.err == nil:
				good = append(good, d)
			case ctx.Err() != nil:
				return ctx.Err()
			case skipBad:
				a.log.Warn("skipping " + errorText(d.err))
				skipped++
			default:
				return fmt.Errorf("%w (add --skip-bad to skip images that cannot be decoded)", d.err)
			}
		}
		if run != nil {
			run.base = first
		}
		if len(good) > 0 {
			if err := fn(good); err != nil {
				return err
			}
		}
		if run != nil {
			run.counter.Set(min(first+imageChunk, len(paths)))
		}
		a.log.Debug("images done", "done", min(first+imageChunk, len(paths)), "of", len(paths))
	}
	if skipped > 0 && skipped == len(paths) {
		return fmt.Errorf("none of the %d images could be read", skipped)
	}
	return nil
}

// imageRun shows the progress of a run over images: a counter on stderr,
// moved by the library's progress callback as each image is done.
type imageRun struct {
	counter *progress.Counter
	base    int // images before the chunk being scored
}

// option is the library option that reports progress to r.
func (r *imageRun) option() blipcuda.Option {
	return blipcuda.WithProgress(func(p blipcuda.Progress) { r.counter.Set(r.base + p.Done) })
}

// start shows the counter for n images (nothing with --quiet) and routes
// log messages around its bar; the function returned ends it. A nil
// *imageRun shows nothing.
func (r *imageRun) start(a *app, n int) func() {
	if r == nil {
		return func() {}
	}
	r.counter = progress.Auto(a.stderrFile, a.quiet, "image", n)
	if r.counter == nil {
		return func() {}
	}
	log := a.log
	a.log = newLogger(r.counter.Writer(a.stderr), a.logLevel())
	return func() {
		r.counter.Finish()
		a.log = log
	}
}

// logLevel is the level the flags chose.
func (a *app) logLevel() slog.Level {
	switch {
	case a.verbose:
		return slog.LevelDebug
	case a.quiet:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// checkImages reads the header (and, for PNG and JPEG, the end) of every
// image before the model loads, so that a bad file costs no time: it is
// an error naming the image, or with skipBad a warning and the image is
// left out. It returns the images kept and their sizes, for --plot.
func (a *app) checkImages(paths []string, skipBad bool) ([]string, []image.Point, error) {
	kept := paths[:0:0]
	var sizes []image.Point
	for _, p := range paths {
		h, err := imageproc.CheckFile(p, 0)
		if err != nil {
			err = imageError(p, err)
			if !skipBad {
				return nil, nil, fmt.Errorf("%w (add --skip-bad to skip images that cannot be decoded)", err)
			}
			a.log.Warn("skipping " + errorText(err))
			continue
		}
		kept = append(kept, p)
		sizes = append(sizes, image.Pt(h.Width, h.Height))
	}
	if len(kept) == 0 {
		return nil, nil, fmt.Errorf("none of the %d images could be read", len(paths))
	}
	return kept, sizes, nil
}

// inputUses lists the files a command reads, for outfile.Clash: the
// images, the texts files and, for a checkpoint directory, its files.
func inputUses(images, textFiles []string, modelName string) []outfile.Use {
	var uses []outfile.Use
	for _, p := range images {
		uses = append(uses, outfile.Use{Role: "image", Path: p})
	}
	for _, p := range textFiles {
		uses = append(uses, outfile.Use{Role: "texts file", Path: p})
	}
	if st, err := os.Stat(modelName); err == nil && st.IsDir() {
		ents, _ := os.ReadDir(modelName)
		for _, e := range ents {
			if e.Type().IsRegular() {
				uses = append(uses, outfile.Use{Role: "model file", Path: filepath.Join(modelName, e.Name())})
			}
		}
	}
	return uses
}

// imageChunk is how many images are decoded and encoded at once.
const imageChunk = 32

// thumbSide is the largest side of the thumbnails kept for --plot.
const thumbSide = 256

// decodeImages reads and preprocesses paths in parallel, keeping the
// order. With thumbs, a small copy of each image is kept for the plot.
func decodeImages(ctx context.Context, m *blipcuda.Model, paths []string, thumbs bool) []decoded {
	out := make([]decoded, len(paths))
	workers := min(runtime.GOMAXPROCS(0), 8, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = decodeImage(m, paths[i], thumbs)
			}
		}()
	}
	for i := range paths {
		if ctx.Err() != nil {
			out[i] = decoded{name: paths[i], err: ctx.Err()}
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func decodeImage(m *blipcuda.Model, path string, thumbs bool) decoded {
	d := decoded{name: path}
	rgb, release, err := imageproc.DecodeFileHeld(path, 0)
	defer release() // until resized and thumbnailed
	if err != nil {
		d.err = imageError(path, err)
		return d
	}
	if d.img, d.err = m.ImageFromGo(path, rgb); d.err != nil {
		return d
	}
	if thumbs {
		d.thumb = thumbnail(rgb)
	}
	return d
}

// imageErr is a decoding error reworded to start "image PATH: ".
type imageErr struct {
	msg string
	err error
}

func (e *imageErr) Error() string { return e.msg }
func (e *imageErr) Unwrap() error { return e.err }

// imageError rewords the decoder's "imageproc: PATH: why" (or "imageproc:
// open PATH: why") as "image PATH: why".
func imageError(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "imageproc: ")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = path + ": " + pe.Err.Error()
	}
	return &imageErr{msg: "image " + msg, err: err}
}

// thumbnail scales img down so that its larger side is at most thumbSide.
func thumbnail(img image.Image) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= thumbSide && h <= thumbSide {
		return img
	}
	if w >= h {
		h, w = max(1, h*thumbSide/w), thumbSide
	} else {
		w, h = max(1, w*thumbSide/h), thumbSide
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}
