// Package progress shows how far long-running work has got on stderr: a
// bar redrawn in place on a terminal, a plain line now and then on a pipe
// or log file. The drawing (IsTerminal, Bar, Redraw) is shared by the Hub
// download bars and the item counter of match and embed.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return f != nil && isTerminalFd(f.Fd()) }

// Bar draws frac (clamped to 0..1) as a bar of width cells: █ done, ░ to do.
func Bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	fill := int(frac * float64(width))
	return "[" + strings.Repeat("█", fill) + strings.Repeat("░", width-fill) + "]"
}

// Redraw replaces the terminal line the cursor is on with line: a carriage
// return, the line, then clear to the end of the line, so that a shorter
// line leaves no tail of the longer one before it.
func Redraw(w io.Writer, line string) {
	fmt.Fprintf(w, "\r%s\x1b[K", line)
}

// clearLine erases the line the cursor is on.
const clearLine = "\r\x1b[K"

// Counter follows work on a known number of items (images): done, rate and
// the estimated time left. On a terminal it redraws one line at most ten
// times a second; elsewhere it writes a line at most every interval, and a
// last line when it finishes if it wrote any (a short run prints nothing).
// A nil *Counter is valid and reports nothing, so that callers need not
// check for quiet mode. Counter is safe for concurrent use.
type Counter struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	every    time.Duration
	noun     string // singular: "image"
	total    int
	done     int
	start    time.Time
	last     time.Time
	drawn    bool // a bar is on the terminal line now
	printed  bool // a plain line was written
	finished bool
	now      func() time.Time
}

// Interval is how often a Counter writes a plain line when its output is
// not a terminal.
const Interval = 10 * time.Second

// New returns a Counter of total items called noun (singular, "image")
// writing to w, drawing a bar if terminal, else plain lines every interval
// (none if interval ≤ 0).
func New(w io.Writer, terminal bool, interval time.Duration, noun string, total int) *Counter {
	return newCounter(w, terminal, interval, noun, total, time.Now)
}

func newCounter(w io.Writer, terminal bool, interval time.Duration, noun string, total int, now func() time.Time) *Counter {
	t := now()
	c := &Counter{w: w, terminal: terminal, every: interval, noun: noun, total: total, start: t, last: t, now: now}
	if terminal {
		c.mu.Lock()
		c.draw(t)
		c.mu.Unlock()
	}
	return c
}

// Auto returns the Counter a command wants on f (its stderr): nil when
// quiet or f is nil, a bar on a terminal, plain lines every Interval
// otherwise.
func Auto(f *os.File, quiet bool, noun string, total int) *Counter {
	if quiet || f == nil {
		return nil
	}
	return New(f, IsTerminal(f), Interval, noun, total)
}

// Add counts n more items done.
func (c *Counter) Add(n int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(c.done + n)
}

// Set says that done items are done.
func (c *Counter) Set(done int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(done)
}

func (c *Counter) set(done int) {
	if c.finished {
		return
	}
	c.done = done
	now := c.now()
	switch {
	case c.terminal && now.Sub(c.last) >= 100*time.Millisecond:
		c.draw(now)
	case !c.terminal && c.every > 0 && now.Sub(c.last) >= c.every:
		c.last = now
		c.printed = true
		fmt.Fprintln(c.w, c.plain(now))
	}
}

// Finish ends the report: the bar is drawn complete and the line ended; in
// plain mode a last line is written if any was. Later calls do nothing.
func (c *Counter) Finish() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.finished = true
	now := c.now()
	switch {
	case c.terminal:
		c.draw(now)
		fmt.Fprint(c.w, "\n")
	case c.printed:
		fmt.Fprintf(c.w, "%s: %d of %d done in %s\n", c.plural(), c.done, c.total, formatDuration(now.Sub(c.start)))
	}
}

// Writer returns a writer to the same output for other messages (a log):
// on a terminal it erases the bar before each message and redraws it
// after, so that messages and the bar do not overwrite each other.
func (c *Counter) Writer(w io.Writer) io.Writer {
	if c == nil || !c.terminal {
		return w
	}
	return interleaved{c, w}
}

type interleaved struct {
	c *Counter
	w io.Writer
}

func (iw interleaved) Write(p []byte) (int, error) {
	c := iw.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drawn && !c.finished {
		io.WriteString(iw.w, clearLine)
		c.drawn = false
	}
	n, err := iw.w.Write(p)
	if !c.finished {
		c.draw(c.now())
	}
	return n, err
}

func (c *Counter) plural() string { return c.noun + "s" }

// draw redraws the bar line.
func (c *Counter) draw(now time.Time) {
	c.last = now
	c.drawn = true
	frac := 1.0
	if c.total > 0 {
		frac = float64(c.done) / float64(c.total)
	}
	line := fmt.Sprintf("%s %*d/%d %s %3d%%", c.plural(), len(fmt.Sprint(c.total)), c.done, c.total,
		Bar(frac, 24), int(min(max(frac, 0), 1)*100))
	if r := c.rate(now); r != "" {
		line += "  " + r
	}
	if e := c.eta(now); e != "" {
		line += "  ETA " + e
	}
	Redraw(c.w, line)
}

// plain is a progress line for a log.
func (c *Counter) plain(now time.Time) string {
	line := fmt.Sprintf("%s: %d of %d", c.plural(), c.done, c.total)
	if c.total > 0 {
		line += fmt.Sprintf(" (%d%%)", c.done*100/c.total)
	}
	if r := c.rate(now); r != "" {
		line += ", " + r
	}
	if e := c.eta(now); e != "" {
		line += ", ETA " + e
	}
	return line
}

// rate is the average speed so far: items per second, or seconds per item
// when slower than one a second. Empty before the first item or second.
func (c *Counter) rate(now time.Time) string {
	el := now.Sub(c.start).Seconds()
	if c.done <= 0 || el < 0.5 {
		return ""
	}
	if r := float64(c.done) / el; r >= 1 {
		return fmt.Sprintf("%.1f %s/s", r, c.plural())
	}
	return fmt.Sprintf("%.1f s/%s", el/float64(c.done), c.noun)
}

// eta is the time left at the average rate so far.
func (c *Counter) eta(now time.Time) string {
	el := now.Sub(c.start)
	if c.done <= 0 || c.done >= c.total || el < 500*time.Millisecond {
		return ""
	}
	left := time.Duration(float64(el) / float64(c.done) * float64(c.total-c.done))
	return formatDuration(left)
}

// formatDuration writes d as 45s, 3m05s or 2h07m.
func formatDuration(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}
