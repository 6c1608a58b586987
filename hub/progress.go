package hub

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/blipcuda/blipcuda/internal/progress"
)

// Transfer describes one file being downloaded.
type Transfer struct {
	Repo     string
	Revision string
	File     string
	// Size is the file's size in bytes, or -1 if the Hub did not say.
	Size int64
	// Offset is where the transfer starts: the bytes already on disk from an
	// interrupted download (resumed with Range), else 0.
	Offset int64
}

// Reporter is told about file transfers. It is only called for files that are
// actually downloaded, not for cache hits. Implementations must be safe for
// concurrent use.
type Reporter interface {
	// Start is called when a transfer begins; the returned Task follows it.
	Start(t Transfer) Task
}

// Task follows one transfer.
type Task interface {
	// Update reports the bytes of the file on disk so far (Offset included).
	// It may go down when a server ignores a Range request and the download
	// restarts from zero.
	Update(done int64)
	// Finish is called once, with nil on success.
	Finish(err error)
}

// AutoReporter picks the reporter a command wants for out: nothing when quiet
// (or when HF_HUB_DISABLE_PROGRESS_BARS is true), a bar redrawn in place when
// out is a terminal, plain lines otherwise.
func AutoReporter(out *os.File, quiet bool) Reporter {
	if quiet || out == nil || isTrue(os.Getenv("HF_HUB_DISABLE_PROGRESS_BARS")) {
		return nil
	}
	if IsTerminal(out) {
		return NewBar(out)
	}
	return NewLines(out, 10*time.Second)
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return progress.IsTerminal(f) }

// NewBar returns a reporter that draws one progress bar per transfer on w (a
// terminal), redrawing the line in place with a carriage return at most ten
// times a second:
//
//	model.safetensors  42% [██████████░░░░░░░░░░░░░░] 376.1 MB / 895.0 MB  21.3 MB/s
//
// It draws one line at a time, which suits Download and Snapshot (one file
// after the other); transfers run in parallel would share the line.
func NewBar(w io.Writer) Reporter { return &bar{w: w, now: time.Now} }

type bar struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

type barTask struct {
	b        *bar
	t        Transfer
	start    time.Time
	last     time.Time
	done     int64
	finished bool
}

func (b *bar) Start(t Transfer) Task {
	now := b.now()
	bt := &barTask{b: b, t: t, start: now, done: t.Offset}
	b.mu.Lock()
	bt.draw(now)
	b.mu.Unlock()
	return bt
}

func (bt *barTask) Update(done int64) {
	bt.b.mu.Lock()
	defer bt.b.mu.Unlock()
	bt.done = done
	if now := bt.b.now(); now.Sub(bt.last) >= 100*time.Millisecond {
		bt.draw(now)
	}
}

func (bt *barTask) Finish(err error) {
	bt.b.mu.Lock()
	defer bt.b.mu.Unlock()
	if bt.finished {
		return
	}
	bt.finished = true
	if err == nil && bt.t.Size >= 0 {
		bt.done = bt.t.Size
	}
	bt.draw(bt.b.now())
	if err != nil {
		fmt.Fprint(bt.b.w, "  failed")
	}
	fmt.Fprint(bt.b.w, "\n")
}

func (bt *barTask) draw(now time.Time) {
	bt.last = now
	const width = 24
	name := bt.t.File
	if len(name) > 28 {
		name = "…" + name[len(name)-27:]
	}
	var line string
	rate := ""
	if el := now.Sub(bt.start).Seconds(); el > 0.5 && bt.done > bt.t.Offset {
		rate = "  " + HumanBytes(int64(float64(bt.done-bt.t.Offset)/el)) + "/s"
	}
	if bt.t.Size > 0 {
		frac := min(max(float64(bt.done)/float64(bt.t.Size), 0), 1)
		line = fmt.Sprintf("%-28s %3d%% %s %s / %s%s", name, int(frac*100), progress.Bar(frac, width),
			HumanBytes(bt.done), HumanBytes(bt.t.Size), rate)
	} else {
		line = fmt.Sprintf("%-28s %s%s", name, HumanBytes(bt.done), rate)
	}
	progress.Redraw(bt.b.w, line)
}

// NewLines returns a reporter that writes plain lines to w (a log file, a
// pipe): one when a transfer starts, one at most every interval while it
// runs (never if interval is zero or negative), and one when it ends.
func NewLines(w io.Writer, interval time.Duration) Reporter {
	return &lines{w: w, every: interval, now: time.Now}
}

type lines struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	now   func() time.Time
}

type lineTask struct {
	l     *lines
	t     Transfer
	last  time.Time
	done  int64
	ended bool
}

func (l *lines) Start(t Transfer) Task {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := fmt.Sprintf("downloading %s/%s", t.Repo, t.File)
	if t.Revision != "" && t.Revision != DefaultRevision {
		msg += " @ " + t.Revision
	}
	if t.Size >= 0 {
		msg += " (" + HumanBytes(t.Size) + ")"
	}
	if t.Offset > 0 {
		msg += ", resuming at " + HumanBytes(t.Offset)
	}
	fmt.Fprintln(l.w, msg)
	return &lineTask{l: l, t: t, last: l.now(), done: t.Offset}
}

func (lt *lineTask) Update(done int64) {
	lt.l.mu.Lock()
	defer lt.l.mu.Unlock()
	lt.done = done
	if lt.l.every <= 0 || lt.ended {
		return
	}
	if now := lt.l.now(); now.Sub(lt.last) >= lt.l.every {
		lt.last = now
		if lt.t.Size > 0 {
			fmt.Fprintf(lt.l.w, "%s: %d%% (%s of %s)\n", lt.t.File, done*100/lt.t.Size, HumanBytes(done), HumanBytes(lt.t.Size))
		} else {
			fmt.Fprintf(lt.l.w, "%s: %s\n", lt.t.File, HumanBytes(done))
		}
	}
}

func (lt *lineTask) Finish(err error) {
	lt.l.mu.Lock()
	defer lt.l.mu.Unlock()
	if lt.ended {
		return
	}
	lt.ended = true
	if err != nil {
		fmt.Fprintf(lt.l.w, "%s: stopped after %s\n", lt.t.File, HumanBytes(lt.done))
		return
	}
	size := lt.done
	if lt.t.Size >= 0 {
		size = lt.t.Size
	}
	fmt.Fprintf(lt.l.w, "downloaded %s (%s)\n", lt.t.File, HumanBytes(size))
}

// HumanBytes formats n in decimal units, as the Hub's web pages do
// ("895.0 MB").
func HumanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
