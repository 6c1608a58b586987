// Package model is the BLIP image-text matching network (transformers'
// BlipForImageTextRetrieval): configuration, checkpoint loading, the ViT
// image encoder, the BERT text encoder with cross-attention, and the ITM and
// ITC heads.
//
// The network is composed from ops.Backend operations only, so the same code
// runs on every backend; this package never imports a device package. Every
// dimension comes from the checkpoint's config.json, never from constants.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

// VisionConfig is the vision_config block of config.json (BlipVisionConfig).
type VisionConfig struct {
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	ImageSize         int     `json:"image_size"`
	PatchSize         int     `json:"patch_size"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
	HiddenAct         string  `json:"hidden_act"`
}

// TextConfig is the text_config block of config.json (BlipTextConfig).
type TextConfig struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	EncoderHiddenSize     int     `json:"encoder_hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	HiddenAct             string  `json:"hidden_act"`
	PadTokenID            int     `json:"pad_token_id"`
	BosTokenID            int     `json:"bos_token_id"`
	SepTokenID            int     `json:"sep_token_id"`
}

// Config is a BLIP ITM checkpoint's config.json (BlipConfig).
type Config struct {
	Vision VisionConfig `json:"vision_config"`
	Text   TextConfig   `json:"text_config"`
	// ImageTextHiddenSize is the width of the ITC embeddings (256).
	ImageTextHiddenSize int `json:"image_text_hidden_size"`
}

// NumChannels is the number of image channels. transformers hard-codes 3 in
// BlipVisionEmbeddings; it is not read from the config.
const NumChannels = 3

// DefaultVisionConfig returns BlipVisionConfig's defaults (transformers),
// which fill any field config.json omits.
func DefaultVisionConfig() VisionConfig {
	return VisionConfig{
		HiddenSize:        768,
		IntermediateSize:  3072,
		NumHiddenLayers:   12,
		NumAttentionHeads: 12,
		ImageSize:         384,
		PatchSize:         16,
		LayerNormEps:      1e-5,
		HiddenAct:         "gelu",
	}
}

// DefaultTextConfig returns BlipTextConfig's defaults (transformers). Note
// the default of 8 attention heads: a config.json that omits the field runs
// with 8 heads in transformers, and so here.
func DefaultTextConfig() TextConfig {
	return TextConfig{
		VocabSize:             30524,
		HiddenSize:            768,
		EncoderHiddenSize:     768,
		IntermediateSize:      3072,
		NumHiddenLayers:       12,
		NumAttentionHeads:     8,
		MaxPositionEmbeddings: 512,
		LayerNormEps:          1e-12,
		HiddenAct:             "gelu",
		PadTokenID:            0,
		BosTokenID:            30522,
		SepTokenID:            102,
	}
}

// DefaultConfig returns BlipConfig's defaults: the base (ViT-B/16)
// architecture, with the text heads as BlipTextConfig defaults them.
func DefaultConfig() Config {
	c := Config{Vision: DefaultVisionConfig(), Text: DefaultTextConfig(), ImageTextHiddenSize: 256}
	c.Text.EncoderHiddenSize = c.Vision.HiddenSize
	return c
}

// ErrConfig reports a config.json that cannot describe a BLIP ITM model.
var ErrConfig = errors.New("model: invalid config")

// ParseConfig reads a config.json document. Fields it omits take
// transformers' defaults; the text encoder's cross-attention width is the
// vision width, as BlipConfig sets it.
func ParseConfig(data []byte) (Config, error) {
	// Decode into the defaults so omitted fields keep them.
	var raw struct {
		Vision              *json.RawMessage `json:"vision_config"`
		Text                *json.RawMessage `json:"text_config"`
		ImageTextHiddenSize *int             `json:"image_text_hidden_size"`
		Architectures       []string         `json:"architectures"`
		ModelType           string           `json:"model_type"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			// A document that is not an object ([1,2,3], "x", 7): say so
			// instead of naming a Go type.
			return Config{}, fmt.Errorf("%w: the document is a JSON %s, not an object", ErrConfig, te.Value)
		}
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, jsonError(err))
	}
	if raw.ModelType != "" && raw.ModelType != "blip" {
		return Config{}, fmt.Errorf("%w: model_type is %q, want \"blip\"", ErrConfig, raw.ModelType)
	}
	c := DefaultConfig()
	if raw.Vision != nil && string(*raw.Vision) != "null" {
		if err := json.Unmarshal(*raw.Vision, &c.Vision); err != nil {
			return Config{}, fmt.Errorf("%w: vision_config: %v", ErrConfig, jsonError(err))
		}
	}
	if raw.Text != nil && string(*raw.Text) != "null" {
		if err := json.Unmarshal(*raw.Text, &c.Text); err != nil {
			return Config{}, fmt.Errorf("%w: text_config: %v", ErrConfig, jsonError(err))
		}
	}
	if raw.ImageTextHiddenSize != nil {
		c.ImageTextHiddenSize = *raw.ImageTextHiddenSize
	}
	// BlipConfig.__init__ overwrites the text encoder's cross-attention
	// input width with the vision width, whatever text_config says.
	c.Text.EncoderHiddenSize = c.Vision.HiddenSize
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// jsonError rewrites the decoder's type errors without Go type names: "a
// JSON string where a number is needed" rather than "cannot unmarshal
// string into Go struct field VisionConfig.hidden_size of type int".
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	want := "a different type"
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int64, reflect.Float64:
		want = "a number"
	case reflect.String:
		want = "a string"
	case reflect.Struct, reflect.Map:
		want = "an object"
	case reflect.Slice:
		want = "an array"
	}
	if te.Field == "" {
		return fmt.Errorf("a JSON %s where %s is needed", te.Value, want)
	}
	return fmt.Errorf("%s is a JSON %s, want %s", te.Field, te.Value, want)
}

// LoadConfig reads and validates a config.json file. Only a regular file
// of at most bounded.ConfigLimit bytes is read.
func LoadConfig(path string) (Config, error) {
	data, err := bounded.ReadFile(path, bounded.ConfigLimit)
	if err != nil {
		return Config{}, fmt.Errorf("model: reading config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// maxDim bounds any single tensor dimension read from a weights file, so
// that products of a few of them cannot overflow.
const maxDim = 1 << 20

// Budgets for a whole configuration. BLIP ITM large has 0.47 G parameters
// and its largest activation per image (the vision attention scores,
// 16 heads × 577² tokens) takes 21 MB: a configuration may describe a model
// a few times larger, never one that cannot fit in memory. They are checked
// by Validate before anything proportional to the configuration is built.
const (
	// MaxParams bounds the number of parameters (8 GB at float32).
	MaxParams = 2 << 30
	// MaxActivationBytes bounds the largest activation of one image or
	// text at float32: attention scores, MLP hidden states, embeddings.
	MaxActivationBytes = 1 << 30
)

// Validate checks that the configuration describes a model this package can
// build within the budgets above.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	// Per-dimension caps: each a few times the largest value any BERT or
	// ViT checkpoint uses.
	pos := []struct {
		name string
		v    int
		max  int
	}{
		{"vision_config.hidden_size", c.Vision.HiddenSize, 16384},
		{"vision_config.intermediate_size", c.Vision.IntermediateSize, 65536},
		{"vision_config.num_hidden_layers", c.Vision.NumHiddenLayers, 256},
		{"vision_config.num_attention_heads", c.Vision.NumAttentionHeads, 256},
		{"vision_config.image_size", c.Vision.ImageSize, 8192},
		{"vision_config.patch_size", c.Vision.PatchSize, 1024},
		{"text_config.vocab_size", c.Text.VocabSize, 1 << 20},
		{"text_config.hidden_size", c.Text.HiddenSize, 16384},
		{"text_config.intermediate_size", c.Text.IntermediateSize, 65536},
		{"text_config.num_hidden_layers", c.Text.NumHiddenLayers, 256},
		{"text_config.num_attention_heads", c.Text.NumAttentionHeads, 256},
		{"text_config.max_position_embeddings", c.Text.MaxPositionEmbeddings, 65536},
		{"image_text_hidden_size", c.ImageTextHiddenSize, 16384},
	}
	for _, p := range pos {
		if p.v <= 0 || p.v > p.max {
			return bad("%s = %d, want 1..%d", p.name, p.v, p.max)
		}
	}
	for _, id := range []struct {
		name string
		v    int
	}{{"text_config.pad_token_id", c.Text.PadTokenID}, {"text_config.bos_token_id", c.Text.BosTokenID}, {"text_config.sep_token_id", c.Text.SepTokenID}} {
		if id.v < 0 || id.v >= c.Text.VocabSize {
			return bad("%s = %d is outside the vocabulary (vocab_size %d)", id.name, id.v, c.Text.VocabSize)
		}
	}
	if c.Vision.HiddenSize%c.Vision.NumAttentionHeads != 0 {
		return bad("vision_config.hidden_size %d is not a multiple of num_attention_heads %d",
			c.Vision.HiddenSize, c.Vision.NumAttentionHeads)
	}
	if c.Text.HiddenSize%c.Text.NumAttentionHeads != 0 {
		return bad("text_config.hidden_size %d is not a multiple of num_attention_heads %d",
			c.Text.HiddenSize, c.Text.NumAttentionHeads)
	}
	if c.Vision.ImageSize%c.Vision.PatchSize != 0 {
		return bad("vision_config.image_size %d is not a multiple of patch_size %d",
			c.Vision.ImageSize, c.Vision.PatchSize)
	}
	if n := c.NumParams(); n > MaxParams {
		return bad("the configuration describes %d parameters (%s at float32), more than the %d this program accepts",
			n, byteSize(4*n), int64(MaxParams))
	}
	if name, n := c.LargestActivation(); n > MaxActivationBytes {
		return bad("%s would take %s per input, more than the %s budget (vision_config.image_size %d / patch_size %d = %d tokens; text_config.max_position_embeddings %d)",
			name, byteSize(n), byteSize(MaxActivationBytes), c.Vision.ImageSize, c.Vision.PatchSize, c.NumImageTokens(), c.Text.MaxPositionEmbeddings)
	}
	for _, e := range []struct {
		name string
		v    float64
	}{{"vision_config.layer_norm_eps", c.Vision.LayerNormEps}, {"text_config.layer_norm_eps", c.Text.LayerNormEps}} {
		if !(e.v > 0) || math.IsInf(e.v, 0) || e.v > 1 {
			return bad("%s = %g, want a small positive number", e.name, e.v)
		}
	}
	if c.Vision.HiddenAct != "gelu" {
		return bad("vision_config.hidden_act %q is not supported (only the exact erf \"gelu\")", c.Vision.HiddenAct)
	}
	if c.Text.HiddenAct != "gelu" {
		return bad("text_config.hidden_act %q is not supported (only the exact erf \"gelu\")", c.Text.HiddenAct)
	}
	return nil
}

// NumPatches returns the number of image patches, (image_size/patch_size)².
func (c Config) NumPatches() int {
	g := c.Vision.ImageSize / c.Vision.PatchSize
	return g * g
}

// NumImageTokens returns the vision sequence length: the patches plus the
// class token (577 for 384×384 images and 16×16 patches).
func (c Config) NumImageTokens() int { return c.NumPatches() + 1 }

// NumParams returns the number of parameters (elements) of the network:
// the total length of Params, computed without building the list, so that
// it can be checked before anything proportional to the configuration is
// allocated.
func (c Config) NumParams() int64 {
	v, t := c.Vision, c.Text
	dv, dt, iv, it := int64(v.HiddenSize), int64(t.HiddenSize), int64(v.IntermediateSize), int64(t.IntermediateSize)
	de, dp := int64(t.EncoderHiddenSize), int64(c.ImageTextHiddenSize)
	p := int64(v.PatchSize)
	n := dv + dv*NumChannels*p*p + dv + int64(c.NumImageTokens())*dv
	n += int64(v.NumHiddenLayers) * (4*dv + 3*dv*dv + 3*dv + dv*dv + dv + 2*iv*dv + iv + dv)
	n += 2 * dv
	n += (int64(t.VocabSize) + int64(t.MaxPositionEmbeddings) + 2) * dt
	perText := 4*(dt*dt+dt) + 2*dt + // self-attention and its LayerNorm
		2*(dt*dt+dt) + 2*(dt*de+dt) + 2*dt + // cross-attention
		(it*dt + it) + (dt*it + dt) + 2*dt // MLP
	n += int64(t.NumHiddenLayers) * perText
	n += dp*dv + dp + dp*dt + dp + 2*dt + 2
	return n
}

// LargestActivation names the largest activation of one input (an image,
// or a text at max_position_embeddings tokens) and its size in bytes at
// float32.
func (c Config) LargestActivation() (string, int64) {
	ti, tt := int64(c.NumImageTokens()), int64(c.Text.MaxPositionEmbeddings)
	cands := []struct {
		name string
		n    int64
	}{
		{"the vision attention scores", int64(c.Vision.NumAttentionHeads) * ti * ti},
		{"the vision MLP activations", ti * int64(c.Vision.IntermediateSize)},
		{"the text attention scores", int64(c.Text.NumAttentionHeads) * tt * tt},
		{"the cross-attention scores", int64(c.Text.NumAttentionHeads) * tt * ti},
		{"the text MLP activations", tt * int64(c.Text.IntermediateSize)},
	}
	best := cands[0]
	for _, x := range cands[1:] {
		if x.n > best.n {
			best = x
		}
	}
	return best.name, 4 * best.n
}

// byteSize formats n bytes for messages: "17.2 GB".
func byteSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d bytes", n)
}
