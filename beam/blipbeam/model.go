package blipbeam

import (
	"context"
	"fmt"
	"sync"

	"github.com/blipcuda/blipcuda"
)

// Model names the BLIP ITM checkpoint a transform runs and how. It travels
// inside the pipeline (its fields are serialised with the DoFns), so it
// holds only what a worker needs to load the model itself.
type Model struct {
	// Name is a family name (base-coco, …), a Hub id or a checkpoint
	// directory present on every worker.
	Name string `json:"name"`
	// Device is "auto" (default), "cpu" or "cuda".
	Device string `json:"device,omitempty"`
	// Precision is "float32" (default), "float16" or "bfloat16".
	Precision string `json:"precision,omitempty"`
	// Protocol is "blip" (default) or "hf" (see blipcuda.Protocol).
	Protocol string `json:"protocol,omitempty"`
	// Threads bounds the CPU backend's goroutines (default GOMAXPROCS).
	Threads int `json:"threads,omitempty"`
	// ImageBatch and TextBatch are the device batch sizes (library
	// defaults when 0).
	ImageBatch int `json:"image_batch,omitempty"`
	TextBatch  int `json:"text_batch,omitempty"`
	// Download lets a worker pull a model missing from its Hugging Face
	// cache (HF_HOME and friends are read from the worker's environment).
	Download bool `json:"download,omitempty"`
}

// options are the library options of m.
func (m Model) options() []blipcuda.Option {
	opts := []blipcuda.Option{blipcuda.WithDownload(m.Download)}
	if m.Device != "" {
		opts = append(opts, blipcuda.WithDevice(m.Device))
	}
	if m.Precision != "" {
		opts = append(opts, blipcuda.WithPrecision(m.Precision))
	}
	if m.Protocol != "" {
		opts = append(opts, blipcuda.WithProtocol(blipcuda.Protocol(m.Protocol)))
	}
	if m.Threads > 0 {
		opts = append(opts, blipcuda.WithThreads(m.Threads))
	}
	if m.ImageBatch > 0 {
		opts = append(opts, blipcuda.WithImageBatch(m.ImageBatch))
	}
	if m.TextBatch > 0 {
		opts = append(opts, blipcuda.WithTextBatch(m.TextBatch))
	}
	return opts
}

// handle is a model shared by every DoFn instance of a worker process.
type handle struct {
	m    *blipcuda.Model
	refs int
}

var (
	handlesMu sync.Mutex
	handles   = map[Model]*handle{}
)

// acquire returns the process-wide model for spec, loading it on first use.
// A worker runs many DoFn instances (one per bundle thread and per stage);
// they share one copy of the weights on the device, and blipcuda.Model
// serialises their calls. Each acquire is paired with a release.
func acquire(ctx context.Context, spec Model) (*blipcuda.Model, error) {
	handlesMu.Lock()
	defer handlesMu.Unlock()
	if h, ok := handles[spec]; ok {
		h.refs++
		return h.m, nil
	}
	if spec.Name == "" {
		return nil, fmt.Errorf("blipbeam: no model named")
	}
	m, err := blipcuda.Load(ctx, spec.Name, spec.options()...)
	if err != nil {
		return nil, fmt.Errorf("blipbeam: loading model %s: %w", spec.Name, err)
	}
	handles[spec] = &handle{m: m, refs: 1}
	return m, nil
}

// release drops one reference to spec's model and closes it with the last.
func release(spec Model) error {
	handlesMu.Lock()
	defer handlesMu.Unlock()
	h, ok := handles[spec]
	if !ok {
		return nil
	}
	if h.refs--; h.refs > 0 {
		return nil
	}
	delete(handles, spec)
	return h.m.Close()
}

// loaded reports how many models the process holds (for tests).
func loaded() int {
	handlesMu.Lock()
	defer handlesMu.Unlock()
	return len(handles)
}

// modelUser is the part of a DoFn that holds the worker's shared model:
// Setup takes a reference to it, Teardown drops it.
type modelUser struct {
	Model Model `json:"model"`

	m *blipcuda.Model
}

// Setup acquires the process-wide model.
func (u *modelUser) Setup(ctx context.Context) error {
	m, err := acquire(ctx, u.Model)
	u.m = m
	return err
}

// Teardown releases it; the last DoFn of the process closes it.
func (u *modelUser) Teardown() error {
	if u.m == nil {
		return nil
	}
	u.m = nil
	return release(u.Model)
}
