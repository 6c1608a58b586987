//go:build unix

package outfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda/internal/outfile/outfiletest"
)

// leftovers lists the temporary files left in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			tmp = append(tmp, e.Name())
		}
	}
	return tmp
}

func write(t *testing.T, path, content string) error {
	t.Helper()
	return WriteFile(context.Background(), path, func(w io.Writer) error {
		_, err := io.WriteString(w, content)
		return err
	})
}

func TestRegularFileReplacedAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	if err := write(t, p, "new file"); err != nil {
		t.Fatal(err)
	}
	if got := outfiletest.Contents(t, p); got != "new file" {
		t.Fatalf("got %q", got)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("new file mode %v, want 0644", st.Mode().Perm())
	}
	// An existing file keeps its mode and its contents until Commit.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Target().Mode != Replace {
		t.Errorf("mode %v, want replace", f.Target().Mode)
	}
	io.WriteString(f, strings.Repeat("x", 3<<20)) // past the buffer
	if got := outfiletest.Contents(t, p); got != "new file" {
		t.Fatalf("before Commit the path holds %d bytes, want the old contents", len(got))
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := outfiletest.Contents(t, p); len(got) != 3<<20 {
		t.Fatalf("after Commit: %d bytes", len(got))
	}
	st, _ = os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("replaced file mode %v, want 0600 kept", st.Mode().Perm())
	}
	if tmp := leftovers(t, dir); tmp != nil {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestSymlinkWrittenThrough(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	target := filepath.Join(other, "target.txt")
	os.WriteFile(target, []byte("old"), 0o644)
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink("other/target.txt", link); err != nil {
		t.Fatal(err)
	}
	if err := write(t, link, "through"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", st.Mode(), err)
	}
	if got := outfiletest.Contents(t, target); got != "through" {
		t.Errorf("target holds %q", got)
	}
	// A dangling link creates its target; a chain of links is followed.
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(other, "new.txt"), dangling)
	chain := filepath.Join(dir, "chain")
	os.Symlink("dangling", chain)
	if err := write(t, chain, "created"); err != nil {
		t.Fatal(err)
	}
	if got := outfiletest.Contents(t, filepath.Join(other, "new.txt")); got != "created" {
		t.Errorf("dangling target holds %q", got)
	}
	if tmp := append(leftovers(t, dir), leftovers(t, other)...); tmp != nil {
		t.Errorf("temporary files left: %v", tmp)
	}
	// A loop is an error, not a hang.
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Symlink("b", a)
	os.Symlink("a", b)
	if err := write(t, a, "x"); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("symlink loop: %v", err)
	}
}

func TestDeviceWrittenDirectly(t *testing.T) {
	null := outfiletest.DeviceNode(t, "null", outfiletest.Null)
	if err := write(t, null, strings.Repeat("data", 1<<20)); err != nil {
		t.Fatalf("writing a null device: %v", err)
	}
	st, err := os.Lstat(null)
	if err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("the device node was replaced: mode %v, %v", st.Mode(), err)
	}
	if tmp := leftovers(t, filepath.Dir(null)); tmp != nil {
		t.Errorf("temporary files left: %v", tmp)
	}

	full := outfiletest.DeviceNode(t, "full", outfiletest.Full)
	err = write(t, full, "some results")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), full) {
		t.Errorf("writing a full device: %v, want ENOSPC naming %s", err, full)
	}
	if st, _ := os.Lstat(full); st.Mode()&fs.ModeCharDevice == 0 {
		t.Error("the full device node was replaced")
	}
}

func TestFIFOWrittenDirectly(t *testing.T) {
	p, got := outfiletest.FIFO(t, t.TempDir(), "fifo")
	if err := write(t, p, "to the reader"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "to the reader" {
			t.Errorf("reader got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the FIFO's reader never got EOF")
	}
	if st, _ := os.Lstat(p); st.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v", st.Mode())
	}

	// With no reader, a cancelled context ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Create(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("FIFO without a reader: %v, want the context's error", err)
	}
}

func TestDescriptorPath(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(r, b, len("through the descriptor"))
		got <- string(b[:n])
	}()
	for _, p := range []string{fmt.Sprintf("/dev/fd/%d", w.Fd()), fmt.Sprintf("/proc/self/fd/%d", w.Fd())} {
		tg, err := Resolve(p)
		if err != nil || tg.Mode != Direct {
			t.Fatalf("Resolve(%s) = %+v, %v; want direct", p, tg, err)
		}
	}
	if err := write(t, fmt.Sprintf("/dev/fd/%d", w.Fd()), "through the descriptor"); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "through the descriptor" {
		t.Errorf("pipe got %q", s)
	}
	// The process's own descriptor stays open.
	if _, err := w.Write([]byte("x")); err != nil {
		t.Errorf("the descriptor was closed: %v", err)
	}
	for _, p := range []string{"/dev/stdout", "/dev/stderr", "/dev/fd/1"} {
		if tg, err := Resolve(p); err != nil || tg.Mode != Direct {
			t.Errorf("Resolve(%s) = %+v, %v; want direct", p, tg, err)
		}
	}
}

func TestRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	missing := filepath.Join(dir, "missing", "x.png")
	if _, err := Resolve(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing directory: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := Resolve(filepath.Join(file, "x")); err == nil {
		t.Error("a file as directory: no error")
	}
	if _, err := Resolve(""); err == nil {
		t.Error("empty path: no error")
	}
}

func TestCancelledWriteLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	os.WriteFile(p, []byte("old"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	f, err := Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, bufSize/2)); err != nil {
		t.Fatal(err)
	}
	cancel() // an interrupt during the final write
	_, err = f.Write(make([]byte, 2*bufSize))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), p) {
		t.Errorf("write after cancel: %v", err)
	}
	if err := f.Commit(); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit after cancel: %v", err)
	}
	if got := outfiletest.Contents(t, p); got != "old" {
		t.Errorf("the path holds %d bytes, want the old contents", len(got))
	}
	if tmp := leftovers(t, dir); tmp != nil {
		t.Errorf("temporary files left: %v", tmp)
	}

	// Cancelled after the last write, before Commit: not renamed either.
	ctx, cancel = context.WithCancel(context.Background())
	f, _ = Create(ctx, p)
	io.WriteString(f, "new")
	cancel()
	if err := f.Commit(); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit after cancel: %v", err)
	}
	if got := outfiletest.Contents(t, p); got != "old" || leftovers(t, dir) != nil {
		t.Errorf("after a cancelled Commit: %q, %v", got, leftovers(t, dir))
	}
}

func TestCommitAllAllOrNothing(t *testing.T) {
	full := outfiletest.DeviceNode(t, "full", outfiletest.Full)
	dir := t.TempDir()
	ctx := context.Background()
	a, err := Create(ctx, filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(a, "a")
	io.WriteString(b, "b")
	if err := CommitAll(a, b); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("CommitAll: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a.json written although b failed: %v", err)
	}
	if tmp := leftovers(t, dir); tmp != nil {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(context.Background(), filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "pending")
	if leftovers(t, dir) == nil {
		t.Fatal("no temporary file while writing")
	}
	RemoveTemps()
	if tmp := leftovers(t, dir); tmp != nil {
		t.Errorf("RemoveTemps left %v", tmp)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after RemoveTemps succeeded")
	}
}

func TestClash(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img.png")
	os.WriteFile(img, []byte("png"), 0o644)
	hard := filepath.Join(dir, "hard.png")
	os.Link(img, hard)
	sym := filepath.Join(dir, "sym.png")
	os.Symlink("img.png", sym)
	t.Chdir(dir)
	inputs := []Use{{"image", img}, {"the texts file", "-"}}
	for _, c := range []struct {
		outs []Use
		want string
	}{
		{[]Use{{"--output", img}}, "--output " + img + " is the same file as image " + img},
		{[]Use{{"--output", "img.png"}}, "same file as image"},
		{[]Use{{"--output", "./sub/../img.png"}}, "same file as image"},
		{[]Use{{"--plot", sym}}, "same file as image"},
		{[]Use{{"--plot", hard}}, "same file as image"},
		{[]Use{{"--plot", "new.png"}, {"--output", filepath.Join(dir, "new.png")}}, "--output " + filepath.Join(dir, "new.png") + " is the same file as --plot new.png"},
		{[]Use{{"--plot", "p.png"}, {"--output", "o.json"}}, ""},
		{[]Use{{"--plot", "/dev/null"}, {"--output", "/dev/null"}}, ""},
		{[]Use{{"--output", "-"}, {"--plot", "-"}}, ""},
	} {
		os.Mkdir("sub", 0o755)
		err := Clash(c.outs, inputs)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.outs, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want %q", c.outs, err, c.want)
		}
	}
}
