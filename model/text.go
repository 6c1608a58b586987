package model

import (
	"context"
	"fmt"
	"math"

	"github.com/blipcuda/blipcuda/ops"
)

// TextBatch is a batch of tokenised texts, right-padded to one length.
type TextBatch struct {
	// IDs holds Batch×Len token ids, row-major.
	IDs []int32
	// Mask holds Batch×Len values, 1 for a real token and 0 for padding.
	Mask []int32
	// Batch is the number of texts; Len the padded length.
	Batch, Len int
}

// PadBatch right-pads token id sequences with id 0 ([PAD]) into a batch,
// masking the padding.
func PadBatch(ids [][]int32) TextBatch {
	n := 0
	for _, s := range ids {
		n = max(n, len(s))
	}
	tb := TextBatch{Batch: len(ids), Len: n, IDs: make([]int32, len(ids)*n), Mask: make([]int32, len(ids)*n)}
	for i, s := range ids {
		copy(tb.IDs[i*n:], s)
		for j := range s {
			tb.Mask[i*n+j] = 1
		}
	}
	return tb
}

// validate checks the batch against the model.
func (tb TextBatch) validate(cfg Config) error {
	t := cfg.Text
	if tb.Batch <= 0 || tb.Len <= 0 {
		return fmt.Errorf("%w: empty text batch (%d×%d)", ErrInput, tb.Batch, tb.Len)
	}
	if tb.Len > t.MaxPositionEmbeddings {
		return fmt.Errorf("%w: %d tokens exceed the model's %d positions", ErrInput, tb.Len, t.MaxPositionEmbeddings)
	}
	if len(tb.IDs) != tb.Batch*tb.Len || len(tb.Mask) != tb.Batch*tb.Len {
		return fmt.Errorf("%w: text batch %d×%d has %d ids and %d mask values",
			ErrInput, tb.Batch, tb.Len, len(tb.IDs), len(tb.Mask))
	}
	for i, id := range tb.IDs {
		if id < 0 || int(id) >= t.VocabSize {
			return fmt.Errorf("%w: text %d: token id %d outside the vocabulary [0, %d)",
				ErrInput, i/tb.Len, id, t.VocabSize)
		}
	}
	for i, v := range tb.Mask {
		if v != 0 && v != 1 {
			return fmt.Errorf("%w: text %d: attention mask value %d, want 0 or 1", ErrInput, i/tb.Len, v)
		}
	}
	return nil
}

// additiveMask returns BERT's extended attention mask, (1 − mask)·−10000,
// as [Batch, Len].
func (tb TextBatch) additiveMask() []float32 {
	out := make([]float32, len(tb.Mask))
	for i, v := range tb.Mask {
		out[i] = float32(1-v) * -10000
	}
	return out
}

// crossKV holds one image's cross-attention keys and values for every text
// layer, side by side: t is [1, tokens, 2·layers·width], layer i's keys in
// columns [2i·width, (2i+1)·width) and its values in the next width. They
// depend only on the image, so they are computed once (one matrix multiply)
// and shared by all texts matched against it.
type crossKV struct {
	t     ops.Tensor
	width int
}

// textEmbed writes the text embeddings of tb into x ([Batch, Len, width]):
// word and position embeddings, LayerNorm.
func (m *Model) textEmbed(ctx context.Context, s *scratch, tb TextBatch, x ops.Tensor) {
	s.do("text word embeddings", func() error { return m.be.Gather(ctx, x, m.wordEmb, tb.IDs) })
	s.do("text position embeddings", func() error { return m.be.AddPositions(ctx, x, x, m.posEmb) })
	s.do("text embeddings LayerNorm", func() error {
		return m.be.LayerNorm(ctx, x, x, m.embNorm.w, m.embNorm.b, m.embNorm.eps)
	})
}

// textLayers runs the text encoder's layers on the embeddings x ([Batch,
// Len, width], updated in place) with the additive mask ([Batch, Len]), with
// cross-attention to kv when it is not nil (the ITM branch), and returns the
// last hidden state: x, or, when clsOnly is set, only its [CLS] rows,
// [Batch, 1, width] (owned by s). Every caller reads only [CLS]; its last
// layer needs every token's key and value but only its own attention
// output and feed-forward, so clsOnly carries just that row from the last
// self-attention on (the same arithmetic for that row: exact). Tracing turns
// it off so every layer is traced whole.
func (m *Model) textLayers(ctx context.Context, s *scratch, x, mask ops.Tensor, kv *crossKV, clsOnly bool) ops.Tensor {
	if s.err != nil {
		return nil
	}
	t := m.cfg.Text
	xs := x.Shape()
	b, n, d := xs[0], xs[1], xs[2]
	heads := m.heads()
	qkv := s.new(b, n, 3*d)
	buf := textBuffers{q: s.new(b, n, d), a: s.new(b, n, d), mlp: s.new(b, n, t.IntermediateSize)}
	prefix := "text"
	if kv != nil {
		prefix = "multimodal"
	}
	m.trace(ctx, s, prefix+".embeddings", x)
	for i := range m.text {
		name := fmt.Sprintf("text layer %d", i)
		l := m.text[i]
		s.do(name+" qkv", func() error { return m.be.Linear(ctx, qkv, x, l.qkv.w, l.qkv.b, ops.ActNone) })
		s.do(name+" self-attention", func() error {
			return m.be.Attention(ctx, buf.a, qkv, qkv, qkv, mask, ops.AttentionParams{Heads: heads.Heads, Scale: heads.Scale, KCol: d, VCol: 2 * d})
		})
		if clsOnly && m.tracer == nil && i == len(m.text)-1 && n > 1 {
			xc, ac := s.new(b, 1, d), s.new(b, 1, d)
			s.do(name+" [CLS] rows", func() error { return m.be.TakeRow(ctx, xc, x, 0) })
			s.do(name+" [CLS] attention rows", func() error { return m.be.TakeRow(ctx, ac, buf.a, 0) })
			one := textBuffers{q: s.new(b, 1, d), a: ac, mlp: s.new(b, 1, t.IntermediateSize)}
			m.textLayerRest(ctx, s, name, i, xc, kv, one)
			x = xc
		} else {
			m.textLayerRest(ctx, s, name, i, x, kv, buf)
		}
		m.trace(ctx, s, fmt.Sprintf("%s.layer.%d", prefix, i), x)
	}
	return x
}

// textBuffers are a text layer's scratch tensors, of the query rows' shape.
type textBuffers struct{ q, a, mlp ops.Tensor }

// heads returns the text encoder's attention parameters.
func (m *Model) heads() ops.AttentionParams {
	t := m.cfg.Text
	return ops.AttentionParams{Heads: t.NumAttentionHeads, Scale: float32(1 / math.Sqrt(float64(t.HiddenSize/t.NumAttentionHeads)))}
}

// textLayerRest runs text layer i (post-LN BERT) after its self-attention,
// whose output is in buf.a: the attention output and LayerNorm, the
// cross-attention to kv when it is not nil, and the feed-forward block, on
// the query rows x ([Batch, Len, width], or the [CLS] rows [Batch, 1,
// width]), updated in place.
func (m *Model) textLayerRest(ctx context.Context, s *scratch, name string, i int, x ops.Tensor, kv *crossKV, buf textBuffers) {
	l := m.text[i]
	q, a, mlp := buf.q, buf.a, buf.mlp
	s.do(name+" attention output", func() error { return m.be.Linear(ctx, q, a, l.out.w, l.out.b, ops.ActNone) })
	s.do(name+" attention LayerNorm", func() error {
		return m.be.AddLayerNorm(ctx, nil, x, q, x, l.attnNorm.w, l.attnNorm.b, l.attnNorm.eps)
	})
	if kv != nil {
		// The cross-attention mask is all zeros (every image token is
		// visible), so no mask is passed.
		p := m.heads()
		p.KCol, p.VCol = 2*i*kv.width, (2*i+1)*kv.width
		s.do(name+" cross query", func() error { return m.be.Linear(ctx, q, x, l.cq.w, l.cq.b, ops.ActNone) })
		s.do(name+" cross-attention", func() error { return m.be.Attention(ctx, a, q, kv.t, kv.t, nil, p) })
		s.do(name+" cross output", func() error { return m.be.Linear(ctx, q, a, l.crossOut.w, l.crossOut.b, ops.ActNone) })
		s.do(name+" cross LayerNorm", func() error {
			return m.be.AddLayerNorm(ctx, nil, x, q, x, l.crossNorm.w, l.crossNorm.b, l.crossNorm.eps)
		})
	}
	s.do(name+" intermediate+gelu", func() error { return m.be.Linear(ctx, mlp, x, l.inter.w, l.inter.b, ops.ActGELU) })
	s.do(name+" output", func() error { return m.be.Linear(ctx, q, mlp, l.output.w, l.output.b, ops.ActNone) })
	s.do(name+" output LayerNorm", func() error {
		return m.be.AddLayerNorm(ctx, nil, x, q, x, l.outNorm.w, l.outNorm.b, l.outNorm.eps)
	})
}

// TextEmbeddings returns the ITC embeddings of a batch of texts: [Batch,
// 256], normalize(text_proj(last_hidden_state[:, 0])) from the text encoder
// run without the image (cross-attention skipped). Position 0 should hold
// [CLS].
func (m *Model) TextEmbeddings(ctx context.Context, tb TextBatch) ([]float32, error) {
	if err := tb.validate(m.cfg); err != nil {
		return nil, err
	}
	s := &scratch{be: m.be}
	defer s.free()
	b, n, d := tb.Batch, tb.Len, m.cfg.Text.HiddenSize
	var emb ops.Tensor
	if p := m.graphPlan(ctx, planKey{kind: planText, batch: b, length: n}); p != nil {
		m.textEmbed(ctx, s, tb, p.in)
		s.do("writing the text mask", func() error { return p.cap.Write(ctx, p.mask, tb.additiveMask()) })
		s.do("text encoder (replay)", func() error { return p.replay.Launch(ctx) })
		emb = p.out
	} else {
		x := s.new(b, n, d)
		m.textEmbed(ctx, s, tb, x)
		emb = s.new(b, m.cfg.ImageTextHiddenSize)
		m.textEmbeddingHead(ctx, s, m.textLayers(ctx, s, x, s.upload(tb.additiveMask(), b, n), nil, true), emb)
	}
	if s.err != nil {
		return nil, s.err
	}
	out := make([]float32, emb.Len())
	if err := m.be.Download(ctx, out, emb); err != nil {
		return nil, fmt.Errorf("model: downloading text embeddings: %w", err)
	}
	return out, nil
}

// textEmbeddingHead writes normalize(text_proj(h[:, 0])) into emb ([Batch,
// 256]) from the last hidden state h.
func (m *Model) textEmbeddingHead(ctx context.Context, s *scratch, h, emb ops.Tensor) {
	m.clsHead(ctx, s, "text_proj", h, m.textProj, emb)
	s.do("text embedding normalize", func() error { return m.be.L2Normalize(ctx, emb, emb) })
}

// itmHeadRows writes itm_head(h[:, 0]) into logits ([Batch, 2]) from the
// multimodal encoder's last hidden state h.
func (m *Model) itmHeadRows(ctx context.Context, s *scratch, h, logits ops.Tensor) {
	m.clsHead(ctx, s, "itm_head", h, m.itmHead, logits)
}

// clsHead writes head(h[:, 0]) into out: the linear head on the [CLS] rows.
func (m *Model) clsHead(ctx context.Context, s *scratch, name string, h ops.Tensor, head linear, out ops.Tensor) {
	if s.err != nil {
		return
	}
	cls := s.new(h.Shape()[0], m.cfg.Text.HiddenSize)
	s.do(name+" [CLS] rows", func() error { return m.be.TakeRow(ctx, cls, h, 0) })
	s.do(name, func() error { return m.be.Linear(ctx, out, cls, head.w, head.b, ops.ActNone) })
}

// CrossKeys are one image's cross-attention keys and values for every
// text layer (crossKV), made by Model.CrossKeys and used by ITMLogitsKV.
// They depend only on the image, so a caller scoring many texts against
// one image, in as many batches as it likes, computes them once: one
// matrix multiply of [tokens, vision width] by [vision width,
// 2·layers·width] (for the base models 577×768 by 768×18,432, about 16
// GFLOP, the cost of two or three 35-token ITM passes). Free releases them.
type CrossKeys struct {
	m  *Model
	kv crossKV
	id uint64 // unique per model, for the graph plans' copy (graphs.go)
}

// CrossKeys computes the cross-attention keys and values of image `image`
// of f for every text layer.
func (m *Model) CrossKeys(ctx context.Context, f *ImageFeatures, image int) (*CrossKeys, error) {
	if f == nil || f.t == nil || f.m != m {
		return nil, fmt.Errorf("%w: image features missing, freed or from another model", ErrInput)
	}
	if image < 0 || image >= f.n {
		return nil, fmt.Errorf("%w: image %d of a batch of %d", ErrInput, image, f.n)
	}
	s := &scratch{be: m.be}
	defer s.free()
	img := f.t
	if f.n > 1 {
		img = s.new(1, f.tokens, f.width)
		s.do("selecting the image", func() error { return m.be.CopyRows(ctx, img, f.t, image*f.tokens) })
	}
	if s.err != nil {
		return nil, s.err
	}
	d := m.cfg.Text.HiddenSize
	kv, err := m.be.New(1, f.tokens, 2*len(m.text)*d)
	if err != nil {
		return nil, fmt.Errorf("model: allocating cross keys and values: %w", err)
	}
	if err := m.be.Linear(ctx, kv, img, m.crossKV.w, m.crossKV.b, ops.ActNone); err != nil {
		m.be.Free(kv)
		return nil, fmt.Errorf("model: every text layer's cross keys and values: %w", err)
	}
	m.kvSeq++
	return &CrossKeys{m: m, kv: crossKV{t: kv, width: d}, id: m.kvSeq}, nil
}

// Tokens returns the image's sequence length the keys were computed from.
func (k *CrossKeys) Tokens() int { return k.kv.t.Shape()[1] }

// Free releases the keys and values on the backend. It may be called more
// than once.
func (k *CrossKeys) Free() {
	if k != nil && k.kv.t != nil {
		k.m.be.Free(k.kv.t)
		k.kv.t = nil
	}
}

// ITMLogits runs the multimodal encoder: every text of tb against image
// `image` of f. It returns [Batch, 2] raw logits, index 1 meaning "match".
// The image's cross-attention keys and values are computed for this call;
// a caller with several batches for one image computes them once with
// CrossKeys and calls ITMLogitsKV.
func (m *Model) ITMLogits(ctx context.Context, f *ImageFeatures, image int, tb TextBatch) ([]float32, error) {
	if err := tb.validate(m.cfg); err != nil {
		return nil, err
	}
	k, err := m.CrossKeys(ctx, f, image)
	if err != nil {
		return nil, err
	}
	defer k.Free()
	return m.ITMLogitsKV(ctx, k, tb)
}

// ITMLogitsKV runs the multimodal encoder: every text of tb against the
// image whose cross-attention keys and values are k. It returns [Batch, 2]
// raw logits, index 1 meaning "match". The results are those of ITMLogits
// bit for bit: the same operations on the same values.
func (m *Model) ITMLogitsKV(ctx context.Context, k *CrossKeys, tb TextBatch) ([]float32, error) {
	if k == nil || k.kv.t == nil || k.m != m {
		return nil, fmt.Errorf("%w: cross keys missing, freed or from another model", ErrInput)
	}
	if err := tb.validate(m.cfg); err != nil {
		return nil, err
	}
	s := &scratch{be: m.be}
	defer s.free()
	b, n, d := tb.Batch, tb.Len, m.cfg.Text.HiddenSize
	tokens := k.Tokens()
	var logits ops.Tensor
	if p := m.graphPlan(ctx, planKey{kind: planITM, batch: b, length: n, tokens: tokens}); p != nil {
		m.textEmbed(ctx, s, tb, p.in)
		s.do("writing the text mask", func() error { return p.cap.Write(ctx, p.mask, tb.additiveMask()) })
		m.useKV(ctx, s, k)
		s.do("multimodal encoder (replay)", func() error { return p.replay.Launch(ctx) })
		logits = p.out
	} else {
		x := s.new(b, n, d)
		m.textEmbed(ctx, s, tb, x)
		logits = s.new(b, 2)
		m.itmHeadRows(ctx, s, m.textLayers(ctx, s, x, s.upload(tb.additiveMask(), b, n), &k.kv, true), logits)
	}
	if s.err != nil {
		return nil, s.err
	}
	out := make([]float32, b*2)
	if err := m.be.Download(ctx, out, logits); err != nil {
		return nil, fmt.Errorf("model: downloading ITM logits: %w", err)
	}
	return out, nil
}

// TraceFunc receives an intermediate activation: its name (e.g.
// "vision.layer.3", "text.layer.0", "multimodal.layer.11"), shape and values.
type TraceFunc func(name string, shape []int, data []float32)

// SetTrace installs fn to receive every layer's output (nil removes it).
// Tracing downloads each activation, so it is for tests and debugging.
func (m *Model) SetTrace(fn TraceFunc) { m.tracer = fn }

func (m *Model) trace(ctx context.Context, s *scratch, name string, t ops.Tensor) {
	if m.tracer == nil || s.err != nil {
		return
	}
	data := make([]float32, t.Len())
	s.do("trace "+name, func() error { return m.be.Download(ctx, data, t) })
	if s.err == nil {
		m.tracer(name, append([]int(nil), t.Shape()...), data)
	}
}
