package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/blipcuda/blipcuda/hub"
)

// Exit codes, documented in README.md.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError is an error in what was typed: an unknown flag, a bad flag
// value, a missing argument, an unknown model name, an empty --text. It
// exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flagSet is a flag.FlagSet that remembers the order flags were declared
// in, their one-letter aliases and their value names, for the help text.
type flagSet struct {
	*flag.FlagSet
	order []string          // long names, in declaration order
	short map[string]string // long name → one-letter alias
	meta  map[string]string // long name → value name for the help
	alias map[string]bool   // the alias names
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, short: map[string]string{}, meta: map[string]string{}, alias: map[string]bool{}}
}

func (f *flagSet) add(long, short, meta string) {
	f.order = append(f.order, long)
	f.meta[long] = meta
	if short != "" {
		f.short[long] = short
		f.alias[short] = true
		f.Var(f.Lookup(long).Value, short, "")
	}
}

// str declares a string flag --long (and -short, unless empty) whose value
// the help calls meta.
func (f *flagSet) str(p *string, long, short, def, meta, usage string) {
	f.StringVar(p, long, def, usage)
	f.add(long, short, meta)
}

// boolean declares a flag without a value.
func (f *flagSet) boolean(p *bool, long, short string, usage string) {
	f.BoolVar(p, long, false, usage)
	f.add(long, short, "")
}

// integer declares an int flag.
func (f *flagSet) integer(p *int, long, short string, def int, meta, usage string) {
	f.IntVar(p, long, def, usage)
	f.add(long, short, meta)
}

// strs declares a repeatable string flag.
func (f *flagSet) strs(p *[]string, long, short, meta, usage string) {
	f.Var((*stringList)(p), long, usage)
	f.add(long, short, meta)
}

// stringList is a flag.Value collecting every occurrence of a flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ", ") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// printFlags writes the flags as "  -o, --output FILE  usage (default x)".
func (f *flagSet) printFlags(w io.Writer) {
	type row struct{ left, usage string }
	var rows []row
	width := 0
	for _, long := range f.order {
		fl := f.Lookup(long)
		name, usage := f.meta[long], fl.Usage
		left := "--" + long
		if s := f.short[long]; s != "" {
			left = "-" + s + ", " + left
		} else {
			left = "    " + left
		}
		if name != "" {
			left += " " + name
		}
		if d := fl.DefValue; d != "" && d != "false" && d != "0" && d != "[]" {
			usage += " (default " + d + ")"
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	}
	width = min(width, 30)
	for _, r := range rows {
		writeDefinition(w, r.left, r.usage, width)
	}
}

// helpWidth is the width help text is wrapped to.
const helpWidth = 80

// writeDefinition writes "  term  text" with text wrapped to helpWidth and
// its continuation lines indented under its first; a term wider than width
// puts the text on the next line.
func writeDefinition(w io.Writer, term, text string, width int) {
	indent := 2 + width + 2
	if len(term) > width {
		fmt.Fprintf(w, "  %s\n%*s", term, indent, "")
	} else {
		fmt.Fprintf(w, "  %-*s  ", width, term)
	}
	col := indent
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if col+1+len([]rune(word)) > helpWidth {
				fmt.Fprintf(w, "\n%*s", indent, "")
				col = indent
			} else {
				fmt.Fprint(w, " ")
				col++
			}
		}
		fmt.Fprint(w, word)
		col += len([]rune(word))
	}
	fmt.Fprintln(w)
}

// parse parses args, allowing flags after positional arguments (as in
// `blipcuda match img.jpg --text "a dog"`); "--" ends the flags. It returns
// the positional arguments. -h and --help give flag.ErrHelp.
func (f *flagSet) parse(args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		fl := f.Lookup(name)
		if fl == nil {
			continue // flag.Parse reports it
		}
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := f.FlagSet.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + name
		}
		return nil, usagef("%s", strings.Replace(msg, " for flag -", " for flag --", 1))
	}
	return append(pos, f.Args()...), nil
}

// envDoc describes the environment variables a command reads.
var envDoc = []struct{ name, doc string }{
	{"HF_HOME", "root of the Hugging Face cache and token file (default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface)"},
	{"HF_HUB_CACHE", "model cache directory, shared with transformers (default $HF_HOME/hub)"},
	{"HF_ENDPOINT", "Hub URL, for mirrors (default https://huggingface.co)"},
	{"HF_HUB_OFFLINE", "1: use the cache only, never the network (no download on first use)"},
	{"HF_TOKEN", "access token for private or gated repositories (default: the file $HF_HOME/token)"},
	{"HF_HUB_DISABLE_PROGRESS_BARS", "1: no download progress on stderr"},
	{"HF_HUB_ETAG_TIMEOUT", "seconds to wait for the Hub's answer about a file (default 10)"},
	{"HF_HUB_DOWNLOAD_TIMEOUT", "seconds without data before a transfer is retried (default 10)"},
	{"BLIPCUDA_MODEL", "default for --model (default base-coco)"},
	{"BLIPCUDA_HUB_RETRIES", "retries of a failed or interrupted download, resuming where it stopped (default 4)"},
	{"NO_COLOR", "set: no colour in the table output"},
	{"BLIPCUDA_FONTS", "font files or directories searched first for characters of --plot labels the built-in font lacks (CJK, ...)"},
}

// printEnv writes the documentation of the named variables (all when names
// is nil).
func printEnv(w io.Writer, names []string) {
	fmt.Fprintln(w, "\nEnvironment:")
	width := 0
	for _, e := range envDoc {
		if names == nil || contains(names, e.name) {
			width = max(width, len(e.name))
		}
	}
	for _, e := range envDoc {
		if names == nil || contains(names, e.name) {
			writeDefinition(w, e.name, e.doc, width)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// logHandler is a slog.Handler for a command line: one line per record,
// "blipcuda: message key=value …", with "warning: " or "error: " before
// the message of those levels. No time stamps.
type logHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	attrs string // preformatted " key=value" pairs
	group string // prefix for keys
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(&logHandler{mu: &sync.Mutex{}, w: w, level: level})
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("blipcuda: ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	case r.Level < slog.LevelInfo:
		b.WriteString("debug: ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group + a.Key + "."
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		v = strconv.Quote(v)
	}
	b.WriteString(" " + group + a.Key + "=" + v)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	h2 := *h
	h2.attrs += b.String()
	return &h2
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group += name + "."
	return &h2
}

// useColor reports whether f is a terminal that wants colour: not when
// NO_COLOR is set (https://no-color.org) or TERM is "dumb".
func useColor(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	if os.Getenv("TERM") == "dumb" {
		return false
	}
	return hub.IsTerminal(f)
}
