package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/blipcuda/blipcuda/eval"
)

// phaseProgress shows the progress of eval's phases on stderr: on a
// terminal one line per phase, redrawn in place at most five times a
// second,
//
//	ITM re-rank   41% [█████████░░░░░░░░░░░░░]  3,150,122 / 7,680,000 pairs  ETA 1h02m
//
// elsewhere a line every 30 seconds and one when the phase ends. The ETA is
// the phase's remaining work at its average rate so far.
type phaseProgress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	now      func() time.Time

	phase      eval.Phase
	start      time.Time
	lastDraw   time.Time
	lastDone   int
	drawnFinal bool
}

func newPhaseProgress(w io.Writer, terminal bool) *phaseProgress {
	return &phaseProgress{w: w, terminal: terminal, now: time.Now}
}

// units names what a phase counts.
func units(p eval.Phase) string {
	switch p {
	case eval.PhaseImages:
		return "images"
	case eval.PhaseTexts:
		return "texts"
	case eval.PhaseITC:
		return "rows"
	}
	return "pairs"
}

// update is eval.Options.Progress.
func (p *phaseProgress) update(phase eval.Phase, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if phase != p.phase {
		p.finishLine()
		p.phase, p.start, p.lastDraw, p.lastDone, p.drawnFinal = phase, now, time.Time{}, 0, false
		if !p.terminal {
			p.lastDraw = now // the first line after 30 seconds, or at the end
		}
	}
	final := done >= total
	every := 30 * time.Second
	if p.terminal {
		every = 200 * time.Millisecond
	}
	if !final && now.Sub(p.lastDraw) < every {
		return
	}
	if final && p.drawnFinal {
		return
	}
	p.lastDraw, p.lastDone, p.drawnFinal = now, done, final
	line := p.line(phase, done, total, now)
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintf(p.w, "blipcuda: %s\n", line)
}

// finishLine ends a phase's terminal line that was left unfinished (an
// interrupted phase).
func (p *phaseProgress) finishLine() {
	if p.terminal && !p.lastDraw.IsZero() && !p.drawnFinal && p.phase != "" {
		fmt.Fprintln(p.w)
	}
}

// done ends the display.
func (p *phaseProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLine()
	p.lastDraw = time.Time{}
}

func (p *phaseProgress) line(phase eval.Phase, done, total int, now time.Time) string {
	elapsed := now.Sub(p.start)
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %3.0f%%", phase, pct)
	if p.terminal {
		const width = 22
		fill := int(pct / 100 * width)
		b.WriteString(" [" + strings.Repeat("█", fill) + strings.Repeat("░", width-fill) + "]")
	}
	fmt.Fprintf(&b, " %s / %s %s", thousands(done), thousands(total), units(phase))
	switch {
	case done >= total:
		fmt.Fprintf(&b, " in %s", shortDuration(elapsed))
	case done > 0 && elapsed > time.Second:
		eta := time.Duration(float64(elapsed) / float64(done) * float64(total-done))
		fmt.Fprintf(&b, "  ETA %s", shortDuration(eta))
	}
	return b.String()
}

// thousands formats n with commas.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// shortDuration formats d as 1h02m, 3m07s or 12.3s.
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
