package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/blipcuda/blipcuda/eval"
	"github.com/blipcuda/blipcuda/index"
	"github.com/blipcuda/blipcuda/internal/progress"
)

// indexStore is eval.ImageStore over the index of eval --index: the
// records of the annotation file's images whose files hold the content
// they were indexed from. An image is matched by the SHA-256 of its file:
// the record of its path when that has the file's hash, else any record
// with that hash (the same image indexed under another path: a moved or
// copied dataset); a file whose hash matches no record (not indexed, or
// changed since) is encoded by eval from the file.
type indexStore struct {
	ix      *index.Index
	records map[string]index.Entry // by image path, as eval resolves it

	images                       int // the annotation file's
	absent, changed, moved, read int
	firstAbsent, firstChanged    string
	firstMoved, firstMovedTo     string
}

// newIndexStore hashes the images of col under root (in parallel, with a
// progress line) and finds their records in ix (one pass over its
// records).
func (a *app) newIndexStore(ctx context.Context, ix *index.Index, col *eval.Collection, root string) (*indexStore, error) {
	s := &indexStore{ix: ix, records: map[string]index.Entry{}, images: len(col.Entries)}
	paths := make([]string, len(col.Entries))
	keys := make([]string, len(col.Entries))
	for i, e := range col.Entries {
		paths[i] = eval.ImagePath(root, e.Image)
		key, err := ix.Key(paths[i])
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", paths[i], err)
		}
		keys[i] = key
	}
	sums := hashFiles(ctx, paths, progress.Auto(a.stderrFile, a.quiet, "hashed image", len(paths)))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	byKey, bySum := map[string]*index.Entry{}, map[string]*index.Entry{}
	for i := range paths {
		byKey[keys[i]] = nil
		if sums[i] != "" {
			bySum[sums[i]] = nil
		}
	}
	err := ix.Entries(ctx, func(e index.Entry) error {
		if r, ok := byKey[e.Path]; ok && r == nil {
			byKey[e.Path] = &e
		}
		if r, ok := bySum[e.SHA256]; ok && r == nil {
			bySum[e.SHA256] = &e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, p := range paths {
		rec := byKey[keys[i]]
		switch {
		case sums[i] == "":
			// Unreadable: eval reports it (or skips it, --skip-missing).
			continue
		case rec != nil && rec.SHA256 == sums[i]:
			s.records[p] = *rec
			s.read++
		case bySum[sums[i]] != nil:
			s.records[p] = *bySum[sums[i]]
			s.read++
			if s.moved++; s.moved == 1 {
				s.firstMoved, s.firstMovedTo = p, bySum[sums[i]].Path
			}
		case rec != nil:
			if s.changed++; s.changed == 1 {
				s.firstChanged = p
			}
		default:
			if s.absent++; s.absent == 1 {
				s.firstAbsent = p
			}
		}
	}
	return s, nil
}

// hashFiles returns the hex SHA-256 of each file ("" for one that cannot
// be read), reading min(GOMAXPROCS, 8) at a time.
func hashFiles(ctx context.Context, paths []string, prog *progress.Counter) []string {
	defer prog.Finish()
	sums := make([]string, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 8, max(1, len(paths))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() == nil {
					sums[i], _ = hashFile(paths[i])
				}
				prog.Add(1)
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return sums
}

// ID is the index's absolute path and whether its features are used.
func (s *indexStore) ID() string {
	return fmt.Sprintf("blipcuda index %s, features %v", absPath(s.ix.Dir()), s.ix.HasFeatures())
}

// Has reports whether the image at path has a record with its content.
func (s *indexStore) Has(path string) (embedding, features bool) {
	_, ok := s.records[path]
	return ok, ok && s.ix.HasFeatures()
}

// Embedding reads the image's float32 embedding.
func (s *indexStore) Embedding(ctx context.Context, path string) ([]float32, error) {
	e, ok := s.records[path]
	if !ok {
		return nil, fmt.Errorf("not in index %s", s.ix.Dir())
	}
	return s.ix.Embedding(e)
}

// Features reads the image's float16 features, as float32.
func (s *indexStore) Features(ctx context.Context, path string) ([]float32, error) {
	e, ok := s.records[path]
	if !ok || !s.ix.HasFeatures() {
		return nil, fmt.Errorf("no features in index %s", s.ix.Dir())
	}
	return s.ix.Features(e)
}

// report logs what the store will give, before the run.
func (s *indexStore) report(a *app) {
	dir := s.ix.Dir()
	if s.moved > 0 {
		a.log.Info(fmt.Sprintf("index %s: %d image(s) found under another path by their content (SHA-256), e.g. %s as %s",
			dir, s.moved, s.firstMoved, s.firstMovedTo))
	}
	if n := s.absent + s.changed; n > 0 {
		msg := fmt.Sprintf("index %s: %d of %d images will be encoded from their files:", dir, n, s.images)
		if s.absent > 0 {
			msg += fmt.Sprintf(" %d not in the index (e.g. %s)", s.absent, s.firstAbsent)
		}
		if s.changed > 0 {
			if s.absent > 0 {
				msg += ","
			}
			msg += fmt.Sprintf(" %d changed since they were indexed (e.g. %s; 'blipcuda index' updates the index)", s.changed, s.firstChanged)
		}
		if s.read == 0 {
			msg += fmt.Sprintf("; none of the images is in the index: is it the index of these files? (it holds %d image(s), under paths relative to %s)",
				s.ix.Len(), filepath.Dir(absPath(dir)))
		}
		a.log.Warn(msg)
	}
	if s.ix.HasFeatures() {
		a.log.Info(fmt.Sprintf("index %s: reusing the ITC embeddings and float16 features of %d of %d images", dir, s.read, s.images))
	} else {
		a.log.Info(fmt.Sprintf("index %s: reusing the ITC embeddings of %d of %d images; it stores no features, so each image "+
			"is encoded again for the ITM re-rank", dir, s.read, s.images))
	}
}

// absPath is path made absolute, or path when that fails.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
