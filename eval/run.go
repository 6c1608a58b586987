package eval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blipcuda/blipcuda"
)

// Phase names a stage of the evaluation, for progress reports.
type Phase string

// The phases, in the order they run.
const (
	// PhaseImages decodes the images and runs the image encoder (ITC
	// embeddings and the features the ITM passes need).
	PhaseImages Phase = "images"
	// PhaseTexts runs the text encoder (ITC embeddings).
	PhaseTexts Phase = "texts"
	// PhaseITC finds each image's and each text's top k by ITC.
	PhaseITC Phase = "ITC top-k"
	// PhaseITM scores the top-k pairs with the ITM head, image by image.
	PhaseITM Phase = "ITM re-rank"
)

// Options configure Evaluate.
type Options struct {
	// ImagesRoot is the directory the annotation file's image paths are
	// relative to.
	ImagesRoot string
	// K is BLIP's k_test: the candidates re-ranked per row (256 for COCO,
	// 128 for Flickr30k in BLIP's configs). It is clamped to the number of
	// texts (image→text) and of images (text→image).
	K int
	// SkipMissing leaves out images that are missing or cannot be decoded,
	// with their captions, instead of failing.
	SkipMissing bool
	// Checkpoint, if not empty, is a file where progress is logged so that
	// an interrupted evaluation resumes where it stopped.
	Checkpoint string
	// Progress, if not nil, is called when a phase starts (done 0) and as
	// its work advances: done of total units (images, texts, rows, or
	// image-text pairs for PhaseITM).
	Progress func(p Phase, done, total int)
	// Warn, if not nil, receives warnings (images skipped, a checkpoint
	// replaced).
	Warn func(msg string)
	// ImageBatch is how many images are decoded and encoded at once
	// (default 32).
	ImageBatch int
	// Store, if not nil, supplies vectors computed before (`blipcuda eval
	// --index`): the images it holds are not encoded for the ITC pass, and
	// their ITM re-rank uses its features when it has them, else encodes
	// them again when their turn comes, ImageBatch at a time (so the
	// features of the whole collection are never held at once).
	Store ImageStore
}

// textChunk is how many texts are encoded between progress reports.
const textChunk = 1024

// Skipped is an image left out by SkipMissing.
type Skipped struct {
	Entry int // 1-based, as in the file
	Image string
	Err   error
}

// Result is an evaluation's outcome.
type Result struct {
	Recall
	// Collection is what was evaluated (without skipped images).
	Collection *Collection
	// K is the k asked for; KI2T and KT2I what was used after clamping.
	K, KI2T, KT2I int
	// I2T has a row per image over the texts, T2I a row per text over the
	// images: BLIP's score matrices, top k cells only.
	I2T, T2I []Row
	// Skipped lists the images left out by SkipMissing.
	Skipped []Skipped
	// Truncated is the number of texts cut to the protocol's length.
	Truncated int
	// Pairs is the number of distinct image-text pairs scored by ITM.
	Pairs int
	// Resumed is the number of images whose ITM scores came from the
	// checkpoint; ResumedEmbeddings reports that the ITC embeddings did.
	Resumed           int
	ResumedEmbeddings bool
	// FromStore is the number of images whose ITC embeddings came from
	// Options.Store, FeaturesFromStore the number whose ITM re-rank used
	// its features. (In a resumed run, the images the checkpoint covers
	// are counted by what the store holds now.)
	FromStore, FeaturesFromStore int
}

// ErrMissingImage reports an image that is missing or cannot be decoded
// (an ImageError).
var ErrMissingImage = errors.New("image missing or unreadable")

// ImageError is an image of an annotation file that is missing or cannot
// be decoded. It matches ErrMissingImage and wraps the cause.
type ImageError struct {
	Source string // the annotation file
	Entry  int    // 1-based
	Path   string // the file looked for
	Err    error
}

func (e *ImageError) Error() string {
	why := e.Err.Error()
	// The library's and the decoder's messages name the path again.
	for _, prefix := range []string{"blipcuda: ", "image " + e.Path + ": ", "imageproc: ", e.Path + ": ", "open " + e.Path + ": "} {
		why = strings.TrimPrefix(why, prefix)
	}
	return fmt.Sprintf("%s, entry %d: image %s: %s", e.Source, e.Entry, e.Path, why)
}

// Unwrap returns ErrMissingImage and the cause.
func (e *ImageError) Unwrap() []error { return []error{ErrMissingImage, e.Err} }

// CheckImages reports the entries whose image files do not exist (or are
// directories), before any work: a cheap check of the whole collection.
func CheckImages(c *Collection, root string) []Skipped {
	var out []Skipped
	for i, e := range c.Entries {
		p := ImagePath(root, e.Image)
		st, err := os.Stat(p)
		switch {
		case err != nil:
			err = unwrapPath(err)
		case st.IsDir():
			err = errors.New("is a directory")
		}
		if err != nil {
			out = append(out, Skipped{Entry: i + 1, Image: e.Image, Err: &ImageError{Source: c.Source, Entry: i + 1, Path: p, Err: err}})
		}
	}
	return out
}

// Evaluate runs BLIP's retrieval evaluation of c with m.
func Evaluate(ctx context.Context, m *blipcuda.Model, c *Collection, o Options) (_ *Result, err error) {
	if o.K <= 0 {
		return nil, fmt.Errorf("eval: k must be positive, not %d", o.K)
	}
	if len(c.Entries) == 0 {
		return nil, errors.New("eval: no images")
	}
	if o.ImageBatch <= 0 {
		o.ImageBatch = 32
	}
	progress := o.Progress
	if progress == nil {
		progress = func(Phase, int, int) {}
	}
	warn := o.Warn
	if warn == nil {
		warn = func(string) {}
	}
	r := &Result{K: o.K}
	st := &checkpointState{itm: map[int]itmResult{}}
	var cp *checkpoint
	if o.Checkpoint != "" {
		fp, err := Fingerprint(m, c, o)
		if err != nil {
			return nil, err
		}
		var replaced string
		if cp, st, replaced, err = openCheckpoint(o.Checkpoint, fp); err != nil {
			return nil, err
		}
		if replaced != "" {
			warn(fmt.Sprintf("checkpoint %s: %s: starting over", o.Checkpoint, replaced))
		}
		defer func() {
			if cerr := cp.close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}

	// Images: embeddings (and features, kept for the ITM phase).
	feats := map[int][]float32{} // by kept index
	if st.kept == nil {
		s, err := imagePhase(ctx, m, c, o, progress, warn)
		if err != nil {
			return nil, err
		}
		if len(s.kept) == 0 {
			return nil, fmt.Errorf("%w: none of the %d images could be read", ErrMissingImage, len(c.Entries))
		}
		st.kept, st.imgEmb, feats, r.Skipped, r.FromStore = s.kept, s.emb, s.feats, s.skipped, s.fromStore
		if cp != nil {
			if err := cp.appendImages(st.kept, st.imgEmb); err != nil {
				return nil, err
			}
		}
	} else {
		r.ResumedEmbeddings = true
		r.Skipped = skippedFrom(c, st.kept)
	}
	col := c
	if len(st.kept) < len(c.Entries) {
		col = c.Subset(st.kept)
	}
	r.Collection = col
	if r.ResumedEmbeddings {
		for i := range col.Entries {
			if storeHas(o, col, i, func(emb, _ bool) bool { return emb }) {
				r.FromStore++
			}
		}
	}

	// Texts: their ITC embeddings, and their tokens (txt, without the
	// embeddings), kept for the ITM re-rank so that no text is tokenised
	// again for each image that has it among its candidates.
	var txt []blipcuda.TextEncoding
	if st.txtEmb == nil {
		progress(PhaseTexts, 0, len(col.Texts))
		st.txtEmb = make([][]float32, 0, len(col.Texts))
		txt = make([]blipcuda.TextEncoding, 0, len(col.Texts))
		for first := 0; first < len(col.Texts); first += textChunk {
			last := min(first+textChunk, len(col.Texts))
			enc, err := m.EncodeTexts(ctx, col.Texts[first:last])
			if err != nil {
				return nil, fmt.Errorf("texts %d to %d: %w", first+1, last, err)
			}
			for _, e := range enc {
				st.txtEmb = append(st.txtEmb, e.Embedding)
				e.Embedding = nil
				txt = append(txt, e)
				if e.Truncated {
					st.truncated++
				}
			}
			progress(PhaseTexts, last, len(col.Texts))
		}
		if cp != nil {
			if err := cp.appendTexts(st.txtEmb, st.truncated); err != nil {
				return nil, err
			}
		}
	} else if len(st.txtEmb) != len(col.Texts) {
		return nil, fmt.Errorf("checkpoint %s: %d text embeddings for %d texts", o.Checkpoint, len(st.txtEmb), len(col.Texts))
	} else if txt, err = m.Tokenize(col.Texts); err != nil { // resumed: the checkpoint keeps no tokens
		return nil, err
	}
	r.Truncated = st.truncated

	// ITC top-k, both ways.
	nImg, nTxt := len(col.Entries), len(col.Texts)
	r.KI2T, r.KT2I = min(o.K, nTxt), min(o.K, nImg)
	progress(PhaseITC, 0, nImg+nTxt)
	itcDone := 0
	tick := func(n int) { itcDone += n; progress(PhaseITC, itcDone, nImg+nTxt) }
	i2tTop, err := itcTopK(ctx, st.imgEmb, st.txtEmb, r.KI2T, tick)
	if err != nil {
		return nil, err
	}
	t2iTop, err := itcTopK(ctx, st.txtEmb, st.imgEmb, r.KT2I, tick)
	if err != nil {
		return nil, err
	}

	// The pairs to score, grouped by image: its own top k, and the texts
	// that have it in theirs.
	pairs := make([][]int32, nImg)
	for i, cand := range i2tTop {
		pairs[i] = append(pairs[i], cand.cols...)
	}
	for t, cand := range t2iTop {
		for _, i := range cand.cols {
			pairs[i] = append(pairs[i], int32(t))
		}
	}
	remaining := 0
	for i := range pairs {
		pairs[i] = sortedUnique(pairs[i])
		r.Pairs += len(pairs[i])
		if got, ok := st.itm[i]; ok {
			if !equalInt32(got.texts, pairs[i]) {
				return nil, fmt.Errorf("checkpoint %s: image %d's candidates differ from this run's", o.Checkpoint, i)
			}
			r.Resumed++
			if storeHas(o, col, i, func(_, f bool) bool { return f }) {
				r.FeaturesFromStore++
			}
			continue
		}
		remaining += len(pairs[i])
	}

	// ITM, image by image, each image's candidates in one call.
	progress(PhaseITM, 0, remaining)
	done := 0
	for i := 0; i < nImg; i++ {
		if _, ok := st.itm[i]; ok {
			continue
		}
		if feats[i] == nil {
			feats[i] = storedVector(ctx, m, o.Store, ImagePath(o.ImagesRoot, col.Entries[i].Image), true, warn)
			if feats[i] != nil {
				r.FeaturesFromStore++
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if feats[i] == nil {
			// Not kept (a resumed run, or the store gave the embedding
			// only): encode this image and the next ones that need it.
			need := []int{i}
			for j := i + 1; j < nImg && len(need) < o.ImageBatch; j++ {
				if _, ok := st.itm[j]; !ok && feats[j] == nil && !storeHas(o, col, j, func(_, f bool) bool { return f }) {
					need = append(need, j)
				}
			}
			enc, skipped, err := encodeImages(ctx, m, c, keptEntries(st.kept, need), Options{ImagesRoot: o.ImagesRoot, ImageBatch: o.ImageBatch}, nil, warn)
			if err != nil {
				return nil, err
			}
			if len(skipped) > 0 {
				return nil, skipped[0].Err
			}
			for _, j := range need {
				feats[j] = enc[st.kept[j]].Features
			}
		}
		img := blipcuda.ImageCandidate{Name: col.Entries[i].Image, Features: feats[i], Embedding: st.imgEmb[i]}
		texts := make([]blipcuda.TextEncoding, len(pairs[i]))
		for k, t := range pairs[i] {
			texts[k] = txt[t]
			texts[k].Embedding = st.txtEmb[t]
		}
		logits, err := matchLogits(ctx, m, img, texts)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", col.Entries[i].Image, err)
		}
		res := itmResult{texts: pairs[i], logits: logits}
		st.itm[i] = res
		delete(feats, i)
		if cp != nil {
			if err := cp.appendITM(i, res); err != nil {
				return nil, err
			}
		}
		done += len(pairs[i])
		progress(PhaseITM, done, remaining)
	}

	// BLIP's score matrices: ITM match logit + sim in the top k, −100
	// elsewhere.
	r.I2T = make([]Row, nImg)
	for i, cand := range i2tTop {
		row := Row{Cols: cand.cols, Scores: make([]float32, len(cand.cols))}
		for k, t := range cand.cols {
			row.Scores[k] = st.itm[i].logit(t) + cand.sims[k]
		}
		r.I2T[i] = row
	}
	r.T2I = make([]Row, nTxt)
	for t, cand := range t2iTop {
		row := Row{Cols: cand.cols, Scores: make([]float32, len(cand.cols))}
		for k, i := range cand.cols {
			row.Scores[k] = st.itm[int(i)].logit(int32(t)) + cand.sims[k]
		}
		r.T2I[t] = row
	}
	if r.Recall, err = ComputeRecall(r.I2T, r.T2I, col.ImageTexts, col.TextImage); err != nil {
		return nil, err
	}
	return r, nil
}

// matchLogits returns the ITM match logit (index 1 of [no-match, match],
// the raw logit BLIP's evaluation adds to the sim) of each text against
// one image: the library's re-rank of texts against an image
// (Model.RerankEncodedTexts; `blipcuda search --image` re-ranks through
// RerankTexts), given the tokens and embeddings the evaluation has already,
// so that no text is tokenised or encoded again. The image's
// cross-attention keys and values are computed once for all its
// candidates.
func matchLogits(ctx context.Context, m *blipcuda.Model, img blipcuda.ImageCandidate, texts []blipcuda.TextEncoding) ([]float32, error) {
	scores, err := m.RerankEncodedTexts(ctx, img, texts)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(texts))
	for j, s := range scores {
		out[j] = s.ITMLogits[1]
	}
	return out, nil
}

func (r itmResult) logit(t int32) float32 {
	k := sort.Search(len(r.texts), func(i int) bool { return r.texts[i] >= t })
	if k == len(r.texts) || r.texts[k] != t {
		panic(fmt.Sprintf("eval: text %d was not scored", t)) // pairs holds every top-k pair
	}
	return r.logits[k]
}

func sortedUnique(s []int32) []int32 {
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func storeID(s ImageStore) string {
	if s == nil {
		return ""
	}
	return "store " + s.ID()
}

// storeHas reports whether o.Store holds (by which, given Has's answer)
// the vectors of col's image i.
func storeHas(o Options, col *Collection, i int, which func(emb, feats bool) bool) bool {
	return o.Store != nil && which(o.Store.Has(ImagePath(o.ImagesRoot, col.Entries[i].Image)))
}

// keptEntries maps kept-image indices to entry indices.
func keptEntries(kept, idx []int) []int {
	out := make([]int, len(idx))
	for k, i := range idx {
		out[k] = kept[i]
	}
	return out
}

// skippedFrom lists the entries not in kept (resumed runs).
func skippedFrom(c *Collection, kept []int) []Skipped {
	in := make(map[int]bool, len(kept))
	for _, i := range kept {
		in[i] = true
	}
	var out []Skipped
	for i, e := range c.Entries {
		if !in[i] {
			out = append(out, Skipped{Entry: i + 1, Image: e.Image, Err: fmt.Errorf("%w (in the run being resumed)", ErrMissingImage)})
		}
	}
	return out
}

// Fingerprint names a run for its checkpoint: what decides its results
// (the annotations, the images root, each image file's size and
// modification time, the model's weights and architecture, protocol,
// device, precision, k, SkipMissing and the Store's ID), as a hex SHA-256.
func Fingerprint(m *blipcuda.Model, c *Collection, o Options) (string, error) {
	info := m.Info()
	root, err := filepath.Abs(o.ImagesRoot)
	if err != nil {
		return "", fmt.Errorf("images root %s: %w", o.ImagesRoot, err)
	}
	weights := info.Weights
	if st, err := os.Stat(weights); err == nil {
		weights = fmt.Sprintf("%s %d %d", weights, st.Size(), st.ModTime().UnixNano())
	}
	// Each image file's size and modification time (or its absence), so
	// that a run whose images changed since the checkpoint starts over
	// instead of mixing their old vectors with new ones.
	files := make([]string, len(c.Entries))
	for i, e := range c.Entries {
		if st, err := os.Stat(ImagePath(o.ImagesRoot, e.Image)); err == nil {
			files[i] = fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano())
		}
	}
	b, err := json.Marshal(struct {
		Entries                          []Entry
		Files                            []string
		Root, Weights, Device, Precision string
		Protocol                         blipcuda.Protocol
		Config                           any
		K                                int
		SkipMissing                      bool
		Store                            string `json:",omitempty"`
	}{c.Entries, files, root, weights, info.Device, info.Precision, info.Protocol, info.Config, o.K, o.SkipMissing, storeID(o.Store)})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}
