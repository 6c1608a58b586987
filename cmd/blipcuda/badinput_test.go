package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBadInput: each mistake gets a clear message naming the input, a
// non-zero status (2 for what was typed wrong, 1 for the rest), and
// nothing is written.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	img := imagesDir + "/scene.png"
	empty := writeFile(t, dir, "empty.txt", "")
	blank := writeFile(t, dir, "blank.txt", "\n  \n\t\n")
	badUTF8 := writeFile(t, dir, "latin1.txt", "a dog\ncaf\xe9\n")
	noImages := filepath.Join(dir, "noimages")
	writeFile(t, noImages, "readme.txt", "no images here")
	notImage := filepath.Join(dir, "fake.png")
	copyFile(t, badImages+"/bad_text.jpg", notImage)
	noWeights := filepath.Join(dir, "noweights")
	copyFile(t, tinyBase+"/config.json", filepath.Join(noWeights, "config.json"))
	copyFile(t, tinyBase+"/vocab.txt", filepath.Join(noWeights, "vocab.txt"))
	noVocab := filepath.Join(dir, "novocab")
	copyFile(t, tinyBase+"/config.json", filepath.Join(noVocab, "config.json"))
	copyFile(t, tinyBase+"/model.safetensors", filepath.Join(noVocab, "model.safetensors"))
	badWeights := filepath.Join(dir, "badweights")
	copyFile(t, tinyBase+"/config.json", filepath.Join(badWeights, "config.json"))
	copyFile(t, tinyBase+"/vocab.txt", filepath.Join(badWeights, "vocab.txt"))
	writeFile(t, badWeights, "model.safetensors", "\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
	out := filepath.Join(dir, "out.json")
	m := []string{"-m", tinyBase}

	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown command", []string{"mtach"}, exitUsage, []string{`unknown command "mtach"`}},
		{"unknown flag", []string{"match", img, "-t", "a", "--bogus"}, exitUsage, []string{"unknown flag --bogus", "blipcuda match --help"}},
		{"bad flag value", []string{"match", img, "-t", "a", "--top", "many"}, exitUsage, []string{"--top"}},
		{"bad score", []string{"match", img, "-t", "a", "--score", "itx"}, exitUsage, []string{`--score "itx"`}},
		{"bad format", []string{"match", img, "-t", "a", "--format", "yaml"}, exitUsage, []string{`--format "yaml"`}},
		{"bad protocol", []string{"match", img, "-t", "a", "--protocol", "lavis"}, exitUsage, []string{`--protocol "lavis"`}},
		{"bad device", []string{"match", img, "-t", "a", "--device", "tpu"}, exitUsage, []string{`--device "tpu"`}},
		{"bad precision", []string{"match", img, "-t", "a", "--precision", "int8"}, exitUsage, []string{`--precision "int8"`}},
		{"verbose and quiet", []string{"match", img, "-t", "a", "-v", "-q"}, exitUsage, []string{"--verbose and --quiet"}},
		{"unknown model", []string{"match", img, "-t", "a", "-m", "base-cocoa"}, exitUsage, []string{`unknown model "base-cocoa"`, "large-flickr"}},
		{"unknown model path", []string{"match", img, "-t", "a", "-m", "./models/mine"}, exitUsage, []string{`"./models/mine"`, "checkpoint directory"}},
		{"no images", []string{"match", "-t", "a"}, exitUsage, []string{"no images"}},
		{"no texts", []string{"match", img}, exitUsage, []string{"no texts"}},
		{"empty text", []string{"match", img, "-t", "a dog", "--text", ""}, exitUsage, []string{`--text #2 ("")`, "empty"}},
		{"whitespace text", []string{"match", img, "--text", " \t "}, exitUsage, []string{"--text #1", "whitespace"}},
		{"text with no words", []string{"match", img, "--text", "...!!! ~"}, exitUsage, []string{"--text #1", "caption cleaning", "--protocol hf"}},
		{"invalid UTF-8 text", []string{"match", img, "--text", "caf\xe9"}, exitUsage, []string{"--text #1", "UTF-8"}},
		{"plot not png", []string{"match", img, "-t", "a", "--plot", filepath.Join(dir, "plot.jpg")}, exitUsage, []string{"--plot", "FILE.png"}},
		{"missing image", []string{"match", filepath.Join(dir, "nope.jpg"), "-t", "a"}, exitFailure, []string{"image " + filepath.Join(dir, "nope.jpg"), "no such file"}},
		{"not an image", []string{"match", notImage, "-t", "a"}, exitFailure, []string{"image " + notImage, "not a supported image"}},
		{"directory without images", []string{"match", noImages, "-t", "a"}, exitFailure, []string{"image directory " + noImages, "holds no images"}},
		{"empty texts file", []string{"match", img, "--texts", empty}, exitFailure, []string{"texts file " + empty, "has no texts"}},
		{"blank texts file", []string{"match", img, "--texts", blank}, exitFailure, []string{"texts file " + blank, "has no texts"}},
		{"missing texts file", []string{"match", img, "--texts", filepath.Join(dir, "nope.txt")}, exitFailure, []string{"texts file " + filepath.Join(dir, "nope.txt"), "no such file"}},
		{"texts file is a directory", []string{"match", img, "--texts", noImages}, exitFailure, []string{"texts file " + noImages, "directory"}},
		{"invalid UTF-8 line", []string{"match", img, "--texts", badUTF8}, exitFailure, []string{"texts file " + badUTF8 + ", line 2", "UTF-8"}},
		{"model dir without weights", []string{"match", img, "-t", "a", "-m", noWeights}, exitFailure, []string{noWeights, "model.safetensors", "pytorch_model.bin"}},
		{"model dir without vocabulary", []string{"match", img, "-t", "a", "-m", noVocab}, exitFailure, []string{noVocab}},
		{"model dir without config", []string{"match", img, "-t", "a", "-m", noImages}, exitFailure, []string{noImages, "config.json"}},
		{"corrupt weights", []string{"match", img, "-t", "a", "-m", badWeights}, exitFailure, []string{filepath.Join(badWeights, "model.safetensors")}},
		{"cuda unavailable", []string{"match", img, "-t", "a", "--device", "cuda"}, exitFailure, []string{"cuda", "--device cpu"}},
		{"output directory missing", []string{"match", img, "-t", "a", "-o", filepath.Join(dir, "no", "out.json")}, exitFailure, []string{"--output", filepath.Join(dir, "no")}},
		{"output is a directory", []string{"match", img, "-t", "a", "-o", noImages}, exitFailure, []string{"--output " + noImages, "is a directory"}},
		{"embed: missing image", []string{"embed", filepath.Join(dir, "nope.png")}, exitFailure, []string{"nope.png"}},
		{"embed: empty text", []string{"embed", "-t", "   "}, exitUsage, []string{"--text #1"}},
		{"models: argument", []string{"models", "base-coco"}, exitUsage, []string{"no arguments"}},
		{"version: argument", []string{"version", "x"}, exitUsage, []string{"no arguments"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "cuda unavailable" && expectedDevice() == "cuda" {
				t.Skip("a CUDA device (real or emulated) is available here")
			}
			args := c.args
			if args[0] == "match" || args[0] == "embed" {
				if !contains(args, "-m") {
					args = append(append([]string{}, args...), m...)
				}
			}
			r := run(t, runOpts{}, args...)
			wantFail(t, r, c.code, c.want...)
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, "blipcuda") {
				t.Errorf("stderr does not start with the program's name: %q", r.stderr)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run wrote its output")
	}
	for _, e := range listDir(t, dir) {
		if strings.Contains(e, ".tmp") {
			t.Errorf("temporary file %s left behind", e)
		}
	}
}

// TestFullDisk: a write error on stdout (here ENOSPC from /dev/full) is an
// error, not a silent truncation.
func TestFullDisk(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/dev/full is Linux's")
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer full.Close()
	for _, args := range [][]string{
		{"match", imagesDir, "-t", "a dog", "-m", tinyBase, "-f", "json"},
		{"embed", imagesDir, "-m", tinyBase},
		{"models"},
	} {
		cmd, _, stderr := binCmd(t, runOpts{}, args...)
		cmd.Stdout = full
		err := cmd.Run()
		if err == nil || cmd.ProcessState.ExitCode() != exitFailure {
			t.Errorf("%v: %v, want exit 1", args, err)
		}
		if !strings.Contains(stderr.String(), "no space left on device") {
			t.Errorf("%v: stderr %q", args, stderr)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, c := range [][]string{{"match", "--help"}, {"help", "match"}, {"match", "-h"}} {
		r := mustRun(t, runOpts{}, c...)
		for _, w := range []string{"Usage: blipcuda match", "--text TEXT", "--texts FILE", "-m, --model", "--score itm|itc|both",
			"--plot FILE.png", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "NO_COLOR", "Exit status"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%v: help lacks %q", c, w)
			}
		}
		if r.stderr != "" {
			t.Errorf("%v: stderr %q", c, r.stderr)
		}
	}
	for _, name := range []string{"embed", "models", "pull", "convert", "version"} {
		r := mustRun(t, runOpts{}, name, "--help")
		if !strings.Contains(r.stdout, "Usage: blipcuda "+name) || !strings.Contains(r.stdout, "--quiet") {
			t.Errorf("%s --help:\n%s", name, r.stdout)
		}
		if name == "pull" && !strings.Contains(r.stdout, "HF_ENDPOINT") {
			t.Errorf("pull --help does not list the environment:\n%s", r.stdout)
		}
	}
	r := mustRun(t, runOpts{}, "--help")
	for _, c := range commands {
		if !strings.Contains(r.stdout, "  "+c.name+" ") {
			t.Errorf("--help does not list %s", c.name)
		}
	}
	wantFail(t, run(t, runOpts{}), exitUsage, "Usage: blipcuda COMMAND")
	wantFail(t, run(t, runOpts{}, "help", "nope"), exitUsage, `unknown command "nope"`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if r := mustRun(t, runOpts{}, args...); !strings.HasPrefix(r.stdout, "blipcuda ") || !strings.Contains(r.stdout, runtime.Version()) {
			t.Errorf("%v: %q", args, r.stdout)
		}
	}
}

// TestDoubleDash: "--" ends the flags, so a file may be named like one.
func TestDoubleDash(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, imagesDir+"/scene.png", filepath.Join(dir, "-v.png"))
	r := mustRun(t, runOpts{dir: dir}, "match", "-m", mustAbs(t, tinyBase), "-t", "a dog", "-f", "json", "--", "-v.png")
	if got := parseMatchJSON(t, r.stdout); len(got.Images) != 1 || got.Images[0] != "-v.png" {
		t.Errorf("images %q", got.Images)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
