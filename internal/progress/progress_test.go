package progress

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// clock is a fake time source moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func lastDraw(s string) string {
	i := strings.LastIndex(s, "\r")
	return strings.TrimSuffix(s[i+1:], "\x1b[K")
}
func countLines(s string) int { return strings.Count(s, "\n") }
func nilSafe(c *Counter)      { c.Add(1); c.Set(2); c.Finish(); _ = c.Writer(os.Stderr) }
func TestNilCounterReportsNothing(t *testing.T) {
	nilSafe(nil)
	nilSafe(Auto(os.Stderr, true, "image", 3))
}

func TestTerminalBar(t *testing.T) {
	var b strings.Builder
	clk := newClock()
	c := newCounter(&b, true, Interval, "image", 40, clk.now)
	if got := lastDraw(b.String()); !strings.HasPrefix(got, "images  0/40 [░") {
		t.Errorf("first draw %q", got)
	}
	clk.advance(30 * time.Second)
	c.Add(10)
	got := lastDraw(b.String())
	for _, want := range []string{"images 10/40", "25%", "3.0 s/image", "ETA 1m30s", "██████░"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}
	// Updates closer than 100 ms are not drawn.
	n := len(b.String())
	c.Add(1)
	if len(b.String()) != n {
		t.Error("redrawn within 100 ms")
	}
	// A log message erases the bar first and redraws it after.
	w := c.Writer(&b)
	fmt.Fprintln(w, "warning: something")
	if s := b.String()[n:]; !strings.HasPrefix(s, "\r\x1b[Kwarning: something\n\r") {
		t.Errorf("interleaved message: %q", s)
	}
	clk.advance(30 * time.Second)
	c.Set(40)
	c.Finish()
	c.Finish()
	if s := b.String(); !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 2 {
		t.Errorf("finish: %q", s)
	}
	if got := lastDraw(strings.TrimSuffix(b.String(), "\n")); !strings.Contains(got, "40/40") || strings.Contains(got, "ETA") {
		t.Errorf("final bar %q", got)
	}
}

func TestPlainLines(t *testing.T) {
	var b strings.Builder
	clk := newClock()
	c := newCounter(&b, false, 10*time.Second, "image", 100, clk.now)
	for i := 0; i < 100; i++ {
		clk.advance(500 * time.Millisecond) // 2 images/s
		c.Add(1)
	}
	c.Finish()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 6 { // every 10 s of 50 s, then the last
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	if lines[0] != "images: 20 of 100 (20%), 2.0 images/s, ETA 40s" {
		t.Errorf("first line %q", lines[0])
	}
	if lines[5] != "images: 100 of 100 done in 50s" {
		t.Errorf("last line %q", lines[5])
	}
	if strings.ContainsAny(b.String(), "\r\x1b") {
		t.Error("terminal codes in plain output")
	}

	// A run shorter than the interval prints nothing at all.
	b.Reset()
	c = newCounter(&b, false, 10*time.Second, "image", 3, clk.now)
	c.Add(3)
	c.Finish()
	if b.Len() != 0 {
		t.Errorf("short run printed %q", b.String())
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 44*time.Second + 600*time.Millisecond: "45s", 185 * time.Second: "3m05s", 7620 * time.Second: "2h07m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
