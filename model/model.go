package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/blipcuda/blipcuda/ops"
)

// linear is a Linear layer's weight [out, in] and bias [out] on a backend.
type linear struct{ w, b ops.Tensor }

// norm is a LayerNorm's weight and bias [d] and epsilon.
type norm struct {
	w, b ops.Tensor
	eps  float32
}

type visionLayer struct {
	ln1, ln2   norm
	qkv        linear // the fused projection: rows [0,D) q, [D,2D) k, [2D,3D) v
	proj       linear
	fc1, fc2   linear
	heads      int
	headScale  float32
	hiddenSize int
}

type textLayer struct {
	qkv, out      linear // qkv: query, key and value fused at load, [3D, D]
	attnNorm      norm
	cq, crossOut  linear // the cross-attention keys and values are in Model.crossKV
	crossNorm     norm
	inter, output linear
	outNorm       norm
}

// Model is a BLIP ITM network whose weights live on a backend. It is not
// safe for concurrent use: callers serialise calls (the root package does).
type Model struct {
	cfg Config
	be  ops.Backend

	// Vision.
	patchW, patchB, cls, pos ops.Tensor
	vision                   []visionLayer
	postNorm                 norm

	// Text.
	wordEmb, posEmb ops.Tensor
	embNorm         norm
	text            []textLayer
	// crossKV is every text layer's cross-attention key and value
	// projections side by side, [2·layers·D, vision width]: rows
	// [2iD, (2i+1)D) are layer i's key, the next D its value. One matrix
	// multiply gives an image's keys and values for all layers.
	crossKV linear

	// Heads.
	visionProj, textProj, itmHead linear

	weights []ops.Tensor // everything uploaded, for Close
	tracer  TraceFunc

	// Captured forward passes (graphs.go).
	plans    map[planKey]*plan
	tick     uint64
	noGraphs bool
	failed   map[planKey]bool // shapes whose capture failed
	graphErr error
	planKV   map[int]*planKVBuf // by image tokens: the ITM plans' cross keys and values
	kvSeq    uint64             // the last CrossKeys id given
}

// New uploads w to the backend and returns the model. w must have been
// checked against cfg (OpenWeights, RandomWeights and ZeroWeights do that).
// The backend may keep references to w's memory (the CPU backend does), so
// w must stay open until the model is closed.
func New(be ops.Backend, cfg Config, w *Weights) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, be: be}
	var firstErr error
	get := func(name string) HostTensor {
		t, ok := w.Tensor(name)
		if !ok && firstErr == nil {
			firstErr = fmt.Errorf("%w: %s: tensor %s missing", ErrWeights, w.Source, name)
		}
		return t
	}
	up := func(data []float32, shape ...int) ops.Tensor {
		if firstErr != nil {
			return nil
		}
		t, err := be.Upload(data, shape...)
		if err != nil {
			firstErr = fmt.Errorf("model: uploading weights: %w", err)
			return nil
		}
		m.weights = append(m.weights, t)
		return t
	}
	tensor := func(name string, shape ...int) ops.Tensor {
		h := get(name)
		if firstErr != nil {
			return nil
		}
		if shape == nil {
			shape = h.Shape
		}
		return up(h.Data, shape...)
	}
	lin := func(name string) linear {
		return linear{w: tensor(name + ".weight"), b: tensor(name + ".bias")}
	}
	nrm := func(name string, eps float64) norm {
		return norm{w: tensor(name + ".weight"), b: tensor(name + ".bias"), eps: float32(eps)}
	}

	v, t := cfg.Vision, cfg.Text
	dv := v.HiddenSize
	m.patchW = tensor("vision_model.embeddings.patch_embedding.weight", dv, NumChannels*v.PatchSize*v.PatchSize)
	m.patchB = tensor("vision_model.embeddings.patch_embedding.bias")
	m.cls = tensor("vision_model.embeddings.class_embedding", dv)
	m.pos = tensor("vision_model.embeddings.position_embedding", cfg.NumImageTokens(), dv)
	for i := 0; i < v.NumHiddenLayers; i++ {
		p := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		m.vision = append(m.vision, visionLayer{
			ln1:        nrm(p+"layer_norm1", v.LayerNormEps),
			qkv:        lin(p + "self_attn.qkv"),
			proj:       lin(p + "self_attn.projection"),
			ln2:        nrm(p+"layer_norm2", v.LayerNormEps),
			fc1:        lin(p + "mlp.fc1"),
			fc2:        lin(p + "mlp.fc2"),
			heads:      v.NumAttentionHeads,
			headScale:  float32(1 / math.Sqrt(float64(dv/v.NumAttentionHeads))),
			hiddenSize: dv,
		})
	}
	m.postNorm = nrm("vision_model.post_layernorm", v.LayerNormEps)

	m.wordEmb = tensor("text_encoder.embeddings.word_embeddings.weight")
	m.posEmb = tensor("text_encoder.embeddings.position_embeddings.weight")
	m.embNorm = nrm("text_encoder.embeddings.LayerNorm", t.LayerNormEps)
	// stack uploads the named linears' weights and biases stacked by rows
	// (host copies: the checkpoint keeps them apart).
	stack := func(names ...string) linear {
		var w, b []float32
		in := -1
		for _, n := range names {
			hw, hb := get(n+".weight"), get(n+".bias")
			if firstErr != nil {
				return linear{}
			}
			if in < 0 {
				in = hw.Shape[1]
			}
			w, b = append(w, hw.Data...), append(b, hb.Data...)
		}
		return linear{w: up(w, len(b), in), b: up(b, len(b))}
	}
	var crossKV []string
	for i := 0; i < t.NumHiddenLayers; i++ {
		p := fmt.Sprintf("text_encoder.encoder.layer.%d.", i)
		m.text = append(m.text, textLayer{
			qkv:       stack(p+"attention.self.query", p+"attention.self.key", p+"attention.self.value"),
			out:       lin(p + "attention.output.dense"),
			attnNorm:  nrm(p+"attention.output.LayerNorm", t.LayerNormEps),
			cq:        lin(p + "crossattention.self.query"),
			crossOut:  lin(p + "crossattention.output.dense"),
			crossNorm: nrm(p+"crossattention.output.LayerNorm", t.LayerNormEps),
			inter:     lin(p + "intermediate.dense"),
			output:    lin(p + "output.dense"),
			outNorm:   nrm(p+"output.LayerNorm", t.LayerNormEps),
		})
		crossKV = append(crossKV, p+"crossattention.self.key", p+"crossattention.self.value")
	}
	m.crossKV = stack(crossKV...)
	m.visionProj = lin("vision_proj")
	m.textProj = lin("text_proj")
	m.itmHead = lin("itm_head")
	if firstErr != nil {
		m.Close()
		return nil, firstErr
	}
	return m, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Backend returns the backend the model runs on.
func (m *Model) Backend() ops.Backend { return m.be }

// Close frees the model's tensors on its backend. It does not close the
// backend or the Weights.
func (m *Model) Close() error {
	m.freePlans()
	for _, t := range m.weights {
		m.be.Free(t)
	}
	m.weights = nil
	return nil
}

// scratch tracks the activations of one call so they are freed together.
type scratch struct {
	be  ops.Backend
	ts  []ops.Tensor
	err error
}

func (s *scratch) new(shape ...int) ops.Tensor {
	if s.err != nil {
		return nil
	}
	t, err := s.be.New(shape...)
	if err != nil {
		s.err = fmt.Errorf("model: allocating %v: %w", shape, err)
		return nil
	}
	s.ts = append(s.ts, t)
	return t
}

func (s *scratch) upload(data []float32, shape ...int) ops.Tensor {
	if s.err != nil {
		return nil
	}
	t, err := s.be.Upload(data, shape...)
	if err != nil {
		s.err = fmt.Errorf("model: uploading %v: %w", shape, err)
		return nil
	}
	s.ts = append(s.ts, t)
	return t
}

// do runs an operation unless an earlier one failed, keeping the first
// error. op names the step for the error message.
func (s *scratch) do(op string, f func() error) {
	if s.err != nil {
		return
	}
	if err := f(); err != nil {
		s.err = fmt.Errorf("model: %s: %w", op, err)
	}
}

func (s *scratch) free() {
	for _, t := range s.ts {
		s.be.Free(t)
	}
	s.ts = nil
}

// ErrInput reports arguments that do not fit the model (wrong pixel count,
// token ids out of range, sequences too long).
var ErrInput = errors.New("model: bad input")
