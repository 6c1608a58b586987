package eval

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/blipcuda/blipcuda"
)

// ImageStore supplies image vectors computed before, so that Evaluate need
// not encode those images again: `blipcuda eval --index` fills it from an
// index built by `blipcuda index` with the same model. A store must give
// vectors only for files whose present content they were computed from
// (cmd/blipcuda's compares SHA-256 hashes): an image it does not hold, or
// holds for content the file no longer has, is encoded from its file.
//
// The vectors are used as they are: an embedding or features computed on
// another device or in another precision than the model's, or stored in
// float16, give slightly different scores than the model's own.
type ImageStore interface {
	// ID names the store and how it is used (its location, whether its
	// features are), for the checkpoint's fingerprint: a run with a store
	// never resumes one without, or with another.
	ID() string
	// Has reports whether the store holds vectors of the image file at
	// path (as ImagePath resolves it) that are current with the file, and
	// whether they include its raw features.
	Has(path string) (embedding, features bool)
	// Embedding returns the ITC embedding of an image Has holds.
	Embedding(ctx context.Context, path string) ([]float32, error)
	// Features returns the raw features (NumImageTokens × vision width,
	// as blipcuda.ImageEncoding.Features) of an image Has holds with
	// features.
	//
	// An error from Embedding or Features other than the context's makes
	// Evaluate encode the image from its file instead, with a warning.
	Features(ctx context.Context, path string) ([]float32, error)
}

// imageSet is what the image phase gives: the images kept, in entry order,
// their embeddings, and the features of those it encoded.
type imageSet struct {
	kept      []int             // entry indices, ascending
	emb       [][]float32       // by kept index
	feats     map[int][]float32 // by kept index; the images encoded
	skipped   []Skipped         // with SkipMissing
	fromStore int               // embeddings that came from o.Store
}

// imagePhase gets the ITC embeddings of c's images: from o.Store for those
// it holds, else by encoding the files (whose features are kept for the
// ITM phase).
func imagePhase(ctx context.Context, m *blipcuda.Model, c *Collection, o Options,
	progress func(Phase, int, int), warn func(string)) (*imageSet, error) {
	n := len(c.Entries)
	progress(PhaseImages, 0, n)
	stored := map[int][]float32{}
	var need []int
	for i, e := range c.Entries {
		if emb := storedVector(ctx, m, o.Store, ImagePath(o.ImagesRoot, e.Image), false, warn); emb != nil {
			stored[i] = emb
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		need = append(need, i)
	}
	done := len(stored)
	if done > 0 {
		progress(PhaseImages, done, n)
	}
	enc, skipped, err := encodeImages(ctx, m, c, need, o, func(k int) { done += k; progress(PhaseImages, done, n) }, warn)
	if err != nil {
		return nil, err
	}
	s := &imageSet{feats: map[int][]float32{}, skipped: skipped, fromStore: len(stored)}
	for i := range c.Entries {
		if emb, ok := stored[i]; ok {
			s.kept, s.emb = append(s.kept, i), append(s.emb, emb)
		} else if e, ok := enc[i]; ok {
			s.feats[len(s.kept)] = e.Features
			s.kept, s.emb = append(s.kept, i), append(s.emb, e.Embedding)
		}
	}
	return s, nil
}

// storedVector returns the embedding (or, with features, the features) of
// the image file at path from store, or nil when the store has none or it
// cannot be read (with a warning; the image is then encoded) or ctx is
// done.
func storedVector(ctx context.Context, m *blipcuda.Model, store ImageStore, path string, features bool, warn func(string)) []float32 {
	if store == nil {
		return nil
	}
	hasEmb, hasFeat := store.Has(path)
	if !hasEmb || features && !hasFeat {
		return nil
	}
	cfg := m.Info().Config
	what, want, get := "embedding", cfg.ImageTextHiddenSize, store.Embedding
	if features {
		what, want, get = "features", cfg.NumImageTokens()*cfg.Vision.HiddenSize, store.Features
	}
	v, err := get(ctx, path)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil && len(v) != want {
		err = fmt.Errorf("%d values where the model has %d", len(v), want)
	}
	if err != nil {
		warn(fmt.Sprintf("image %s: its stored %s cannot be used (%v): encoding the image", path, what, err))
		return nil
	}
	return v
}

// encodeImages decodes and encodes the images of c's entries (none when
// entries is empty), o.ImageBatch at a time, decoding in parallel, and
// calls tick with the number of images done after each batch. It returns
// the encodings by entry index and (with o.SkipMissing) the images left
// out.
func encodeImages(ctx context.Context, m *blipcuda.Model, c *Collection, entries []int, o Options,
	tick func(int), warn func(string)) (map[int]blipcuda.ImageEncoding, []Skipped, error) {
	if tick == nil {
		tick = func(int) {}
	}
	out := map[int]blipcuda.ImageEncoding{}
	var skipped []Skipped
	for first := 0; first < len(entries); first += o.ImageBatch {
		idx := entries[first:min(first+o.ImageBatch, len(entries))]
		imgs := make([]*blipcuda.Image, len(idx))
		errs := make([]error, len(idx))
		var wg sync.WaitGroup
		sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
		for k, i := range idx {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				imgs[k], errs[k] = m.LoadImage(ImagePath(o.ImagesRoot, c.Entries[i].Image))
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		var batch []*blipcuda.Image
		var batchIdx []int
		for k, e := range errs {
			i := idx[k]
			if e != nil {
				s := Skipped{Entry: i + 1, Image: c.Entries[i].Image, Err: &ImageError{Source: c.Source, Entry: i + 1,
					Path: ImagePath(o.ImagesRoot, c.Entries[i].Image), Err: e}}
				if !o.SkipMissing {
					return nil, nil, s.Err
				}
				skipped = append(skipped, s)
				warn(fmt.Sprintf("skipping %v", s.Err))
				continue
			}
			batch = append(batch, imgs[k])
			batchIdx = append(batchIdx, i)
		}
		if len(batch) > 0 {
			enc, err := m.EncodeImages(ctx, batch, true)
			if err != nil {
				return nil, nil, err
			}
			for k, e := range enc {
				out[batchIdx[k]] = e
			}
		}
		tick(len(idx))
	}
	return out, skipped, nil
}
