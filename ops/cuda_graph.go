package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/blipcuda/blipcuda/cuda"
)

// cudaReplay is a CUDA graph of the backend's operations and the private
// arena that held the tensors allocated while it was captured.
type cudaReplay struct {
	c     *CUDA
	g     *cuda.Graph
	arena *cuda.Arena
}

// Capture records fn's operations into a CUDA graph (stream capture). While
// fn runs, New and the operations' scratch memory come from an arena private
// to the graph, so nothing else can be given that memory while the graph may
// still write it; the arena lives until the Replay is closed.
func (c *CUDA) Capture(ctx context.Context, fn func() error) (Replay, error) {
	const op = "capture"
	if err := c.enter(ctx, op); err != nil {
		return nil, err
	}
	if !c.dev.HasGraphs() {
		return nil, fmt.Errorf("ops: cuda: %s: the driver has no CUDA graphs: %w", op, ErrUnsupported)
	}
	if c.capturing {
		return nil, fmt.Errorf("ops: cuda: %s: already capturing: %w", op, ErrUnsupported)
	}
	arena := c.dev.NewArena("graph", 16<<20)
	if err := c.dev.BeginCapture(); err != nil {
		arena.Close()
		return nil, c.wrap(op, err)
	}
	prev := c.acts
	c.acts, c.capturing = arena, true
	err := fn()
	c.acts, c.capturing = prev, false
	if err != nil {
		c.dev.AbortCapture()
		return nil, errors.Join(fmt.Errorf("ops: cuda: %s: %w", op, err), arena.Close())
	}
	g, err := c.dev.EndCapture()
	if err != nil {
		arena.Close()
		return nil, c.wrap(op, err)
	}
	return &cudaReplay{c: c, g: g, arena: arena}, nil
}

// Launch replays the graph.
func (r *cudaReplay) Launch(ctx context.Context) error {
	const op = "replay"
	if err := r.c.enter(ctx, op); err != nil {
		return err
	}
	if r.g == nil {
		return fmt.Errorf("ops: cuda: %s: %w", op, ErrClosed)
	}
	return r.c.wrap(op, r.g.Launch(ctx))
}

// Close destroys the graph and frees its arena. Closing twice does nothing.
func (r *cudaReplay) Close() error {
	if r.g == nil {
		return nil
	}
	err := errors.Join(r.g.Close(), r.arena.Close())
	r.g, r.arena = nil, nil
	return err
}

// Write copies data into t, converted to the backend's dtype.
func (c *CUDA) Write(ctx context.Context, t Tensor, data []float32) error {
	const op = "write"
	if err := c.enter(ctx, op); err != nil {
		return err
	}
	if err := need(op, "t", t); err != nil {
		return err
	}
	if len(data) != t.Len() {
		return shapeErr(op, "%d values for t %v of %d elements", len(data), t.Shape(), t.Len())
	}
	p, err := c.ptr(op, "t", t)
	if err != nil {
		return err
	}
	return c.wrap(op, c.write(p, data))
}

var _ Capturer = (*CUDA)(nil)
