package model

import (
	"context"
	"fmt"
	"sort"

	"github.com/blipcuda/blipcuda/ops"
)

// Forward passes as CUDA graphs. On a backend that can capture (ops.Capturer:
// the CUDA backend) each forward pass of a new shape is captured once into a
// plan and replayed afterwards: one launch for the hundreds of kernels and
// GEMMs of the layers. A plan owns the tensors the graph reads and writes
// outside its own scratch memory: the input it is refreshed through before
// every replay (pixels, or the text embeddings and mask) and the output.
// Steps whose inputs come from the host each call (token ids, the image's
// features) run eagerly before the replay, into the plan's tensors. The ITM
// plans of a model all read the image's cross keys and values from one
// tensor the model keeps (planKV): a CrossKeys is copied into it (one
// device copy) when it is not the one already there, so the texts of one
// image, in batches of any shapes, share one copy.

// maxPlans bounds the plans a model keeps (least recently used evicted);
// maxGraphImages the image batch captured: a larger batch runs long enough
// that launch overhead does not matter, and its graph would hold gigabytes
// of activations.
const (
	maxPlans       = 24
	maxGraphImages = 16
)

type planKind byte

const (
	planVision planKind = 'v' // EncodeImages
	planText   planKind = 't' // TextEmbeddings
	planITM    planKind = 'm' // ITMLogits
)

// planKey is the shape a plan was captured for.
type planKey struct {
	kind                  planKind
	batch, length, tokens int
}

// plan is a captured forward pass and its tensors.
type plan struct {
	cap    ops.Capturer
	replay ops.Replay
	in     ops.Tensor // pixels [n, 3, S, S], or text embeddings [B, L, D]
	mask   ops.Tensor // [B, L] (text, ITM)
	kv     ops.Tensor // [1, tokens, 2·layers·D] (ITM): the model's planKV, not the plan's
	out    ops.Tensor // features [n, tokens, Dv], embeddings [B, 256], or logits [B, 2]
	used   uint64
}

func (p *plan) free(be ops.Backend) {
	if p.replay != nil {
		p.replay.Close()
	}
	for _, t := range []ops.Tensor{p.in, p.mask, p.out} {
		if t != nil {
			be.Free(t)
		}
	}
}

// SetGraphs turns the capture and replay of forward passes on (the default)
// or off; off, every call issues its operations one by one. Turning it off
// frees the plans kept so far.
func (m *Model) SetGraphs(on bool) {
	m.noGraphs = !on
	m.failed = nil // a new chance for the shapes whose capture failed
	if !on {
		m.freePlans()
	}
}

func (m *Model) freePlans() {
	for k, p := range m.plans {
		p.free(m.be)
		delete(m.plans, k)
	}
	for tokens, buf := range m.planKV {
		m.be.Free(buf.t)
		delete(m.planKV, tokens)
	}
}

// planKVBuf is the cross keys and values the ITM plans of one image
// sequence length read, [1, tokens, 2·layers·D], and the CrossKeys (id)
// they were copied from; 0 when none is there.
type planKVBuf struct {
	t     ops.Tensor
	owner uint64
}

// sharedKV returns the ITM plans' keys-and-values tensor for images of
// `tokens` tokens, allocating it on first use.
func (m *Model) sharedKV(tokens int) (ops.Tensor, error) {
	if buf := m.planKV[tokens]; buf != nil {
		return buf.t, nil
	}
	t, err := m.be.New(1, tokens, 2*len(m.text)*m.cfg.Text.HiddenSize)
	if err != nil {
		return nil, fmt.Errorf("model: allocating the graphs' cross keys and values: %w", err)
	}
	if m.planKV == nil {
		m.planKV = map[int]*planKVBuf{}
	}
	m.planKV[tokens] = &planKVBuf{t: t}
	return t, nil
}

// useKV puts k's keys and values where the ITM plans read them, unless
// they are already there.
func (m *Model) useKV(ctx context.Context, s *scratch, k *CrossKeys) {
	buf := m.planKV[k.Tokens()]
	if s.err != nil || buf == nil || buf.owner == k.id {
		return
	}
	buf.owner = 0
	s.do("copying the image's cross keys and values", func() error { return m.be.CopyRows(ctx, buf.t, k.kv.t, 0) })
	if s.err == nil {
		buf.owner = k.id
	}
}

// graphPlan returns the plan for k, capturing it first if needed, or nil
// when the pass should run eagerly: the backend cannot capture, graphs are
// off, tracing is on, the batch is too large, or the capture of this shape
// failed (once: it is not tried again until SetGraphs; the eager path then
// reports any real error).
func (m *Model) graphPlan(ctx context.Context, k planKey) *plan {
	c, ok := m.be.(ops.Capturer)
	if !ok || m.noGraphs || m.tracer != nil || (k.kind == planVision && k.batch > maxGraphImages) {
		return nil
	}
	m.tick++
	if p := m.plans[k]; p != nil {
		p.used = m.tick
		return p
	}
	if m.failed[k] {
		return nil
	}
	p, err := m.capture(ctx, c, k)
	if err != nil {
		m.graphErr = err
		if m.failed == nil {
			m.failed = map[planKey]bool{}
		}
		m.failed[k] = true
		return nil
	}
	p.used = m.tick
	if m.plans == nil {
		m.plans = map[planKey]*plan{}
	}
	m.plans[k] = p
	if len(m.plans) > maxPlans {
		keys := make([]planKey, 0, len(m.plans))
		for k := range m.plans {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return m.plans[keys[i]].used < m.plans[keys[j]].used })
		m.plans[keys[0]].free(m.be)
		delete(m.plans, keys[0])
	}
	return p
}

// GraphError returns the error of the last capture that failed (the passes
// then ran eagerly), or nil.
func (m *Model) GraphError() error { return m.graphErr }

// Graphs returns how many captured forward passes the model keeps.
func (m *Model) Graphs() int { return len(m.plans) }

// capture allocates a plan's tensors and records its forward pass.
func (m *Model) capture(ctx context.Context, c ops.Capturer, k planKey) (_ *plan, err error) {
	p := &plan{cap: c}
	defer func() {
		if err != nil {
			p.free(m.be)
		}
	}()
	alloc := func(t *ops.Tensor, shape ...int) {
		if err == nil {
			if *t, err = m.be.New(shape...); err != nil {
				err = fmt.Errorf("model: allocating a graph's %v: %w", shape, err)
			}
		}
	}
	d := m.cfg.Text.HiddenSize
	var body func(s *scratch)
	switch k.kind {
	case planVision:
		v := m.cfg.Vision
		alloc(&p.in, k.batch, NumChannels, v.ImageSize, v.ImageSize)
		alloc(&p.out, k.batch, m.cfg.NumImageTokens(), v.HiddenSize)
		body = func(s *scratch) { m.visionForward(ctx, s, p.in, p.out) }
	case planText:
		alloc(&p.in, k.batch, k.length, d)
		alloc(&p.mask, k.batch, k.length)
		alloc(&p.out, k.batch, m.cfg.ImageTextHiddenSize)
		body = func(s *scratch) { m.textEmbeddingHead(ctx, s, m.textLayers(ctx, s, p.in, p.mask, nil, true), p.out) }
	case planITM:
		alloc(&p.in, k.batch, k.length, d)
		alloc(&p.mask, k.batch, k.length)
		if err == nil {
			p.kv, err = m.sharedKV(k.tokens)
		}
		alloc(&p.out, k.batch, 2)
		body = func(s *scratch) {
			m.itmHeadRows(ctx, s, m.textLayers(ctx, s, p.in, p.mask, &crossKV{t: p.kv, width: d}, true), p.out)
		}
	default:
		return nil, fmt.Errorf("model: unknown plan kind %q", k.kind)
	}
	if err != nil {
		return nil, err
	}
	p.replay, err = c.Capture(ctx, func() error {
		s := &scratch{be: m.be}
		defer s.free()
		body(s)
		return s.err
	})
	if err != nil {
		return nil, fmt.Errorf("model: capturing %c %d×%d: %w", k.kind, k.batch, k.length, err)
	}
	return p, nil
}
