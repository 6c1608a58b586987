package model

import "fmt"

// Param names one tensor of the checkpoint and the shape the configuration
// requires of it.
type Param struct {
	Name  string
	Shape []int
}

// Len returns the number of elements of the parameter.
func (p Param) Len() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// IgnoredTensors lists checkpoint tensors that are not parameters of the
// network and are skipped when present: the text position ids buffer that
// the December 2022 uploads saved.
var IgnoredTensors = []string{"text_encoder.embeddings.position_ids"}

func isIgnored(name string) bool {
	for _, n := range IgnoredTensors {
		if n == name {
			return true
		}
	}
	return false
}

// Params lists every tensor of a BlipForImageTextRetrieval state dict with
// its shape, in a stable order: vision, text, heads. The names are the
// module paths transformers uses.
func (c Config) Params() []Param {
	var ps []Param
	add := func(name string, shape ...int) { ps = append(ps, Param{name, shape}) }
	v, t := c.Vision, c.Text
	dv, dt := v.HiddenSize, t.HiddenSize

	add("vision_model.embeddings.class_embedding", 1, 1, dv)
	add("vision_model.embeddings.patch_embedding.weight", dv, NumChannels, v.PatchSize, v.PatchSize)
	add("vision_model.embeddings.patch_embedding.bias", dv)
	add("vision_model.embeddings.position_embedding", 1, c.NumImageTokens(), dv)
	for i := 0; i < v.NumHiddenLayers; i++ {
		p := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		add(p+"layer_norm1.weight", dv)
		add(p+"layer_norm1.bias", dv)
		add(p+"self_attn.qkv.weight", 3*dv, dv)
		add(p+"self_attn.qkv.bias", 3*dv)
		add(p+"self_attn.projection.weight", dv, dv)
		add(p+"self_attn.projection.bias", dv)
		add(p+"layer_norm2.weight", dv)
		add(p+"layer_norm2.bias", dv)
		add(p+"mlp.fc1.weight", v.IntermediateSize, dv)
		add(p+"mlp.fc1.bias", v.IntermediateSize)
		add(p+"mlp.fc2.weight", dv, v.IntermediateSize)
		add(p+"mlp.fc2.bias", dv)
	}
	add("vision_model.post_layernorm.weight", dv)
	add("vision_model.post_layernorm.bias", dv)

	add("text_encoder.embeddings.word_embeddings.weight", t.VocabSize, dt)
	add("text_encoder.embeddings.position_embeddings.weight", t.MaxPositionEmbeddings, dt)
	add("text_encoder.embeddings.LayerNorm.weight", dt)
	add("text_encoder.embeddings.LayerNorm.bias", dt)
	linear := func(name string, out, in int) {
		add(name+".weight", out, in)
		add(name+".bias", out)
	}
	norm := func(name string, d int) {
		add(name+".weight", d)
		add(name+".bias", d)
	}
	for i := 0; i < t.NumHiddenLayers; i++ {
		p := fmt.Sprintf("text_encoder.encoder.layer.%d.", i)
		linear(p+"attention.self.query", dt, dt)
		linear(p+"attention.self.key", dt, dt)
		linear(p+"attention.self.value", dt, dt)
		linear(p+"attention.output.dense", dt, dt)
		norm(p+"attention.output.LayerNorm", dt)
		linear(p+"crossattention.self.query", dt, dt)
		linear(p+"crossattention.self.key", dt, t.EncoderHiddenSize)
		linear(p+"crossattention.self.value", dt, t.EncoderHiddenSize)
		linear(p+"crossattention.output.dense", dt, dt)
		norm(p+"crossattention.output.LayerNorm", dt)
		linear(p+"intermediate.dense", t.IntermediateSize, dt)
		linear(p+"output.dense", dt, t.IntermediateSize)
		norm(p+"output.LayerNorm", dt)
	}

	linear("vision_proj", c.ImageTextHiddenSize, dv)
	linear("text_proj", c.ImageTextHiddenSize, dt)
	linear("itm_head", 2, dt)
	return ps
}
