package model

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfigFromFiles(t *testing.T) {
	base, err := LoadConfig(filepath.Join(fixtureDir, "tiny-base", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if base.Vision.HiddenSize != 16 || base.Text.HiddenSize != 16 || base.Text.NumAttentionHeads != 4 ||
		base.Vision.NumAttentionHeads != 2 || base.Vision.NumHiddenLayers != 2 || base.Text.IntermediateSize != 24 {
		t.Errorf("tiny-base config read wrong: %+v", base)
	}
	large, err := LoadConfig(filepath.Join(fixtureDir, "tiny-large", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	// tiny-large's config.json omits text_config.num_attention_heads, so
	// transformers' default (8) applies — the blip-itm-base-flickr pitfall.
	if large.Text.NumAttentionHeads != 8 {
		t.Errorf("omitted text heads = %d, want transformers' default 8", large.Text.NumAttentionHeads)
	}
	if large.Text.EncoderHiddenSize != 24 || large.Vision.HiddenSize != 24 {
		t.Errorf("cross-attention width %d, vision width %d; want 24 (BlipConfig copies the vision width)",
			large.Text.EncoderHiddenSize, large.Vision.HiddenSize)
	}
	if large.Vision.LayerNormEps != 1e-5 || large.Text.LayerNormEps != 1e-12 {
		t.Errorf("eps = %g / %g", large.Vision.LayerNormEps, large.Text.LayerNormEps)
	}
	if got := large.NumImageTokens(); got != 577 {
		t.Errorf("NumImageTokens = %d, want 577", got)
	}
}

func TestParseConfigDefaultsAndOverride(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type":"blip","text_config":{"encoder_hidden_size":5},"vision_config":{"hidden_size":1024,"num_attention_heads":16}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Text.EncoderHiddenSize != 1024 {
		t.Errorf("encoder_hidden_size = %d, want the vision width 1024 whatever the file says", c.Text.EncoderHiddenSize)
	}
	if c.Text.NumAttentionHeads != 8 || c.Vision.NumHiddenLayers != 12 || c.ImageTextHiddenSize != 256 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestParseConfigRejects(t *testing.T) {
	cases := map[string]string{
		"not json":          `{`,
		"wrong model type":  `{"model_type":"clip"}`,
		"heads not divisor": `{"text_config":{"hidden_size":30,"num_attention_heads":4}}`,
		"zero layers":       `{"vision_config":{"num_hidden_layers":0}}`,
		"negative width":    `{"vision_config":{"hidden_size":-768}}`,
		"patch not divisor": `{"vision_config":{"image_size":385}}`,
		"other activation":  `{"text_config":{"hidden_act":"relu"}}`,
		"bad eps":           `{"text_config":{"layer_norm_eps":0}}`,
		"huge":              `{"text_config":{"vocab_size":100000000000}}`,
		"vision as number":  `{"vision_config":7}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(doc))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	_, err := LoadConfig("no/such/config.json")
	if err == nil || !strings.Contains(err.Error(), "no/such/config.json") {
		t.Fatalf("err = %v, want it to name the file", err)
	}
}

func TestFamilyParameterCounts(t *testing.T) {
	f := loadFixtures(t)
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"base", BaseConfig()}, {"large", LargeConfig()}} {
		want := f.Real[c.name]
		if got := c.cfg.NumParams(); got != want.NumParams {
			t.Errorf("%s: NumParams = %d, transformers counts %d", c.name, got, want.NumParams)
		}
		if got := len(c.cfg.Params()); got != want.NumTensors {
			t.Errorf("%s: %d tensors, transformers has %d", c.name, got, want.NumTensors)
		}
	}
	for _, v := range Family() {
		got, ok := LookupVariant(v.HubID)
		if !ok || got.Name != v.Name {
			t.Errorf("LookupVariant(%q) = %v, %v", v.HubID, got, ok)
		}
		if _, ok := LookupVariant(strings.ToUpper(v.Name)); !ok {
			t.Errorf("LookupVariant is case-sensitive for %s", v.Name)
		}
	}
	if _, ok := LookupVariant("base-cocoa"); ok {
		t.Error("LookupVariant accepted an unknown name")
	}
}
