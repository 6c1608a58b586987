package model

import (
	"context"
	"fmt"

	"github.com/blipcuda/blipcuda/ops"
)

// ImageFeatures is the image encoder's output for a batch of images, kept on
// the model's backend: the raw features (the post-LayerNorm last hidden
// state, [n, tokens, vision width]) that the multimodal encoder attends to.
// Free releases it.
type ImageFeatures struct {
	m      *Model
	t      ops.Tensor // [n, tokens, Dv]
	n      int
	tokens int
	width  int
}

// Len returns the number of images.
func (f *ImageFeatures) Len() int { return f.n }

// Tokens returns the sequence length per image (577 for 384×384 input).
func (f *ImageFeatures) Tokens() int { return f.tokens }

// Width returns the vision hidden size.
func (f *ImageFeatures) Width() int { return f.width }

// Free releases the features on the backend.
func (f *ImageFeatures) Free() {
	if f != nil && f.t != nil {
		f.m.be.Free(f.t)
		f.t = nil
	}
}

// Download copies the raw features to the host: [n, tokens, width],
// row-major.
func (f *ImageFeatures) Download(ctx context.Context) ([]float32, error) {
	if f.t == nil {
		return nil, fmt.Errorf("%w: image features already freed", ErrInput)
	}
	out := make([]float32, f.t.Len())
	if err := f.m.be.Download(ctx, out, f.t); err != nil {
		return nil, fmt.Errorf("model: downloading image features: %w", err)
	}
	return out, nil
}

// UploadImageFeatures puts raw features computed earlier ([n, tokens,
// width], e.g. from a cache) on the backend for the multimodal encoder.
func (m *Model) UploadImageFeatures(data []float32, n int) (*ImageFeatures, error) {
	tok, dv := m.cfg.NumImageTokens(), m.cfg.Vision.HiddenSize
	if n <= 0 || len(data) != n*tok*dv {
		return nil, fmt.Errorf("%w: %d feature values for %d images, want %d×%d×%d",
			ErrInput, len(data), n, n, tok, dv)
	}
	cp := append([]float32(nil), data...)
	t, err := m.be.Upload(cp, n, tok, dv)
	if err != nil {
		return nil, fmt.Errorf("model: uploading image features: %w", err)
	}
	return &ImageFeatures{m: m, t: t, n: n, tokens: tok, width: dv}, nil
}

// EncodeImages runs the ViT on n preprocessed images, pixels being [n, 3,
// image_size, image_size] float32 (CHW, normalised). It returns the raw
// features on the backend.
func (m *Model) EncodeImages(ctx context.Context, pixels []float32, n int) (*ImageFeatures, error) {
	v := m.cfg.Vision
	size := v.ImageSize
	if n <= 0 || len(pixels) != n*NumChannels*size*size {
		return nil, fmt.Errorf("%w: %d pixel values for %d images, want %d×3×%d×%d",
			ErrInput, len(pixels), n, n, size, size)
	}
	tok, dv := m.cfg.NumImageTokens(), v.HiddenSize
	s := &scratch{be: m.be}
	defer s.free()
	feats, err := m.be.New(n, tok, dv)
	if err != nil {
		return nil, fmt.Errorf("model: allocating image features: %w", err)
	}
	if p := m.graphPlan(ctx, planKey{kind: planVision, batch: n}); p != nil {
		// Replay: new pixels into the plan's input, the captured encoder,
		// the plan's output copied into features the caller owns.
		s.do("writing pixels", func() error { return p.cap.Write(ctx, p.in, pixels) })
		s.do("vision encoder (replay)", func() error { return p.replay.Launch(ctx) })
		s.do("copying image features", func() error { return m.be.CopyRows(ctx, feats, p.out, 0) })
	} else {
		pix := s.upload(pixels, n, NumChannels, size, size)
		m.visionForward(ctx, s, pix, feats)
	}
	if s.err != nil {
		m.be.Free(feats)
		return nil, s.err
	}
	return &ImageFeatures{m: m, t: feats, n: n, tokens: tok, width: dv}, nil
}

// visionForward runs the ViT on pix ([n, 3, size, size]) into x ([n, tokens,
// width]): patch and position embeddings, the layers, post_layernorm.
func (m *Model) visionForward(ctx context.Context, s *scratch, pix, x ops.Tensor) {
	if s.err != nil {
		return
	}
	v := m.cfg.Vision
	n, tok, dv := x.Shape()[0], x.Shape()[1], x.Shape()[2]
	h := s.new(n, tok, dv)
	qkv := s.new(n, tok, 3*dv)
	a := s.new(n, tok, dv)
	mlp := s.new(n, tok, v.IntermediateSize)

	s.do("vision patch embedding", func() error { return m.be.PatchEmbed(ctx, x, pix, m.patchW, m.patchB, m.cls, v.PatchSize) })
	s.do("vision position embedding", func() error { return m.be.AddPositions(ctx, x, x, m.pos) })
	m.trace(ctx, s, "vision.embeddings", x)
	// Pre-LN blocks: x += Attn(LN1(x)); x += MLP(LN2(x)). x is the residual
	// stream; each residual add is fused with the LayerNorm that follows it
	// (the next layer's layer_norm1, or post_layernorm after the last).
	l0 := m.vision[0].ln1
	s.do("vision layer 0 layer_norm1", func() error { return m.be.LayerNorm(ctx, h, x, l0.w, l0.b, l0.eps) })
	for i, l := range m.vision {
		name := fmt.Sprintf("vision layer %d", i)
		s.do(name+" qkv", func() error { return m.be.Linear(ctx, qkv, h, l.qkv.w, l.qkv.b, ops.ActNone) })
		s.do(name+" attention", func() error {
			return m.be.Attention(ctx, a, qkv, qkv, qkv, nil, ops.AttentionParams{Heads: l.heads, Scale: l.headScale, KCol: dv, VCol: 2 * dv})
		})
		s.do(name+" projection", func() error { return m.be.Linear(ctx, h, a, l.proj.w, l.proj.b, ops.ActNone) })
		s.do(name+" residual+layer_norm2", func() error {
			return m.be.AddLayerNorm(ctx, x, a, x, h, l.ln2.w, l.ln2.b, l.ln2.eps)
		})
		s.do(name+" fc1+gelu", func() error { return m.be.Linear(ctx, mlp, a, l.fc1.w, l.fc1.b, ops.ActGELU) })
		s.do(name+" fc2", func() error { return m.be.Linear(ctx, h, mlp, l.fc2.w, l.fc2.b, ops.ActNone) })
		trace := fmt.Sprintf("vision.layer.%d", i)
		if i+1 < len(m.vision) {
			next := m.vision[i+1].ln1
			s.do(name+" residual+next layer_norm1", func() error {
				return m.be.AddLayerNorm(ctx, x, h, x, h, next.w, next.b, next.eps)
			})
			m.trace(ctx, s, trace, x)
			continue
		}
		// The last residual sum goes to h (for the trace), its LayerNorm to x.
		s.do(name+" residual+post_layernorm", func() error {
			return m.be.AddLayerNorm(ctx, h, x, x, h, m.postNorm.w, m.postNorm.b, m.postNorm.eps)
		})
		m.trace(ctx, s, trace, h)
	}
	m.trace(ctx, s, "vision.post_layernorm", x)
}

// ImageEmbeddings returns the ITC embeddings of the images: [n, 256],
// normalize(vision_proj(features[:, 0])).
func (m *Model) ImageEmbeddings(ctx context.Context, f *ImageFeatures) ([]float32, error) {
	if f == nil || f.t == nil || f.m != m {
		return nil, fmt.Errorf("%w: image features missing, freed or from another model", ErrInput)
	}
	d := m.cfg.ImageTextHiddenSize
	s := &scratch{be: m.be}
	defer s.free()
	cls := s.new(f.n, f.width)
	emb := s.new(f.n, d)
	s.do("image [CLS] row", func() error { return m.be.TakeRow(ctx, cls, f.t, 0) })
	s.do("vision_proj", func() error { return m.be.Linear(ctx, emb, cls, m.visionProj.w, m.visionProj.b, ops.ActNone) })
	s.do("image embedding normalize", func() error { return m.be.L2Normalize(ctx, emb, emb) })
	if s.err != nil {
		return nil, s.err
	}
	out := make([]float32, f.n*d)
	if err := m.be.Download(ctx, out, emb); err != nil {
		return nil, fmt.Errorf("model: downloading image embeddings: %w", err)
	}
	return out, nil
}
