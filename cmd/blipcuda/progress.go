package main

import (
	"fmt"
	"time"

	"github.com/blipcuda/blipcuda/hub"
)

// progress reports items done: a line redrawn in place on a terminal,
// a plain line every 10 s otherwise, nothing with --quiet.
type progress struct {
	a     *app
	what  string
	total int
	done  int
	start time.Time
	last  time.Time
	tty   bool
	off   bool
}

func (a *app) newProgress(what string, total int) *progress {
	return &progress{a: a, what: what, total: total, start: time.Now(), last: time.Now(),
		tty: a.stderrFile != nil && hub.IsTerminal(a.stderrFile), off: a.quiet}
}

func (p *progress) add(n int) {
	p.done += n
	if p.off {
		return
	}
	now := time.Now()
	if !p.tty && now.Sub(p.last) < 10*time.Second && p.done < p.total {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(p.done) / max(el, 1e-9)
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s: %d/%d images (%.0f%%), %.1f images/s, ETA %s", p.what, p.done, p.total,
		100*float64(p.done)/float64(max(p.total, 1)), rate, eta)
	if p.tty {
		fmt.Fprintf(p.a.stderr, "\r\x1b[K%s", line)
	} else {
		fmt.Fprintln(p.a.stderr, "blipcuda: "+line)
	}
}

func (p *progress) finish() {
	if p.tty && !p.off && p.done > 0 {
		fmt.Fprintln(p.a.stderr)
	}
}
