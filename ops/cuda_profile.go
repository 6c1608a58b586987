package ops

import (
	"context"
	"errors"
	"sort"

	"github.com/blipcuda/blipcuda/cuda"
)

// Profiling: with StartProfile, every operation of the CUDA backend is
// bracketed by two CUDA events on the stream, and StopProfile reports the
// GPU time between them, summed per operation and shape. It answers "where
// does the time go" without a profiler on the machine. Events cost a few
// microseconds of host time per operation, and operations inside a graph
// capture are not bracketed (a replay is one launch), so profile with graphs
// off.

// OpTime is the GPU time of one operation at one shape, summed over calls.
type OpTime struct {
	Op     string  // e.g. "linear 577x768->3072+bias gelu", "attention B=1 H=12 Lq=577 Lk=577 Dh=64 kvB=1"
	Calls  int     // how many calls
	Millis float64 // total GPU milliseconds
}

type profMark struct {
	label      string
	start, end *cuda.Event
}

type profiler struct {
	marks  []profMark
	pool   []*cuda.Event
	totals map[string]*OpTime
	err    error
}

// StartProfile starts bracketing every operation with events (see
// StopProfile). Starting again discards what was collected.
func (c *CUDA) StartProfile() {
	c.StopProfile(context.Background()) //nolint:errcheck // discarding
	c.prof = &profiler{totals: map[string]*OpTime{}}
}

// StopProfile waits for the queued work and returns the GPU time per
// operation and shape, longest first, and stops profiling.
func (c *CUDA) StopProfile(ctx context.Context) ([]OpTime, error) {
	p := c.prof
	if p == nil {
		return nil, nil
	}
	c.prof = nil
	err := c.flushProfile(ctx, p)
	for _, e := range p.pool {
		e.Close()
	}
	out := make([]OpTime, 0, len(p.totals))
	for _, t := range p.totals {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Millis > out[j].Millis })
	return out, errors.Join(p.err, err)
}

// flushProfile synchronises and moves the marks into the totals.
func (c *CUDA) flushProfile(ctx context.Context, p *profiler) error {
	if len(p.marks) == 0 {
		return nil
	}
	if err := c.dev.Synchronize(ctx); err != nil {
		return err
	}
	for _, m := range p.marks {
		ms, err := m.end.Elapsed(m.start)
		if err != nil {
			return err
		}
		t := p.totals[m.label]
		if t == nil {
			t = &OpTime{Op: m.label}
			p.totals[m.label] = t
		}
		t.Calls++
		t.Millis += float64(ms)
		p.pool = append(p.pool, m.start, m.end)
	}
	p.marks = p.marks[:0]
	return nil
}

func (p *profiler) event(d *cuda.Device) (*cuda.Event, error) {
	if n := len(p.pool); n > 0 {
		e := p.pool[n-1]
		p.pool = p.pool[:n-1]
		return e, nil
	}
	return d.NewEvent()
}

func noMark() {}

// mark brackets one operation when profiling: it records the start event
// and returns the function that records the end (call it deferred). label
// names the operation and its shape. Callers check c.prof first, so that the
// label is only formatted while profiling.
func (c *CUDA) mark(label string) func() {
	p := c.prof
	if p == nil || c.capturing || p.err != nil {
		return noMark
	}
	if len(p.marks) >= 4096 {
		if err := c.flushProfile(context.Background(), p); err != nil {
			p.err = err
			return noMark
		}
	}
	start, err := p.event(c.dev)
	if err == nil {
		err = start.Record()
	}
	if err != nil {
		p.err = err
		return noMark
	}
	return func() {
		end, err := p.event(c.dev)
		if err == nil {
			err = end.Record()
		}
		if err != nil {
			p.err = err
			return
		}
		p.marks = append(p.marks, profMark{label: label, start: start, end: end})
	}
}
