//go:build unix

package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda/internal/outfile/outfiletest"
)

// offline makes loading base-coco fail at once (an empty cache, no
// network): a test that gets another error proves the check came first.
var offline = runOpts{env: []string{"HF_HUB_OFFLINE=1"}}

func isCharDevice(t *testing.T, p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode()&fs.ModeCharDevice != 0
}

// TestOutputsAreNeverReplaced: -o, --plot and convert -o write devices,
// FIFOs and descriptors directly and write through symlinks.
func TestOutputsAreNeverReplaced(t *testing.T) {
	match := []string{"match", imagesDir + "/scene.png", "-m", tinyBase, "-t", "a dog", "-q"}
	null := outfiletest.DeviceNode(t, "null", outfiletest.Null)
	mustRun(t, runOpts{}, append(match, "--plot", filepath.Join(t.TempDir(), "p.png"), "-o", null)...)
	if !isCharDevice(t, null) {
		t.Error("match -o NULL-DEVICE replaced the device node")
	}
	mustRun(t, runOpts{}, append(match, "--plot", null, "-f", "json")...)
	if !isCharDevice(t, null) {
		t.Error("match --plot NULL-DEVICE replaced the device node")
	}

	// A full disk fails with exit 1 and leaves the device alone.
	full := outfiletest.DeviceNode(t, "full", outfiletest.Full)
	wantFail(t, run(t, runOpts{}, append(match, "-o", full)...), 1, full, "no space left")
	if !isCharDevice(t, full) {
		t.Error("match -o FULL-DEVICE replaced the device node")
	}

	// A symlink is written through.
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "link.json")
	os.Symlink("real.json", link)
	mustRun(t, runOpts{}, append(match, "-o", link)...)
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v", err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), `"itm_prob"`) {
		t.Errorf("the link's target holds %q (want JSON: the format comes from the .json name)", b)
	}

	// A FIFO is written, not replaced, and its reader gets the results.
	fifo, got := outfiletest.FIFO(t, dir, "fifo")
	mustRun(t, runOpts{}, append(match, "-o", fifo, "-f", "csv")...)
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "image_index,") {
			t.Errorf("the FIFO's reader got %q", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the FIFO's reader got nothing")
	}
	if st, _ := os.Lstat(fifo); st.Mode()&fs.ModeNamedPipe == 0 {
		t.Error("the FIFO was replaced")
	}

	// /dev/stdout is the command's stdout.
	r := mustRun(t, runOpts{}, append(match, "-o", "/dev/stdout")...)
	if !strings.Contains(r.stdout, "a dog") {
		t.Errorf("-o /dev/stdout printed %q", r.stdout)
	}

	// convert writes a device directly too (no --force needed: nothing is
	// overwritten).
	mustRun(t, runOpts{}, "convert", tinyLarge, "-o", null, "-q")
	if !isCharDevice(t, null) {
		t.Error("convert -o NULL-DEVICE replaced the device node")
	}
	if names := listDir(t, dir); len(names) != 3 { // real.json, link.json, fifo
		t.Errorf("left in the output directory: %v", names)
	}
}

// TestOutputsThatAreInputs: an output that is an input, or the other
// output, is refused before the model loads.
func TestOutputsThatAreInputs(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img.png")
	copyFile(t, imagesDir+"/scene.png", img)
	texts := writeFile(t, dir, "texts.txt", "a dog\n")
	base := []string{"match", img, "--texts", texts, "-m", "base-coco"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", img}, "--output " + img + " is the same file as image " + img},
		{[]string{"-o", filepath.Join(dir, ".", "texts.txt")}, "same file as texts file"},
		{[]string{"--plot", filepath.Join(dir, "x.png"), "-o", filepath.Join(dir, "x.png")}, "is the same file as --plot"},
		{[]string{"--plot", img}, "--plot " + img + " is the same file as image"},
	} {
		wantFail(t, run(t, offline, append(base, c.args...)...), 2, c.want)
	}
	b, _ := os.ReadFile(img)
	if orig, _ := os.ReadFile(imagesDir + "/scene.png"); string(b) != string(orig) {
		t.Error("the input image was changed")
	}
	// A model file as output.
	mdir := t.TempDir()
	for _, e := range listDir(t, tinyBase) {
		copyFile(t, filepath.Join(tinyBase, e), filepath.Join(mdir, e))
	}
	wantFail(t, run(t, runOpts{}, "match", img, "-t", "a dog", "-m", mdir, "-o", filepath.Join(mdir, "config.json")), 2,
		"same file as model file")
	// The format follows -o's name; a contradiction is refused.
	out := filepath.Join(dir, "out.csv")
	mustRun(t, runOpts{}, "match", img, "-t", "a dog", "-m", tinyBase, "-o", out, "-q")
	if b, _ := os.ReadFile(out); !strings.HasPrefix(string(b), "image_index,image,") {
		t.Errorf("-o out.csv wrote %q", b)
	}
	wantFail(t, run(t, runOpts{}, "match", img, "-t", "a dog", "-m", tinyBase, "-o", out, "-f", "json"), 2,
		"--format json does not match --output "+out)
}

// TestPlotCheckedBeforeLoading: a plot too large to draw is refused before
// the model loads, naming command-line flags; sizes that fit after
// shrinking are accepted.
func TestPlotCheckedBeforeLoading(t *testing.T) {
	dir := t.TempDir()
	imgs := make([]string, 200)
	for i := range imgs {
		imgs[i] = filepath.Join(dir, fmt.Sprintf("img_%03d.png", i))
		copyFile(t, imagesDir+"/scene.png", imgs[i])
	}
	var texts strings.Builder
	for i := range 500 {
		fmt.Fprintf(&texts, "caption number %d of a long list\n", i)
	}
	tf := writeFile(t, t.TempDir(), "texts.txt", texts.String())
	args := append(append([]string{"match"}, imgs...), "--texts", tf, "-m", "base-coco", "--plot", filepath.Join(dir, "p.png"))
	r := run(t, offline, args...)
	wantFail(t, r, 2, "--plot", "cannot be drawn legibly", "leave --plot out")
	if strings.Contains(r.stderr, "CellSize") || strings.Contains(r.stderr, "not in the Hugging Face cache") {
		t.Errorf("the refusal names library fields, or came after loading:\n%s", r.stderr)
	}
}

// writePNG writes a w×h PNG and returns its bytes.
func pngBytes(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 31)
	}
	img.Set(1, 1, color.RGBA{200, 10, 10, 255})
	var b strings.Builder
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// TestBadImagesFoundEarly: a truncated image is found before the model
// loads; one that only fails when decoded mid-run is named, --skip-bad is
// suggested, and the results of the images before it are kept.
func TestBadImagesFoundEarly(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.png")
	copyFile(t, imagesDir+"/scene.png", good)
	cut := filepath.Join(dir, "cut.png")
	b := pngBytes(t, 64, 64)
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	wantFail(t, run(t, offline, "match", good, cut, "-t", "a dog", "-m", "base-coco"), 1, cut, "truncated", "--skip-bad")

	// Corrupt pixel data behind a sound header and end: found when decoded,
	// after the first chunk of 32 images is done.
	bad := filepath.Join(dir, "zz_bad.png")
	corrupt := append([]byte{}, b...)
	for i := 60; i < len(corrupt)-20; i++ {
		corrupt[i] ^= 0x5a
	}
	os.WriteFile(bad, corrupt, 0o644)
	os.Remove(cut)
	for i := range 32 {
		copyFile(t, imagesDir+"/blocks.png", filepath.Join(dir, fmt.Sprintf("img_%02d.png", i)))
	}
	out := filepath.Join(dir, "out.json")
	r := run(t, runOpts{}, "match", dir, "-t", "a dog", "-m", tinyBase, "-o", out)
	wantFail(t, r, 1, bad, "--skip-bad", "the results of the 32 images before it are in "+out)
	got := parseMatchJSON(t, outfiletest.Contents(t, out))
	if len(got.Images) != 32 || len(got.ITMProb) != 32 {
		t.Errorf("kept %d images, %d rows; want the 32 done", len(got.Images), len(got.ITMProb))
	}
	// embed names the image, suggests --skip-bad and keeps what is done too.
	eout := filepath.Join(t.TempDir(), "e.json")
	wantFail(t, run(t, runOpts{}, "embed", dir, "-t", "a dog", "-m", tinyBase, "-o", eout), 1, bad, "--skip-bad",
		"the embeddings of the 32 images before it are in "+eout)
	if s := outfiletest.Contents(t, eout); strings.Count(s, ".png\"") != 32 || !strings.Contains(s, `"text_embeds"`) {
		t.Errorf("embed kept %d images", strings.Count(s, ".png\""))
	}
	// The table streams: what was done is on stdout.
	r = run(t, runOpts{}, "match", dir, "-t", "a dog", "-m", tinyBase)
	if r.code != 1 || strings.Count(r.stdout, "rank") != 32 {
		t.Errorf("streamed table: exit %d, %d images shown", r.code, strings.Count(r.stdout, "rank"))
	}
}

// TestInterruptDuringFinalWrite: a SIGINT while the results are being
// written (to a FIFO whose reader has stopped reading) stops the write,
// and the run ends with status 130, not 0.
func TestInterruptDuringFinalWrite(t *testing.T) {
	dir := t.TempDir()
	var texts strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&texts, "caption number %d\n", i)
	}
	tf := writeFile(t, dir, "texts.txt", texts.String())
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	cmd, _, stderr := binCmd(t, runOpts{}, "match", imagesDir, "-m", tinyBase, "--texts", tf, "--score", "itc",
		"-f", "json", "-o", fifo)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(fifo) // the command opens it for writing
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Read nothing: the JSON (≈ 300 kB) fills the pipe and the write blocks.
	time.Sleep(3 * time.Second)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 20 s after SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit %d after SIGINT during the write, want %d\n%s", code, exitInterrupted, stderr)
	}
}
