package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
)

// In-process tests of the pieces the end-to-end tests reach only partly.

func TestFlagParse(t *testing.T) {
	newSet := func() (*flagSet, *string, *bool, *[]string) {
		fs := newFlagSet("x")
		var s string
		var b bool
		var l []string
		fs.str(&s, "model", "m", "def", "M", "")
		fs.boolean(&b, "quiet", "q", "")
		fs.strs(&l, "text", "t", "T", "")
		return fs, &s, &b, &l
	}
	fs, s, b, l := newSet()
	pos, err := fs.parse([]string{"a.jpg", "--text", "a dog", "dir", "-q", "-m=x", "-t", "-", "--", "--text", "-q"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, "|") != "a.jpg|dir|--text|-q" || *s != "x" || !*b || strings.Join(*l, "|") != "a dog|-" {
		t.Errorf("pos %q model %q quiet %v texts %q", pos, *s, *b, *l)
	}

	fs, _, _, _ = newSet()
	_, err = fs.parse([]string{"a.jpg", "--nope"})
	var ue *usageError
	if !errors.As(err, &ue) || ue.Error() != "unknown flag --nope" {
		t.Errorf("unknown flag: %v", err)
	}
	fs, _, _, _ = newSet()
	if _, err = fs.parse([]string{"a.jpg", "--model"}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "needs an argument") {
		t.Errorf("missing value: %v", err)
	}
	fs, _, _, _ = newSet()
	if _, err = fs.parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	fs, _, _, _ = newSet()
	var help bytes.Buffer
	fs.printFlags(&help)
	if !strings.Contains(help.String(), "-m, --model M") || !strings.Contains(help.String(), "(default def)") ||
		!strings.Contains(help.String(), "    --text T") && !strings.Contains(help.String(), "-t, --text T") {
		t.Errorf("help:\n%s", help.String())
	}
}

func TestNPYHeader(t *testing.T) {
	for _, c := range []struct {
		shape []int
		dict  string
	}{
		{[]int{3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"},
		{[]int{2, 256}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 256), }"},
		{[]int{1, 577, 768}, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 577, 768), }"},
	} {
		h := npyHeader(c.shape)
		if len(h)%64 != 0 || h[len(h)-1] != '\n' || !bytes.HasPrefix(h, []byte("\x93NUMPY\x01\x00")) {
			t.Errorf("%v: header %q", c.shape, h)
		}
		if n := int(h[8]) | int(h[9])<<8; n != len(h)-10 {
			t.Errorf("%v: header length %d, want %d", c.shape, n, len(h)-10)
		}
		if got := strings.TrimRight(string(h[10:]), " \n"); got != c.dict {
			t.Errorf("%v: dict %q", c.shape, got)
		}
	}
	var buf bytes.Buffer
	if err := writeNPY(&buf, array{"x", []int{2}, []float32{1, -2}}); err != nil {
		t.Fatal(err)
	}
	if tail := buf.Bytes()[len(npyHeader([]int{2})):]; !bytes.Equal(tail, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}) {
		t.Errorf("data % x", tail)
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	l := newLogger(&buf, slog.LevelInfo)
	l.Debug("hidden")
	l.Info("hello", "n", 3, "path", "a b")
	l.With("repo", "x/y").WithGroup("g").Warn("careful", "k", "")
	l.WithGroup("").Error("bad", slog.Group("grp", "a", 1))
	want := "blipcuda: hello n=3 path=\"a b\"\n" +
		"blipcuda: warning: careful repo=x/y g.k=\"\"\n" +
		"blipcuda: error: bad grp.a=1\n"
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	newLogger(&buf, slog.LevelDebug).Debug("shown")
	if buf.String() != "blipcuda: debug: shown\n" {
		t.Errorf("debug: %q", buf.String())
	}
}

func TestWriteJSONObject(t *testing.T) {
	var buf bytes.Buffer
	var none [][]float32
	err := writeJSONObject(&buf, []jsonField{
		{"a", 1}, {"empty", rowsOf([]string{})}, {"none", rowsOf(none)}, {"m", rowsOf([][]float32{{1, 0.5}, {2, 3}})},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": 1,\n  \"empty\": [],\n  \"none\": null,\n  \"m\": [\n    [1,0.5],\n    [2,3]\n  ]\n}\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
	nan := float32(0)
	nan /= nan
	if err := writeJSONObject(&buf, []jsonField{{"x", rowsOf([][]float32{{nan}})}}); err == nil {
		t.Error("NaN: no error")
	}
}
