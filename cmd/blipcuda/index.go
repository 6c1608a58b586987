package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/index"
	"github.com/blipcuda/blipcuda/internal/progress"
)

var indexCommand = &command{
	name:     "index",
	synopsis: "[flags] IMAGE|DIR... [-o NAME.blipidx]",
	summary:  "build or update a search index of images (for search)",
	help: `Encodes every image under the given files and directories (recursively; JPEG,
PNG, GIF, BMP, WebP; hidden files skipped; symbolic links followed only when
they stay inside the directory) once, and stores its ITC embedding, and with
--features its raw features in float16, in an index directory for
'blipcuda search'. Paths are stored relative to the directory holding the
index when the images lie below it.

Running it again is incremental: new files are added, changed ones (size or
modification time, then content hash) re-encoded, and the rest left alone;
--prune drops the records of files that no longer exist. Each batch of
images is one transaction: a run killed at any point loses at most the batch
in flight, and the next run resumes. The model is recorded in the index: an
existing index is updated with its own model unless --model is given, and
another model is refused. 'blipcuda index merge SHARD... -o NAME.blipidx'
combines indexes (the shards of a distributed run) into one; see its --help.

Images that cannot be read are reported, counted and skipped; --strict makes
them fatal. Only one run may write an index at a time: a second waits --wait
for the lock, then fails. 'blipcuda search' works on the index meanwhile.`,
	env: append(append([]string{}, hubEnv...), "BLIPCUDA_MODEL"),
	run: runIndex,
}

// defaultIndex is the index used when --index is not given.
const defaultIndex = "blipcuda" + index.Extension

func runIndex(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 && args[0] == "merge" {
		return runIndexMerge(ctx, a, args[1:])
	}
	var (
		mf                      modelFlags
		out                     string
		features, prune, strict bool
		batch                   int
		wait                    time.Duration
	)
	flags := newFlagSet("index")
	mf.register(flags)
	modelFromIndex(flags, "")
	flags.str(&out, "output", "o", defaultIndex, "NAME.blipidx", "the index directory to create or update")
	flags.Var(flags.Lookup("output").Value, "index", "same as --output")
	flags.boolean(&features, "features", "", "also store the raw image features (float16), so that search re-ranks without re-encoding images: "+
		"0.9 MB per image for base models, 1.2 MB for large")
	flags.boolean(&prune, "prune", "", "drop the records of indexed files that no longer exist")
	flags.boolean(&strict, "strict", "", "stop at the first image that cannot be read (the batches before it stay indexed)")
	flags.integer(&batch, "batch", "", 64, "N", "images per transaction: a crash loses at most this many")
	flags.DurationVar(&wait, "wait", time.Second, "how long to wait for another run's lock on the index")
	flags.add("wait", "", "DURATION")
	pos, err := a.parse(flags, args)
	if err != nil {
		return err
	}
	if err := mf.validate(); err != nil {
		return err
	}
	if batch <= 0 {
		return usagef("--batch %d: want a positive number", batch)
	}
	if len(pos) == 0 && !prune {
		return usagef("nothing to index: name image files or directories (or give --prune alone to drop vanished files)")
	}
	modelGiven := flagGiven(flags, "model")
	paths, err := collectImages(pos, walkOptions{recursive: true, confineLinks: true, allowEmpty: true, skip: func(note string) { a.log.Warn(note) }})
	if err != nil {
		return err
	}

	_, statErr := os.Stat(out)
	modelSet := false
	ix, err := index.Open(ctx, out, index.Options{Write: true, Create: true, Features: features, Wait: wait})
	if err != nil {
		return err
	}
	defer ix.Close()
	if fresh := errors.Is(statErr, fs.ErrNotExist); fresh {
		a.log.Info("creating index "+out, "features", features)
		// Until the model is recorded, a failure leaves nothing behind.
		defer func() {
			if fresh {
				ix.Close()
				os.RemoveAll(out)
			}
		}()
		defer func() { fresh = fresh && !modelSet }()
	}
	if features && !ix.HasFeatures() {
		return fmt.Errorf("index %s was built without --features, and its records cannot gain them: build a new index with --features", out)
	}
	if recorded, ok := ix.Model(); ok && !modelGiven {
		mf.model = recorded.Name
	}
	m, err := a.loadModel(ctx, &mf)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := ix.SetModel(ctx, index.ModelOf(m, mf.model)); err != nil {
		return fmt.Errorf("index %s: %w", out, err)
	}
	modelSet = true

	st := &indexStats{}
	if err := a.indexImages(ctx, m, ix, paths, batch, strict, st); err != nil {
		return err
	}
	if err := a.pruneIndex(ctx, ix, prune, st); err != nil {
		return err
	}
	s := ix.Stats()
	a.log.Info(fmt.Sprintf("index %s: %d images (%d added, %d re-encoded, %d unchanged, %d pruned, %d unreadable and skipped), %s on disk",
		out, s.Images, st.added, st.changed, st.unchanged, st.pruned, st.bad, humanBytes(s.Bytes)))
	if st.bad > 0 && st.bad == len(paths) {
		return fmt.Errorf("none of the %d images could be read", st.bad)
	}
	return nil
}

// flagGiven reports whether a flag was set on the command line.
func flagGiven(flags *flagSet, name string) bool {
	given := false
	flags.Visit(func(f *flag.Flag) {
		if f.Name == name || flags.short[name] == f.Name {
			given = true
		}
	})
	return given
}

type indexStats struct {
	added, changed, unchanged, pruned, bad int
}

// pending is an image to encode, with its stat and, for a known path, its
// record.
type pending struct {
	path, key string
	info      os.FileInfo
	old       *index.Entry
}

// indexImages brings the index up to date with paths, one transaction per
// batch of images to encode.
func (a *app) indexImages(ctx context.Context, m *blipcuda.Model, ix *index.Index, paths []string, batch int, strict bool, st *indexStats) error {
	var todo []pending
	seen := map[string]bool{}
	for _, p := range paths {
		key, err := ix.Key(p)
		if err != nil {
			return fmt.Errorf("image %s: %w", p, err)
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		info, err := os.Stat(p)
		if err != nil {
			if strict {
				return fmt.Errorf("image %s: %w", p, pathError(err))
			}
			a.log.Warn(fmt.Sprintf("skipping image %s: %v", p, pathError(err)))
			st.bad++
			continue
		}
		e, ok, err := ix.Lookup(key)
		if err != nil {
			return err
		}
		if ok && e.Size == info.Size() && e.ModTime.Equal(info.ModTime()) {
			st.unchanged++
			continue
		}
		pd := pending{path: p, key: key, info: info}
		if ok {
			pd.old = &e
		}
		todo = append(todo, pd)
	}
	if len(todo) == 0 {
		return nil
	}
	prog := progress.Auto(a.stderrFile, a.quiet, "image", len(todo))
	defer prog.Finish()
	if prog != nil {
		// Warnings while the bar is drawn: erase it, write, redraw.
		log := a.log
		level := slog.LevelInfo
		if a.verbose {
			level = slog.LevelDebug
		}
		a.log = newLogger(prog.Writer(a.stderr), level)
		defer func() { a.log = log }()
	}
	features := ix.HasFeatures()
	for first := 0; first < len(todo); first += batch {
		chunk := todo[first:min(first+batch, len(todo))]
		var items []index.Item
		var touched []index.Entry
		var encode []pending
		var hashes []string
		for _, pd := range chunk {
			sum, err := hashFile(pd.path)
			if err != nil {
				if strict || ctx.Err() != nil {
					return fmt.Errorf("image %s: %w", pd.path, pathError(err))
				}
				a.log.Warn(fmt.Sprintf("skipping image %s: %v", pd.path, pathError(err)))
				st.bad++
				continue
			}
			e := index.Entry{Path: pd.key, Size: pd.info.Size(), ModTime: pd.info.ModTime().UTC(), SHA256: sum}
			if pd.old != nil && pd.old.SHA256 == sum {
				touched = append(touched, e)
				continue
			}
			encode = append(encode, pd)
			hashes = append(hashes, sum)
		}
		names := make([]string, len(encode))
		for i, pd := range encode {
			names[i] = pd.path
		}
		var good []decoded
		var goodIdx []int
		for i, d := range decodeImages(ctx, m, names, false) {
			switch {
			case d.err == nil:
				good = append(good, d)
				goodIdx = append(goodIdx, i)
			case ctx.Err() != nil:
				return ctx.Err()
			case strict:
				return d.err
			default:
				a.log.Warn("skipping " + errorText(d.err))
				st.bad++
			}
		}
		if len(good) > 0 {
			ims := make([]*blipcuda.Image, len(good))
			for i, d := range good {
				ims[i] = d.img
			}
			enc, err := m.EncodeImages(ctx, ims, features)
			if err != nil {
				return err
			}
			for i, e := range enc {
				pd := encode[goodIdx[i]]
				items = append(items, index.Item{
					Entry:     index.Entry{Path: pd.key, Size: pd.info.Size(), ModTime: pd.info.ModTime().UTC(), SHA256: hashes[goodIdx[i]]},
					Embedding: e.Embedding, Features: e.Features})
				if pd.old != nil {
					st.changed++
				} else {
					st.added++
				}
			}
			if err := ix.Add(ctx, items); err != nil {
				return err
			}
		}
		if len(touched) > 0 {
			if err := ix.Touch(ctx, touched); err != nil {
				return err
			}
			st.unchanged += len(touched)
		}
		prog.Add(len(chunk))
	}
	return nil
}

// pruneIndex drops (with prune) or counts the records whose files are gone.
func (a *app) pruneIndex(ctx context.Context, ix *index.Index, prune bool, st *indexStats) error {
	var gone []string
	err := ix.Entries(ctx, func(e index.Entry) error {
		if _, err := os.Lstat(ix.Resolve(e.Path)); errors.Is(err, fs.ErrNotExist) {
			gone = append(gone, e.Path)
		}
		return nil
	})
	if err != nil || len(gone) == 0 {
		return err
	}
	if !prune {
		a.log.Info(fmt.Sprintf("%d indexed images no longer exist (e.g. %s): --prune drops them", len(gone), gone[0]))
		return nil
	}
	n, err := ix.Remove(ctx, gone)
	st.pruned = n
	return err
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// within reports whether path lies inside dir (both absolute and clean).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
