package main

import (
	"io"
	"sync"

	"github.com/blipcuda/blipcuda/eval"
	"github.com/blipcuda/blipcuda/internal/progress"
)

// phaseProgress shows eval's phases on stderr, one progress.Counter each
// (done/total, rate and ETA: a bar on a terminal, a line every 10 seconds
// elsewhere):
//
//	ITM pairs 3150122/7680000 [██████████░░░░░░░░░░░░░░]  41%  812.4 ITM pairs/s  ETA 1h32m
type phaseProgress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	phase    eval.Phase
	c        *progress.Counter
}

func newPhaseProgress(w io.Writer, terminal bool) *phaseProgress {
	return &phaseProgress{w: w, terminal: terminal}
}

// noun names what a phase counts, in the singular.
func noun(p eval.Phase) string {
	switch p {
	case eval.PhaseImages:
		return "image"
	case eval.PhaseTexts:
		return "text"
	case eval.PhaseITC:
		return "ITC top-k row"
	}
	return "ITM pair"
}

// update is eval.Options.Progress.
func (p *phaseProgress) update(phase eval.Phase, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if phase != p.phase || p.c == nil {
		p.c.Finish()
		p.phase = phase
		p.c = progress.New(p.w, p.terminal, progress.Interval, noun(phase), total)
	}
	p.c.Set(done)
}

// done ends the display.
func (p *phaseProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.Finish()
	p.c = nil
}
