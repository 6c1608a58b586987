package model

import (
	"fmt"
	"strings"
)

// Variant is one published BLIP ITM checkpoint.
type Variant struct {
	// Name is the short name blipcuda accepts: base-coco, base-flickr,
	// large-coco, large-flickr.
	Name string
	// Architecture is the image encoder: "ViT-B/16" or "ViT-L/16".
	Architecture string
	// TrainingSet is the dataset the retrieval model was fine-tuned on.
	TrainingSet string
	// HubID is the Hugging Face Hub repository.
	HubID string
	// Config is the architecture. The checkpoint's own config.json is what
	// a loaded model runs; this one serves listings, benchmarks and random
	// weights, with the 12 text heads the weights were trained with.
	Config Config
	// WeightsSize is the size in bytes of the float32 weights file
	// (pytorch_model.bin) on the Hub.
	WeightsSize int64
}

// NumParams returns the variant's parameter count.
func (v Variant) NumParams() int64 { return v.Config.NumParams() }

// BaseConfig returns the ViT-B/16 architecture of blip-itm-base-*: vision
// width 768, 12 layers, 12 heads; BERT-base text encoder with 12 heads.
func BaseConfig() Config {
	c := DefaultConfig()
	c.Text.NumAttentionHeads = 12
	return c
}

// LargeConfig returns the ViT-L/16 architecture of blip-itm-large-*: vision
// width 1024, 24 layers, 16 heads, MLP 4096; the same text encoder, whose
// cross-attention reads 1024-wide image features.
func LargeConfig() Config {
	c := BaseConfig()
	c.Vision.HiddenSize = 1024
	c.Vision.IntermediateSize = 4096
	c.Vision.NumHiddenLayers = 24
	c.Vision.NumAttentionHeads = 16
	c.Text.EncoderHiddenSize = 1024
	return c
}

// Family lists the four BLIP ITM checkpoints.
func Family() []Variant {
	return []Variant{
		{"base-coco", "ViT-B/16", "COCO", "Salesforce/blip-itm-base-coco", BaseConfig(), 895_000_000},
		{"base-flickr", "ViT-B/16", "Flickr30k", "Salesforce/blip-itm-base-flickr", BaseConfig(), 895_000_000},
		{"large-coco", "ViT-L/16", "COCO", "Salesforce/blip-itm-large-coco", LargeConfig(), 1_790_000_000},
		{"large-flickr", "ViT-L/16", "Flickr30k", "Salesforce/blip-itm-large-flickr", LargeConfig(), 1_790_000_000},
	}
}

// LookupVariant finds a variant by short name ("base-coco") or Hub id
// ("Salesforce/blip-itm-base-coco"), case-insensitively.
func LookupVariant(name string) (Variant, bool) {
	for _, v := range Family() {
		if strings.EqualFold(name, v.Name) || strings.EqualFold(name, v.HubID) {
			return v, true
		}
	}
	return Variant{}, false
}

// VariantNames returns the short names, for messages.
func VariantNames() string {
	var names []string
	for _, v := range Family() {
		names = append(names, v.Name)
	}
	return strings.Join(names, ", ")
}

// String formats the variant as one line.
func (v Variant) String() string {
	return fmt.Sprintf("%s (%s, %s, %s, %.0fM parameters)", v.Name, v.Architecture, v.TrainingSet, v.HubID,
		float64(v.NumParams())/1e6)
}
