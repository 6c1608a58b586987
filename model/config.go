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
	"os"
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
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if raw.ModelType != "" && raw.ModelType != "blip" {
		return Config{}, fmt.Errorf("%w: model_type is %q, want \"blip\"", ErrConfig, raw.ModelType)
	}
	c := DefaultConfig()
	if raw.Vision != nil && string(*raw.Vision) != "null" {
		if err := json.Unmarshal(*raw.Vision, &c.Vision); err != nil {
			return Config{}, fmt.Errorf("%w: vision_config: %v", ErrConfig, err)
		}
	}
	if raw.Text != nil && string(*raw.Text) != "null" {
		if err := json.Unmarshal(*raw.Text, &c.Text); err != nil {
			return Config{}, fmt.Errorf("%w: text_config: %v", ErrConfig, err)
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

// LoadConfig reads and validates a config.json file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("model: reading config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// maxDim bounds every dimension so that products of a few of them cannot
// overflow and absurd files are refused before any allocation.
const maxDim = 1 << 20

// Validate checks that the configuration describes a model this package can
// build.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	pos := []struct {
		name string
		v    int
	}{
		{"vision_config.hidden_size", c.Vision.HiddenSize},
		{"vision_config.intermediate_size", c.Vision.IntermediateSize},
		{"vision_config.num_hidden_layers", c.Vision.NumHiddenLayers},
		{"vision_config.num_attention_heads", c.Vision.NumAttentionHeads},
		{"vision_config.image_size", c.Vision.ImageSize},
		{"vision_config.patch_size", c.Vision.PatchSize},
		{"text_config.vocab_size", c.Text.VocabSize},
		{"text_config.hidden_size", c.Text.HiddenSize},
		{"text_config.intermediate_size", c.Text.IntermediateSize},
		{"text_config.num_hidden_layers", c.Text.NumHiddenLayers},
		{"text_config.num_attention_heads", c.Text.NumAttentionHeads},
		{"text_config.max_position_embeddings", c.Text.MaxPositionEmbeddings},
		{"image_text_hidden_size", c.ImageTextHiddenSize},
	}
	for _, p := range pos {
		if p.v <= 0 || p.v > maxDim {
			return bad("%s = %d, want 1..%d", p.name, p.v, maxDim)
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
	if g := c.Vision.ImageSize / c.Vision.PatchSize; g > 1024 {
		return bad("vision_config: %d×%d patches is too many", g, g)
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
