package blipbeam

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/blipcuda/blipcuda"
)

// Embedding is EmbedImages' output for one image.
type Embedding struct {
	// Ref is the image reference as given (a local path made absolute).
	Ref string `json:"ref"`
	// Embedding is the 256-d L2-normalised ITC embedding.
	Embedding []float32 `json:"embedding"`
	// Size, SHA256 and ModTime (Unix nanoseconds, 0 when the filesystem
	// does not say) describe the file, for the index records.
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	ModTime int64  `json:"mtime"`
}

// Failure is a dead-letter record: one input that could not be processed,
// and why. The job goes on without it.
type Failure struct {
	// Ref is the image reference ("" for an image given as bytes).
	Ref string `json:"ref"`
	// Key is the sample's key (WebDataset __key__, Parquet row key), when
	// it has one.
	Key string `json:"key,omitempty"`
	// Caption is the pair's caption (ScorePairs only).
	Caption string `json:"caption,omitempty"`
	// Reason is the error.
	Reason string `json:"reason"`
}

// Config tunes the transforms. The zero value is usable.
type Config struct {
	// Batch is how many inputs are gathered inside a bundle before the
	// model runs on them (default 64 images for EmbedImages, 64 images'
	// pairs for ScorePairs); a bundle's remainder runs at its end. The
	// device batch is Model.ImageBatch.
	Batch int `json:"batch,omitempty"`
	// MaxBytes refuses image files larger than this (default
	// DefaultMaxBytes).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// MaxPixels refuses images that declare more pixels (default: the
	// library's, Pillow's limit).
	MaxPixels int `json:"max_pixels,omitempty"`
}

func (c Config) batch() int {
	if c.Batch <= 0 {
		return 64
	}
	return c.Batch
}

func (c Config) maxBytes() int64 {
	if c.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return c.MaxBytes
}

func init() {
	register.DoFn4x1[context.Context, string, func(Embedding), func(Failure), error](&embedFn{})
	register.Emitter1[Embedding]()
	register.Emitter1[Failure]()
	beam.RegisterType(typeOf[Embedding]())
	beam.RegisterType(typeOf[Failure]())
}

// EmbedImages encodes images, given as a PCollection<string> of references
// (local paths, or gs://, s3://… for any filesystem registered with Beam's
// filesystem package), into PCollection<Embedding> (ITC embeddings, the
// same numbers as blipcuda.Model.EncodeImages and `blipcuda embed`), and
// PCollection<Failure> for images that cannot be read or decoded.
//
// Each worker process loads the model once (shared by every instance of
// the DoFn, closed with the last one), and images are encoded in batches
// of cfg.Batch gathered inside a bundle.
func EmbedImages(s beam.Scope, model Model, cfg Config, refs beam.PCollection) (embeddings, failures beam.PCollection) {
	s = s.Scope("blipbeam.EmbedImages")
	return beam.ParDo2(s, &embedFn{modelUser: modelUser{Model: model}, Config: cfg}, refs)
}

type embedFn struct {
	modelUser
	Config Config `json:"config"`

	pending []string
}

func (f *embedFn) StartBundle(context.Context, func(Embedding), func(Failure)) {
	f.pending = f.pending[:0]
}

func (f *embedFn) ProcessElement(ctx context.Context, ref string, emit func(Embedding), fail func(Failure)) error {
	f.pending = append(f.pending, ref)
	if len(f.pending) >= f.Config.batch() {
		return f.flush(ctx, emit, fail)
	}
	return nil
}

func (f *embedFn) FinishBundle(ctx context.Context, emit func(Embedding), fail func(Failure)) error {
	return f.flush(ctx, emit, fail)
}

// flush encodes the pending images.
func (f *embedFn) flush(ctx context.Context, emit func(Embedding), fail func(Failure)) error {
	refs := f.pending
	f.pending = f.pending[:0]
	if len(refs) == 0 {
		return nil
	}
	var (
		images []*blipcuda.Image
		out    []Embedding
	)
	for _, ref := range refs {
		e, img, err := f.load(ctx, ref)
		if errors.Is(err, errData) {
			fail(Failure{Ref: ref, Reason: err.Error()})
			continue
		}
		if err != nil {
			return err
		}
		images = append(images, img)
		out = append(out, e)
	}
	if len(images) == 0 {
		return nil
	}
	enc, err := f.m.EncodeImages(ctx, images, false)
	if err != nil {
		return fmt.Errorf("blipbeam: encoding %d images from %s: %w", len(images), images[0].Name, err)
	}
	for i := range out {
		out[i].Embedding = enc[i].Embedding
		emit(out[i])
	}
	return nil
}

// load reads and preprocesses one image.
func (f *embedFn) load(ctx context.Context, ref string) (Embedding, *blipcuda.Image, error) {
	abs, err := absRef(ref)
	if err != nil {
		return Embedding{}, nil, fmt.Errorf("%w: %s: %v", errData, ref, err)
	}
	b, err := readRef(ctx, abs, f.Config.maxBytes())
	if err != nil {
		return Embedding{}, nil, err
	}
	img, err := decode(f.m, abs, b.data, f.Config.MaxPixels)
	if err != nil {
		return Embedding{}, nil, err
	}
	e := Embedding{Ref: abs, Size: int64(len(b.data)), SHA256: b.sha256}
	if !b.modTime.IsZero() {
		e.ModTime = b.modTime.UnixNano()
	}
	return e, img, nil
}
