// Package blipcuda answers "how well does this text describe this image?"
// with the BLIP image-text matching models (Salesforce/blip-itm-base-coco,
// -base-flickr, -large-coco, -large-flickr), giving the same numbers as
// transformers' BlipForImageTextRetrieval.
//
// It answers three ways, after the three parts of the model family:
//
//   - ImageEncoder (EncodeImages): the 256-d normalised ITC embedding of an
//     image, and optionally its raw features (the ViT's post-LayerNorm last
//     hidden state, 577×width) for the multimodal encoder.
//   - TextEncoder (EncodeTexts): the 256-d normalised ITC embedding of a text.
//     The ITC score of a pair is the cosine of the two embeddings.
//   - MultimodalEncoder (Match, MatchFeatures): the ITM logits [no-match,
//     match] and P(match) of every text against every image; each image is
//     encoded once, and its cross-attention keys and values are computed once
//     for all texts.
//
// Texts are prepared by one of two protocols (Protocol): "blip", as the
// models were trained and evaluated (the default), or "hf", exactly what
// transformers does.
//
// A Model is safe for concurrent use; calls are serialised internally.
package blipcuda

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/blipcuda/blipcuda/hub"
	"github.com/blipcuda/blipcuda/imageproc"
	"github.com/blipcuda/blipcuda/internal/bounded"
	"github.com/blipcuda/blipcuda/model"
	"github.com/blipcuda/blipcuda/ops"
	"github.com/blipcuda/blipcuda/tokenizer"
)

// Protocol selects how texts are prepared for the model.
type Protocol string

const (
	// ProtocolBLIP prepares texts as BLIP was trained and evaluated
	// (salesforce/BLIP and LAVIS retrieval): the caption is cleaned by BLIP's
	// pre_caption (lower-cased; . ! " ( ) * # : ; ~ replaced by spaces;
	// whitespace collapsed; at most 30 words), tokenised to at most 35
	// tokens, and for ITM the first token [CLS] is replaced by [ENC] (id
	// 30523). ITC keeps [CLS]. This is the default.
	ProtocolBLIP Protocol = "blip"
	// ProtocolHF reproduces transformers' BlipForImageTextRetrieval exactly:
	// no cleaning, [CLS] at position 0 for both heads, up to the model's 512
	// positions (longer texts are truncated and reported as such).
	ProtocolHF Protocol = "hf"
)

// BLIP protocol limits (salesforce/BLIP retrieval configs).
const (
	blipMaxWords  = 30
	blipMaxTokens = 35
)

// Errors callers can test for with errors.Is.
var (
	// ErrEmptyText reports a text with nothing to match: empty,
	// whitespace-only, or (blip protocol) nothing left after cleaning.
	ErrEmptyText = errors.New("blipcuda: empty text")
	// ErrInvalidText reports a text that is not valid UTF-8.
	ErrInvalidText = errors.New("blipcuda: text is not valid UTF-8")
	// ErrUnknownModel reports a model name that is neither a family name,
	// a Hub id, nor a checkpoint directory.
	ErrUnknownModel = errors.New("blipcuda: unknown model")
	// ErrBadCheckpoint reports a checkpoint directory that lacks files.
	ErrBadCheckpoint = errors.New("blipcuda: bad checkpoint directory")
	// ErrUnavailable reports a device or precision this build or machine
	// cannot provide.
	ErrUnavailable = errors.New("blipcuda: unavailable")
	// ErrClosed reports use of a closed Model.
	ErrClosed = errors.New("blipcuda: model closed")
)

// Options configure a Model. The zero value is the default everywhere.
type Options struct {
	// Device is "auto" (the default: CUDA when a GPU and driver are found,
	// else the CPU), "cpu" or "cuda" (an error when unavailable).
	Device string
	// Precision is "float32" (the default: parity with transformers),
	// "float16" or "bfloat16": every tensor of the CUDA backend in that type,
	// weights converted once at load, float32 accumulation and statistics.
	// The CPU backend computes in float32 only: a 16-bit precision there (or
	// with Device "auto" and no GPU) fails with ErrUnavailable.
	Precision string
	// Protocol is ProtocolBLIP (the default) or ProtocolHF.
	Protocol Protocol
	// Threads bounds the CPU backend's worker goroutines (default: GOMAXPROCS).
	Threads int
	// TextBatch is the number of texts run through the text encoder at
	// once (default 64).
	TextBatch int
	// ImageBatch is the number of images run through the image encoder at
	// once (default 8).
	ImageBatch int
	// MaxPixels refuses images that declare more pixels (default
	// imageproc.DefaultMaxPixels).
	MaxPixels int
	// Hub is the Hugging Face Hub client used to find (and, with Download,
	// fetch) models by name; default hub.FromEnv().
	Hub *hub.Client
	// Download allows Load to pull a model that is not in the cache.
	Download bool
	// NoGraphs turns off CUDA graphs: by default, on the CUDA backend, each
	// forward-pass shape is captured once and replayed (one launch instead
	// of hundreds), and the 24 most recent shapes keep their activations on
	// the device. Off, every call launches its kernels one by one and holds
	// no memory between calls.
	NoGraphs bool
	// Progress, when set, is called as the images of a Match,
	// MatchFeatures or EncodeImages call are done (after each image, or
	// each batch of images for EncodeImages), from the calling goroutine.
	// It must be quick: the next batch waits for it.
	Progress func(Progress)
}

// Progress says how far one call has got.
type Progress struct {
	// Done of Total images of the call are scored or encoded.
	Done, Total int
}

// Option changes one field of Options.
type Option func(*Options)

// WithDevice selects the device: "auto", "cpu" or "cuda".
func WithDevice(device string) Option { return func(o *Options) { o.Device = device } }

// WithPrecision selects the compute precision: "float32", "float16",
// "bfloat16" (see Options.Precision).
func WithPrecision(p string) Option { return func(o *Options) { o.Precision = p } }

// WithProtocol selects the text protocol.
func WithProtocol(p Protocol) Option { return func(o *Options) { o.Protocol = p } }

// WithThreads bounds the CPU worker goroutines.
func WithThreads(n int) Option { return func(o *Options) { o.Threads = n } }

// WithTextBatch sets how many texts are encoded at once.
func WithTextBatch(n int) Option { return func(o *Options) { o.TextBatch = n } }

// WithImageBatch sets how many images are encoded at once.
func WithImageBatch(n int) Option { return func(o *Options) { o.ImageBatch = n } }

// WithMaxPixels sets the largest image, in pixels, that is decoded.
func WithMaxPixels(n int) Option { return func(o *Options) { o.MaxPixels = n } }

// WithoutGraphs turns CUDA graphs off (see Options.NoGraphs).
func WithoutGraphs() Option { return func(o *Options) { o.NoGraphs = true } }

// WithHub sets the Hub client used to find and download models.
func WithHub(c *hub.Client) Option { return func(o *Options) { o.Hub = c } }

// WithProgress sets a function told of the progress of each call, image by
// image (see Options.Progress): for a progress bar over long runs.
func WithProgress(fn func(Progress)) Option { return func(o *Options) { o.Progress = fn } }

// progress reports done of total images to the Progress option.
func (m *Model) progress(done, total int) {
	if m.opts.Progress != nil {
		m.opts.Progress(Progress{Done: done, Total: total})
	}
}

// WithDownload lets Load pull a model missing from the local cache.
func WithDownload(download bool) Option { return func(o *Options) { o.Download = download } }

func (o *Options) normalize() error {
	if o.Device == "" {
		o.Device = "auto"
	}
	if o.Precision == "" {
		o.Precision = "float32"
	}
	if o.Protocol == "" {
		o.Protocol = ProtocolBLIP
	}
	if o.TextBatch <= 0 {
		o.TextBatch = 64
	}
	if o.ImageBatch <= 0 {
		o.ImageBatch = 8
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = imageproc.DefaultMaxPixels
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	switch o.Protocol {
	case ProtocolBLIP, ProtocolHF:
	default:
		return fmt.Errorf("blipcuda: unknown protocol %q (want %q or %q)", o.Protocol, ProtocolBLIP, ProtocolHF)
	}
	switch o.Device {
	case "auto", "cpu", "cuda":
	default:
		return fmt.Errorf("blipcuda: unknown device %q (want auto, cpu or cuda)", o.Device)
	}
	switch o.Precision {
	case "float32":
	case "float16", "bfloat16":
		if o.Device == "cpu" {
			return fmt.Errorf("%w: precision %s runs on the CUDA backend; the CPU backend computes in float32", ErrUnavailable, o.Precision)
		}
	default:
		return fmt.Errorf("blipcuda: unknown precision %q (want float32, float16 or bfloat16)", o.Precision)
	}
	return nil
}

// Model is a loaded BLIP ITM model with its tokenizer and image
// preprocessing. Close releases it.
type Model struct {
	mu      sync.Mutex
	opts    Options
	info    Info
	be      ops.Backend
	weights *model.Weights
	net     *model.Model
	tok     *tokenizer.Tokenizer
	pre     imageproc.Config
	closed  bool
	// closedFlag mirrors closed for Health, which does not take mu.
	closedFlag atomic.Bool
}

// Info describes a loaded model.
type Info struct {
	// Name is what the model was loaded as (family name, Hub id, directory).
	Name string
	// Repo is the Hub repository ("" for a local directory).
	Repo string
	// Dir is the checkpoint directory ("" for a model built from a config).
	Dir string
	// Weights says where the weights came from.
	Weights string
	// Device is the backend running the model ("cpu" or "cuda").
	Device string
	// DeviceNote says which device was chosen and why, e.g. "cpu: CUDA
	// unavailable (no CUDA driver: ...)" for --device auto on a machine
	// without a GPU.
	DeviceNote string
	// Precision is the compute precision ("float32", "float16" or
	// "bfloat16").
	Precision string
	// StoredPrecision is the type the checkpoint stores its weights in
	// ("float32", "float16", "bfloat16", "mixed"; "" when not from a file).
	// Weights are converted to Precision at load.
	StoredPrecision string
	// Protocol is the text protocol.
	Protocol Protocol
	// Config is the architecture, from the checkpoint's config.json.
	Config model.Config
}

// Load opens a model by family name (base-coco, base-flickr, large-coco,
// large-flickr), Hub id (Salesforce/blip-itm-base-coco) or checkpoint
// directory (config.json, model.safetensors or pytorch_model.bin,
// tokenizer.json or vocab.txt, and optionally preprocessor_config.json).
// Names and Hub ids are looked up in the local Hugging Face cache; with
// WithDownload(true) a missing model is pulled first.
func Load(ctx context.Context, name string, opts ...Option) (*Model, error) {
	o, err := options(ctx, opts)
	if err != nil {
		return nil, err
	}
	c := o.Hub
	if c == nil {
		if c, err = hub.FromEnv(); err != nil {
			return nil, fmt.Errorf("blipcuda: %w", err)
		}
	}
	cp, err := Locate(ctx, c, name)
	if errors.Is(err, ErrNotCached) && o.Download {
		cp, err = Pull(ctx, c, name)
	}
	if err != nil {
		return nil, err
	}
	return load(name, cp, o)
}

// LoadCheckpoint opens a model from located files (see Locate and Pull).
func LoadCheckpoint(ctx context.Context, cp Checkpoint, opts ...Option) (*Model, error) {
	o, err := options(ctx, opts)
	if err != nil {
		return nil, err
	}
	return load(cp.Dir, cp, o)
}

// options applies and checks opts.
func options(ctx context.Context, opts []Option) (Options, error) {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	if err := o.normalize(); err != nil {
		return o, err
	}
	return o, ctx.Err()
}

func load(name string, cp Checkpoint, o Options) (*Model, error) {
	dir := cp.Dir
	cfg, err := model.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("blipcuda: model %s: %w", name, err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("blipcuda: model %s: %w", name, err)
	}
	pre := imageproc.DefaultConfig()
	if p := filepath.Join(dir, "preprocessor_config.json"); fileExists(p) {
		if pre, err = imageproc.LoadConfig(p); err != nil {
			return nil, fmt.Errorf("blipcuda: model %s: %w", name, err)
		}
	}
	if pre.Height != cfg.Vision.ImageSize || pre.Width != cfg.Vision.ImageSize {
		return nil, fmt.Errorf("blipcuda: model %s: preprocessor resizes to %d×%d but the model takes %d×%d images",
			name, pre.Width, pre.Height, cfg.Vision.ImageSize, cfg.Vision.ImageSize)
	}
	if cp.Weights == "" {
		return nil, fmt.Errorf("blipcuda: model %s: %w: no weights file", name, model.ErrWeights)
	}
	w, err := model.OpenWeightsFile(cp.Weights, cfg)
	if err != nil {
		return nil, fmt.Errorf("blipcuda: model %s: %w", name, err)
	}
	m, err := build(cfg, w, tok, pre, o)
	if err != nil {
		w.Close()
		return nil, err
	}
	m.info.Name, m.info.Dir, m.info.Repo = name, dir, cp.Repo
	return m, nil
}

// New builds a model from a configuration and weights held in memory (for
// example model.RandomWeights, to inspect the architecture or benchmark it
// without a checkpoint). tok may be nil when only images are encoded. The
// model takes ownership of w and closes it in Close.
func New(cfg model.Config, w *model.Weights, tok *tokenizer.Tokenizer, opts ...Option) (*Model, error) {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	if err := o.normalize(); err != nil {
		return nil, err
	}
	pre := imageproc.DefaultConfig()
	pre.Height, pre.Width = cfg.Vision.ImageSize, cfg.Vision.ImageSize
	m, err := build(cfg, w, tok, pre, o)
	if err != nil {
		return nil, err
	}
	m.info.Name = w.Source
	return m, nil
}

// maxBatchActivation bounds the largest activation of one batch: a
// configuration near model.MaxActivationBytes per input runs few inputs at
// a time (the released models, at 16 MB per image, keep the defaults).
const maxBatchActivation = 2 << 30

func build(cfg model.Config, w *model.Weights, tok *tokenizer.Tokenizer, pre imageproc.Config, o Options) (*Model, error) {
	if _, act := cfg.LargestActivation(); act > 0 {
		most := int(max(1, maxBatchActivation/act))
		o.ImageBatch, o.TextBatch = min(o.ImageBatch, most), min(o.TextBatch, most)
	}
	be, note, err := newBackend(o)
	if err != nil {
		return nil, err
	}
	net, err := model.New(be, cfg, w)
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("blipcuda: %w", err)
	}
	net.SetGraphs(!o.NoGraphs)
	return &Model{
		opts: o, be: be, weights: w, net: net, tok: tok, pre: pre,
		info: Info{Weights: w.Source, StoredPrecision: w.StoredDType, Device: be.Name(), DeviceNote: note, Precision: o.Precision, Protocol: o.Protocol, Config: cfg},
	}, nil
}

// Info describes the model.
func (m *Model) Info() Info { return m.info }

// Close releases the model's memory. It is safe to call more than once.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.closedFlag.Store(true)
	err := m.net.Close()
	err = errors.Join(err, m.be.Close(), m.weights.Close())
	return err
}

func (m *Model) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Image is a preprocessed image: normalised CHW pixels at the model's size.
type Image struct {
	// Name identifies the image in errors and results (its path, usually).
	Name   string
	pixels []float32
}

// LoadImage decodes an image file (JPEG, PNG, GIF, BMP, WebP) and
// preprocesses it as the checkpoint's image processor does.
func (m *Model) LoadImage(path string) (*Image, error) {
	rgb, release, err := imageproc.DecodeFileHeld(path, m.opts.MaxPixels)
	defer release() // the full-size pixels count against the decode budget until preprocessed
	return m.preprocess(path)(rgb, err)
}

// preprocess returns what turns a decoded image (or its decoding error)
// into the Image named name.
func (m *Model) preprocess(name string) func(*imageproc.RGB, error) (*Image, error) {
	return func(rgb *imageproc.RGB, err error) (*Image, error) {
		if err != nil {
			return nil, fmt.Errorf("blipcuda: image %s: %w", name, err)
		}
		px, err := m.pre.Preprocess(rgb)
		if err != nil {
			return nil, fmt.Errorf("blipcuda: image %s: %w", name, err)
		}
		return &Image{Name: name, pixels: px}, nil
	}
}

// ImageFromGo preprocesses a decoded image.
func (m *Model) ImageFromGo(name string, img image.Image) (*Image, error) {
	if img == nil || img.Bounds().Empty() {
		return nil, fmt.Errorf("blipcuda: image %s is empty", name)
	}
	px, err := m.pre.Preprocess(imageproc.ToRGB(img))
	if err != nil {
		return nil, fmt.Errorf("blipcuda: image %s: %w", name, err)
	}
	return &Image{Name: name, pixels: px}, nil
}

// ImageEncoding is the image encoder's output for one image.
type ImageEncoding struct {
	// Name is the image's name.
	Name string
	// Embedding is the 256-d L2-normalised ITC embedding.
	Embedding []float32
	// Features are the raw features, Tokens×Width row-major (577×768 for
	// the base models), when requested; the input of MatchFeatures.
	Features []float32
	// Tokens and Width give the shape of Features.
	Tokens, Width int
}

// EncodeImages runs the image encoder. With features set, the raw features
// are returned as well (2.3 MB per image for the large models).
func (m *Model) EncodeImages(ctx context.Context, images []*Image, features bool) ([]ImageEncoding, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if err := checkImages(images); err != nil {
		return nil, err
	}
	out := make([]ImageEncoding, 0, len(images))
	err := m.forImageBatches(ctx, images, func(first int, f *model.ImageFeatures) error {
		emb, err := m.net.ImageEmbeddings(ctx, f)
		if err != nil {
			return err
		}
		var raw []float32
		if features {
			if raw, err = f.Download(ctx); err != nil {
				return err
			}
		}
		d := len(emb) / f.Len()
		per := f.Tokens() * f.Width()
		for i := 0; i < f.Len(); i++ {
			e := ImageEncoding{Name: images[first+i].Name, Embedding: emb[i*d : (i+1)*d : (i+1)*d],
				Tokens: f.Tokens(), Width: f.Width()}
			if features {
				e.Features = raw[i*per : (i+1)*per : (i+1)*per]
			}
			out = append(out, e)
		}
		m.progress(len(out), len(images))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func checkImages(images []*Image) error {
	if len(images) == 0 {
		return errors.New("blipcuda: no images")
	}
	for i, im := range images {
		if im == nil || len(im.pixels) == 0 {
			return fmt.Errorf("blipcuda: image %d is nil or empty", i)
		}
	}
	return nil
}

// forImageBatches encodes images in batches of opts.ImageBatch, calling fn
// with the index of each batch's first image.
func (m *Model) forImageBatches(ctx context.Context, images []*Image, fn func(first int, f *model.ImageFeatures) error) error {
	size := len(images[0].pixels)
	for first := 0; first < len(images); first += m.opts.ImageBatch {
		batch := images[first:min(first+m.opts.ImageBatch, len(images))]
		px := make([]float32, 0, len(batch)*size)
		for _, im := range batch {
			if len(im.pixels) != size {
				return fmt.Errorf("blipcuda: image %s was preprocessed for another model", im.Name)
			}
			px = append(px, im.pixels...)
		}
		f, err := m.net.EncodeImages(ctx, px, len(batch))
		if err != nil {
			return fmt.Errorf("blipcuda: encoding %s: %w", batch[0].Name, err)
		}
		err = fn(first, f)
		f.Free()
		if err != nil {
			return fmt.Errorf("blipcuda: %w", err)
		}
	}
	return nil
}

// TextEncoding is the text encoder's output for one text.
type TextEncoding struct {
	// Text is the input text.
	Text string
	// Tokens are the token ids the ITC embedding was computed from.
	Tokens []int32
	// Truncated reports that the text was cut to the protocol's length.
	Truncated bool
	// Embedding is the 256-d L2-normalised ITC embedding.
	Embedding []float32
}

// prepared is a text tokenised under the model's protocol.
type prepared struct {
	itc, itm  []int32
	truncated bool
}

// prepare tokenises texts under the protocol, rejecting empty and invalid
// ones with an error naming the text's index.
func (m *Model) prepare(texts []string) ([]prepared, error) {
	if m.tok == nil {
		return nil, errors.New("blipcuda: this model has no tokenizer")
	}
	// transformers' BlipProcessor loads BertTokenizerFast; salesforce/BLIP
	// and LAVIS use the Python BertTokenizer. They differ only on rare
	// characters (see the tokenizer package).
	tok := m.tok
	if m.opts.Protocol == ProtocolBLIP {
		tok = tok.WithCompat(tokenizer.CompatSlow)
	}
	if len(texts) == 0 {
		return nil, errors.New("blipcuda: no texts")
	}
	out := make([]prepared, len(texts))
	for i, text := range texts {
		if !utf8.ValidString(text) {
			return nil, fmt.Errorf("%w: text %d (%s)", ErrInvalidText, i, bounded.Quote(text))
		}
		if strings.TrimSpace(text) == "" {
			return nil, fmt.Errorf("%w: text %d is empty or whitespace", ErrEmptyText, i)
		}
		src, limit := text, m.net.Config().Text.MaxPositionEmbeddings
		if m.opts.Protocol == ProtocolBLIP {
			src, limit = tokenizer.PreCaption(text, blipMaxWords), min(limit, blipMaxTokens)
			if src == "" {
				return nil, fmt.Errorf("%w: text %d (%s) has no words after BLIP's caption cleaning", ErrEmptyText, i, bounded.Quote(text))
			}
		}
		enc, err := tok.Encode(src, limit)
		if err != nil {
			return nil, fmt.Errorf("blipcuda: text %d: %w", i, err)
		}
		if len(enc.IDs) <= 2 {
			return nil, fmt.Errorf("%w: text %d (%s) has no tokens", ErrEmptyText, i, bounded.Quote(text))
		}
		// pre_caption keeps the first 30 words: more is a truncation too.
		truncated := enc.Truncated || m.opts.Protocol == ProtocolBLIP &&
			len(strings.Split(tokenizer.PreCaption(text, math.MaxInt32), " ")) > blipMaxWords
		out[i] = m.prepared(enc.IDs, truncated)
	}
	return out, nil
}

// prepared returns the ITC and ITM token ids of a text whose ITC ids
// (starting with [CLS]) are ids: under the blip protocol the ITM branch
// has [ENC] in place of [CLS], as BLIP's models were trained; under hf the
// ids are the same.
func (m *Model) prepared(ids []int32, truncated bool) prepared {
	p := prepared{itc: ids, itm: ids, truncated: truncated}
	if m.opts.Protocol == ProtocolBLIP {
		p.itm = append([]int32{tokenizer.EncID}, ids[1:]...)
	}
	return p
}

// Tokenize tokenises texts under the model's protocol, as EncodeTexts does
// before running the text encoder: each encoding has its Text, Tokens and
// Truncated, and no Embedding. RerankEncodedTexts takes them, so that a
// caller re-ranking the same texts against many images tokenises them
// once.
func (m *Model) Tokenize(texts []string) ([]TextEncoding, error) {
	prep, err := m.prepare(texts)
	if err != nil {
		return nil, err
	}
	out := make([]TextEncoding, len(texts))
	for i, p := range prep {
		out[i] = TextEncoding{Text: texts[i], Tokens: p.itc, Truncated: p.truncated}
	}
	return out, nil
}

// TruncationLimit describes the length texts are cut to, naming the limit
// that binds: BLIP's 30 words and 35 tokens, or the model's
// max_position_embeddings when it is smaller (and always under the hf
// protocol, which has no other limit).
func (m *Model) TruncationLimit() string {
	mpe := m.info.Config.Text.MaxPositionEmbeddings
	if m.opts.Protocol == ProtocolBLIP {
		if mpe < blipMaxTokens {
			return fmt.Sprintf("%d words, %d tokens: the model's max_position_embeddings", blipMaxWords, mpe)
		}
		return fmt.Sprintf("%d words, %d tokens", blipMaxWords, blipMaxTokens)
	}
	return fmt.Sprintf("%d tokens: the model's max_position_embeddings", mpe)
}

// EncodeTexts runs the text encoder (without the image) and returns the ITC
// embeddings.
func (m *Model) EncodeTexts(ctx context.Context, texts []string) ([]TextEncoding, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	prep, err := m.prepare(texts)
	if err != nil {
		return nil, err
	}
	return m.encodeTexts(ctx, texts, prep)
}

func (m *Model) encodeTexts(ctx context.Context, texts []string, prep []prepared) ([]TextEncoding, error) {
	out := make([]TextEncoding, len(texts))
	err := m.forTextBatches(prep, func(p prepared) []int32 { return p.itc }, func(idx []int, tb model.TextBatch) error {
		emb, err := m.net.TextEmbeddings(ctx, tb)
		if err != nil {
			return fmt.Errorf("blipcuda: encoding text %d: %w", idx[0], err)
		}
		d := len(emb) / len(idx)
		for k, i := range idx {
			out[i] = TextEncoding{Text: texts[i], Tokens: prep[i].itc, Truncated: prep[i].truncated,
				Embedding: emb[k*d : (k+1)*d : (k+1)*d]}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forTextBatches runs fn on batches of at most opts.TextBatch texts, given
// by their indices, with the token ids pick selects. Texts are batched in
// order of length, so that each batch pads little, and a batch of at least
// splitMin texts is closed early where the next text would make more than
// 1/splitWaste of its padded tokens padding (textBatches). None of this
// changes a result: a padded key gets exactly zero attention weight
// (exp(−10000 − max) underflows to 0 in float32) and every row is computed
// independently of the others.
func (m *Model) forTextBatches(prep []prepared, pick func(prepared) []int32, fn func(idx []int, tb model.TextBatch) error) error {
	order := make([]int, len(prep))
	lens := make([]int, len(prep))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(pick(prep[order[a]])) < len(pick(prep[order[b]])) })
	for k, i := range order {
		lens[k] = len(pick(prep[i]))
	}
	for _, r := range textBatches(lens, m.opts.TextBatch) {
		idx := order[r[0]:r[1]]
		ids := make([][]int32, len(idx))
		for k, i := range idx {
			ids[k] = pick(prep[i])
		}
		if err := fn(idx, model.PadBatch(ids)); err != nil {
			return err
		}
	}
	return nil
}

// Batch splitting: a batch keeps at least splitMin texts (below that, the
// extra launches or graph replays of another batch cost more than padding
// saves), and beyond that closes when padding would exceed 1/splitWaste of
// its tokens. 256 captions of 10–20 tokens then run in about 8 batches
// instead of one padded to 20 (a quarter of its tokens padding).
const (
	splitMin   = 16
	splitWaste = 8
)

// textBatches cuts texts of ascending lengths lens into batches [start,
// end) of at most size texts each (see splitMin and splitWaste).
func textBatches(lens []int, size int) [][2]int {
	var out [][2]int
	start, sum := 0, 0
	for k, l := range lens {
		n := k - start
		if n == size || (n >= splitMin && (n+1)*l-(sum+l) > (n+1)*l/splitWaste) {
			out = append(out, [2]int{start, k})
			start, sum = k, 0
		}
		sum += l
	}
	if start < len(lens) {
		out = append(out, [2]int{start, len(lens)})
	}
	return out
}

// Scores holds every image × text score. Matrices are indexed
// [image][text].
type Scores struct {
	// Images and Texts name the rows and columns.
	Images []string
	Texts  []string
	// ITMLogits are the raw ITM logits [no-match, match].
	ITMLogits [][][2]float32
	// ITMProb is P(match) = softmax(ITMLogits)[1].
	ITMProb [][]float32
	// ITC is the cosine of the ITC embeddings, in [-1, 1]; not a
	// probability. It is nil when MatchFeatures was given no embeddings.
	ITC [][]float32
	// Truncated reports, per text, that it was cut to the protocol's length.
	Truncated []bool
}

// Match scores every text against every image with both heads: ITM
// (multimodal encoder) and ITC (cosine of the embeddings). Each image is
// encoded once.
func (m *Model) Match(ctx context.Context, images []*Image, texts []string) (*Scores, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if err := checkImages(images); err != nil {
		return nil, err
	}
	prep, err := m.prepare(texts)
	if err != nil {
		return nil, err
	}
	tenc, err := m.encodeTexts(ctx, texts, prep)
	if err != nil {
		return nil, err
	}
	s := newScores(len(images), texts, prep)
	err = m.forImageBatches(ctx, images, func(first int, f *model.ImageFeatures) error {
		emb, err := m.net.ImageEmbeddings(ctx, f)
		if err != nil {
			return err
		}
		d := len(emb) / f.Len()
		for i := 0; i < f.Len(); i++ {
			s.Images[first+i] = images[first+i].Name
			s.ITC[first+i] = ITCRow(emb[i*d:(i+1)*d], tenc)
			if err := m.itm(ctx, f, i, prep, s, first+i); err != nil {
				return err
			}
			m.progress(first+i+1, len(images))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// MatchFeatures scores texts against images encoded earlier by
// EncodeImages with features (for example, re-ranking from a cache). The
// ITC matrix is filled when the encodings carry embeddings.
func (m *Model) MatchFeatures(ctx context.Context, images []ImageEncoding, texts []string) (*Scores, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if len(images) == 0 {
		return nil, errors.New("blipcuda: no images")
	}
	cfg := m.net.Config()
	for i, im := range images {
		if im.Tokens != cfg.NumImageTokens() || im.Width != cfg.Vision.HiddenSize || len(im.Features) != im.Tokens*im.Width {
			return nil, fmt.Errorf("blipcuda: image %d (%s): features %d×%d (%d values) do not fit this model (%d×%d)",
				i, im.Name, im.Tokens, im.Width, len(im.Features), cfg.NumImageTokens(), cfg.Vision.HiddenSize)
		}
	}
	prep, err := m.prepare(texts)
	if err != nil {
		return nil, err
	}
	var tenc []TextEncoding
	withITC := true
	for _, im := range images {
		withITC = withITC && len(im.Embedding) == cfg.ImageTextHiddenSize
	}
	if withITC {
		if tenc, err = m.encodeTexts(ctx, texts, prep); err != nil {
			return nil, err
		}
	}
	s := newScores(len(images), texts, prep)
	if !withITC {
		s.ITC = nil
	}
	for i, im := range images {
		f, err := m.net.UploadImageFeatures(im.Features, 1)
		if err != nil {
			return nil, fmt.Errorf("blipcuda: image %d (%s): %w", i, im.Name, err)
		}
		s.Images[i] = im.Name
		if withITC {
			s.ITC[i] = ITCRow(im.Embedding, tenc)
		}
		err = m.itm(ctx, f, 0, prep, s, i)
		f.Free()
		if err != nil {
			return nil, fmt.Errorf("blipcuda: %w", err)
		}
		m.progress(i+1, len(images))
	}
	return s, nil
}

func newScores(nImages int, texts []string, prep []prepared) *Scores {
	s := &Scores{
		Images:    make([]string, nImages),
		Texts:     append([]string(nil), texts...),
		ITMLogits: make([][][2]float32, nImages),
		ITMProb:   make([][]float32, nImages),
		ITC:       make([][]float32, nImages),
		Truncated: make([]bool, len(texts)),
	}
	for j, p := range prep {
		s.Truncated[j] = p.truncated
	}
	return s
}

// itm fills row `row` of s with image `image` of f against every text.
func (m *Model) itm(ctx context.Context, f *model.ImageFeatures, image int, prep []prepared, s *Scores, row int) error {
	s.ITMLogits[row] = make([][2]float32, len(prep))
	s.ITMProb[row] = make([]float32, len(prep))
	err := m.imageITM(ctx, f, image, prep, func(j int, l [2]float32) {
		s.ITMLogits[row][j] = l
		s.ITMProb[row][j] = matchProb(l[0], l[1])
	})
	if err != nil {
		return fmt.Errorf("ITM of image %d: %w", row, err)
	}
	return nil
}

// imageITM runs the ITM head on image `image` of f against every text of
// prep, in batches of TextBatch (forTextBatches), and gives set each text's
// index and logits. The image's cross-attention keys and values are
// computed once, for all the batches.
func (m *Model) imageITM(ctx context.Context, f *model.ImageFeatures, image int, prep []prepared, set func(j int, l [2]float32)) error {
	if len(prep) == 0 {
		return nil
	}
	kv, err := m.net.CrossKeys(ctx, f, image)
	if err != nil {
		return err
	}
	defer kv.Free()
	return m.forTextBatches(prep, func(p prepared) []int32 { return p.itm }, func(idx []int, tb model.TextBatch) error {
		logits, err := m.net.ITMLogitsKV(ctx, kv, tb)
		if err != nil {
			return err
		}
		for k, j := range idx {
			set(j, [2]float32{logits[2*k], logits[2*k+1]})
		}
		return nil
	})
}

// matchProb is softmax([l0, l1])[1], computed stably.
func matchProb(l0, l1 float32) float32 {
	return float32(1 / (1 + math.Exp(float64(l0)-float64(l1))))
}

// ITCRow returns the ITC scores of one image embedding against each text
// embedding: their dot products, which are cosines since both are unit
// vectors. Model.Match computes its ITC matrix with it.
func ITCRow(img []float32, texts []TextEncoding) []float32 {
	row := make([]float32, len(texts))
	for j, t := range texts {
		var s float32
		for k, v := range img {
			s += v * t.Embedding[k]
		}
		row[j] = s
	}
	return row
}
