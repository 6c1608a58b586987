package blipcuda

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"

	"github.com/blipcuda/blipcuda/imageproc"
	"github.com/blipcuda/blipcuda/model"
)

// DecodeImage decodes one image (JPEG, PNG, GIF, BMP, WebP) read from r and
// preprocesses it as LoadImage does; name identifies it in errors and
// results. Images that declare more pixels than the model's MaxPixels are
// refused from their header, before any pixel data is decoded. Errors wrap
// the imageproc errors (imageproc.ErrNotImage, ErrTooLarge, ErrTruncated,
// ErrCorrupt, ErrUnsupported).
func (m *Model) DecodeImage(name string, r io.Reader) (*Image, error) {
	return m.preprocess(name)(imageproc.Decode(r, name, m.opts.MaxPixels))
}

// MaxPixels is the largest image, in pixels, that the model decodes.
func (m *Model) MaxPixels() int { return m.opts.MaxPixels }

// CheckTexts reports whether texts can be matched or encoded under the
// model's protocol: the error EncodeTexts or Match would give (ErrEmptyText,
// ErrInvalidText, naming the text's index), without running the model.
func (m *Model) CheckTexts(texts []string) error {
	_, err := m.prepare(texts)
	return err
}

// A MatchQuery is one set of images × texts scored by MatchMany.
type MatchQuery struct {
	Images []*Image
	Texts  []string
}

// MatchMany scores several queries together, each as Match would: the
// distinct images of all queries are encoded in shared batches of
// ImageBatch, the distinct texts in shared text batches, and an image that
// several queries send (equal pixels) is encoded once, its cross-attention
// keys and values computed once for the union of their texts. Results are
// the same as Match on each query alone (a padded key gets exactly zero
// attention and rows are computed independently).
//
// A query with no images, no texts, or an invalid text gets its own error
// in errs and does not affect the others. err reports a failure of the
// whole call (a cancelled context, a device error); then scores and errs
// are nil.
func (m *Model) MatchMany(ctx context.Context, queries []MatchQuery) (scores []*Scores, errs []error, err error) {
	if err := m.lock(); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	scores = make([]*Scores, len(queries))
	errs = make([]error, len(queries))
	size := m.pre.Height * m.pre.Width * 3

	// Distinct texts and images over the valid queries.
	var (
		texts    []string
		prep     []prepared
		textID   = map[string]int{}
		images   []*Image
		imgTexts [][]int // per distinct image, the distinct texts it is matched with
		imgSeen  []map[int]bool
		byHash   = map[uint64][]int{}
		seed     = maphash.MakeSeed()
		qText    = make([][]int, len(queries))
		qImage   = make([][]int, len(queries))
		qPrep    = make([][]prepared, len(queries))
	)
	for q, query := range queries {
		if err := checkImages(query.Images); err != nil {
			errs[q] = fmt.Errorf("%w (query %d)", err, q)
			continue
		}
		if i := slices.IndexFunc(query.Images, func(im *Image) bool { return len(im.pixels) != size }); i >= 0 {
			errs[q] = fmt.Errorf("blipcuda: image %s was preprocessed for another model", query.Images[i].Name)
			continue
		}
		p, err := m.prepare(query.Texts)
		if err != nil {
			errs[q] = err
			continue
		}
		qPrep[q] = p
		for j, t := range query.Texts {
			id, ok := textID[t]
			if !ok {
				id = len(texts)
				textID[t] = id
				texts = append(texts, t)
				prep = append(prep, p[j])
			}
			qText[q] = append(qText[q], id)
		}
		for _, im := range query.Images {
			h := maphash.Bytes(seed, float32Bytes(im.pixels))
			id := slices.IndexFunc(byHash[h], func(k int) bool { return slices.Equal(images[k].pixels, im.pixels) })
			if id >= 0 {
				id = byHash[h][id]
			} else {
				id = len(images)
				byHash[h] = append(byHash[h], id)
				images = append(images, im)
				imgTexts = append(imgTexts, nil)
				imgSeen = append(imgSeen, map[int]bool{})
			}
			qImage[q] = append(qImage[q], id)
			for _, t := range qText[q] {
				if !imgSeen[id][t] {
					imgSeen[id][t] = true
					imgTexts[id] = append(imgTexts[id], t)
				}
			}
		}
	}
	if len(images) == 0 {
		return scores, errs, nil
	}

	tenc, err := m.encodeTexts(ctx, texts, prep)
	if err != nil {
		return nil, nil, err
	}
	// Per distinct image: its embedding, and the logits of each of its texts.
	emb := make([][]float32, len(images))
	logits := make([]map[int][2]float32, len(images))
	err = m.forImageBatches(ctx, images, func(first int, f *model.ImageFeatures) error {
		e, err := m.net.ImageEmbeddings(ctx, f)
		if err != nil {
			return err
		}
		d := len(e) / f.Len()
		for i := 0; i < f.Len(); i++ {
			id := first + i
			emb[id] = e[i*d : (i+1)*d : (i+1)*d]
			ids := imgTexts[id]
			sub := make([]prepared, len(ids))
			for k, t := range ids {
				sub[k] = prep[t]
			}
			logits[id] = make(map[int][2]float32, len(ids))
			err := m.imageITM(ctx, f, i, sub, func(j int, l [2]float32) { logits[id][ids[j]] = l })
			if err != nil {
				return fmt.Errorf("ITM of image %s: %w", images[id].Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for q, query := range queries {
		if errs[q] != nil {
			continue
		}
		s := newScores(len(query.Images), query.Texts, qPrep[q])
		qenc := make([]TextEncoding, len(qText[q]))
		for j, t := range qText[q] {
			qenc[j] = tenc[t]
		}
		for r, id := range qImage[q] {
			s.Images[r] = query.Images[r].Name
			s.ITC[r] = ITCRow(emb[id], qenc)
			s.ITMLogits[r] = make([][2]float32, len(qText[q]))
			s.ITMProb[r] = make([]float32, len(qText[q]))
			for j, t := range qText[q] {
				l := logits[id][t]
				s.ITMLogits[r][j] = l
				s.ITMProb[r][j] = matchProb(l[0], l[1])
			}
		}
		scores[q] = s
	}
	return scores, errs, nil
}

// float32Bytes is the memory of v as bytes, for hashing.
func float32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		u := math.Float32bits(x)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}
