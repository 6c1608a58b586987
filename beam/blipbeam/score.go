package blipbeam

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/blipcuda/blipcuda"
)

// Pair is an image-text pair to score.
type Pair struct {
	// Key identifies the sample (WebDataset __key__, a Parquet key column);
	// it is carried through to the scores.
	Key string `json:"key,omitempty"`
	// Image is the image reference (path or URL); it may be empty when
	// ImageBytes holds the image.
	Image string `json:"image,omitempty"`
	// ImageBytes is the encoded image (JPEG, PNG, GIF, BMP, WebP); when set
	// it is used instead of reading Image.
	ImageBytes []byte `json:"-"`
	// Caption is the text.
	Caption string `json:"caption"`
	// Meta is the sample's metadata as the input held it (the WebDataset
	// .json member), carried through.
	Meta string `json:"meta,omitempty"`
}

// PairScore is ScorePairs' output for one pair.
type PairScore struct {
	// Key, Image, ImageBytes, Caption and Meta are the pair's.
	Key        string `json:"key,omitempty"`
	Image      string `json:"image,omitempty"`
	ImageBytes []byte `json:"-"`
	Caption    string `json:"caption"`
	Meta       string `json:"meta,omitempty"`
	// ITMProb is P(match) = softmax(ITM logits)[1].
	ITMProb float32 `json:"itm_prob"`
	// ITMLogit is the ITM log-odds, logit[match] − logit[no-match]
	// (ITMProb = sigmoid(ITMLogit)).
	ITMLogit float32 `json:"itm_logit"`
	// ITC is the cosine of the image and text ITC embeddings.
	ITC float32 `json:"itc"`
	// Truncated reports that the caption was cut to the protocol's length.
	Truncated bool `json:"truncated,omitempty"`
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

func init() {
	register.DoFn4x1[context.Context, Pair, func(PairScore), func(Failure), error](&scoreFn{})
	register.Emitter1[PairScore]()
	beam.RegisterType(typeOf[Pair]())
	beam.RegisterType(typeOf[PairScore]())
}

// ScorePairs scores image-text pairs (PCollection<Pair>) with both heads,
// giving PCollection<PairScore> (the numbers blipcuda.Model.Match and
// `blipcuda match` give for the same image and caption) and
// PCollection<Failure> for pairs whose image cannot be read or decoded or
// whose caption is empty or invalid.
//
// Inside a bundle, pairs are grouped by image (the reference, or the
// content of ImageBytes): each image is read and encoded once, in batches,
// and its cross-attention keys and values are shared by all its captions.
// Pairs of one image in different bundles are encoded once per bundle;
// group them upstream (for example with beam.GroupByKey on the image) when
// images repeat across a dataset.
func ScorePairs(s beam.Scope, model Model, cfg Config, pairs beam.PCollection) (scores, failures beam.PCollection) {
	s = s.Scope("blipbeam.ScorePairs")
	return beam.ParDo2(s, &scoreFn{modelUser: modelUser{Model: model}, Config: cfg}, pairs)
}

type scoreFn struct {
	modelUser
	Config Config `json:"config"`

	groups map[string]*group
	order  []string
}

// group is one image and its pairs.
type group struct {
	name  string
	pairs []Pair
}

func (f *scoreFn) StartBundle(context.Context, func(PairScore), func(Failure)) {
	f.groups, f.order = map[string]*group{}, nil
}

func (f *scoreFn) ProcessElement(ctx context.Context, p Pair, emit func(PairScore), fail func(Failure)) error {
	id := "ref:" + p.Image
	if p.ImageBytes != nil {
		id = "sha256:" + newBlob(p.ImageBytes).sha256
	}
	g, ok := f.groups[id]
	if !ok {
		if f.groups == nil {
			f.groups = map[string]*group{}
		}
		name := p.Image
		if name == "" {
			name = p.Key
		}
		g = &group{name: name}
		f.groups[id] = g
		f.order = append(f.order, id)
	}
	g.pairs = append(g.pairs, p)
	if len(f.order) >= f.Config.batch() {
		return f.flush(ctx, emit, fail)
	}
	return nil
}

func (f *scoreFn) FinishBundle(ctx context.Context, emit func(PairScore), fail func(Failure)) error {
	return f.flush(ctx, emit, fail)
}

// flush scores the pending groups: their images are encoded in one call
// (batched on the device), then each image's captions are matched against
// its features.
func (f *scoreFn) flush(ctx context.Context, emit func(PairScore), fail func(Failure)) error {
	var (
		images []*blipcuda.Image
		groups []*group
	)
	for _, id := range f.order {
		g := f.groups[id]
		img, err := f.load(ctx, g)
		if errors.Is(err, errData) {
			for _, p := range g.pairs {
				fail(failure(p, err))
			}
			continue
		}
		if err != nil {
			return err
		}
		images, groups = append(images, img), append(groups, g)
	}
	f.groups, f.order = map[string]*group{}, nil
	if len(images) == 0 {
		return nil
	}
	enc, err := f.m.EncodeImages(ctx, images, true)
	if err != nil {
		return fmt.Errorf("blipbeam: encoding %d images from %s: %w", len(images), images[0].Name, err)
	}
	for i, g := range groups {
		if err := f.match(ctx, enc[i], g.pairs, emit, fail); err != nil {
			return err
		}
		enc[i].Features = nil
	}
	return nil
}

// match scores one image's pairs. A caption the model refuses (empty,
// invalid UTF-8) fails alone: the others are scored without it.
func (f *scoreFn) match(ctx context.Context, enc blipcuda.ImageEncoding, pairs []Pair, emit func(PairScore), fail func(Failure)) error {
	texts := make([]string, len(pairs))
	for i, p := range pairs {
		texts[i] = p.Caption
	}
	s, err := f.m.MatchFeatures(ctx, []blipcuda.ImageEncoding{enc}, texts)
	if isTextError(err) && len(pairs) > 1 {
		for _, p := range pairs {
			if err := f.match(ctx, enc, []Pair{p}, emit, fail); err != nil {
				return err
			}
		}
		return nil
	}
	if isTextError(err) {
		fail(failure(pairs[0], err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("blipbeam: matching %d captions against %s: %w", len(pairs), enc.Name, err)
	}
	for j, p := range pairs {
		l := s.ITMLogits[0][j]
		emit(PairScore{Key: p.Key, Image: p.Image, ImageBytes: p.ImageBytes, Caption: p.Caption, Meta: p.Meta, ITMProb: s.ITMProb[0][j], ITMLogit: l[1] - l[0], ITC: s.ITC[0][j], Truncated: s.Truncated[j]})
	}
	return nil
}

func isTextError(err error) bool {
	return errors.Is(err, blipcuda.ErrEmptyText) || errors.Is(err, blipcuda.ErrInvalidText)
}

func failure(p Pair, err error) Failure {
	return Failure{Ref: p.Image, Key: p.Key, Caption: p.Caption, Reason: err.Error()}
}

// load reads (or takes from the pair) and preprocesses a group's image.
func (f *scoreFn) load(ctx context.Context, g *group) (*blipcuda.Image, error) {
	p := g.pairs[0]
	data := p.ImageBytes
	if data == nil {
		if p.Image == "" {
			return nil, fmt.Errorf("%w: pair %q has neither an image reference nor image bytes", errData, p.Key)
		}
		b, err := readRef(ctx, p.Image, f.Config.maxBytes())
		if err != nil {
			return nil, err
		}
		data = b.data
	}
	return decode(f.m, g.name, data, f.Config.MaxPixels)
}
