package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda"
)

// matchJSON is match's JSON document as README.md documents it.
type matchJSON struct {
	SchemaVersion int            `json:"schema_version"`
	Model         string         `json:"model"`
	Repo          string         `json:"repo"`
	Protocol      string         `json:"protocol"`
	Device        string         `json:"device"`
	Precision     string         `json:"precision"`
	Score         string         `json:"score"`
	Images        []string       `json:"images"`
	Texts         []string       `json:"texts"`
	Truncated     []bool         `json:"truncated"`
	ITMProb       [][]float32    `json:"itm_prob"`
	ITMLogits     [][][2]float32 `json:"itm_logits"`
	ITC           [][]float32    `json:"itc"`
}

func parseMatchJSON(t *testing.T, s string) matchJSON {
	t.Helper()
	var m matchJSON
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("match JSON: %v\n%s", err, s)
	}
	return m
}

// longText has more than BLIP's 30 words.
var longText = strings.Repeat("a dog runs on the beach and ", 6) + "barks"

// TestMatchJSONIsTheLibrarysScores: every number of match's JSON is the
// library's, for both tiny models and both protocols, with images from a
// directory and a file, and texts from --text and a --texts file.
func TestMatchJSONIsTheLibrarysScores(t *testing.T) {
	dir := t.TempDir()
	textsFile := writeFile(t, dir, "texts.txt", "\ufeffa red bus driving down a city street\r\n\n   \ncolourful waves\n")
	for _, modelDir := range []string{tinyBase, tinyLarge} {
		for _, protocol := range []string{"blip", "hf"} {
			t.Run(filepath.Base(modelDir)+"/"+protocol, func(t *testing.T) {
				// Flags after the images, as users type them.
				r := mustRun(t, runOpts{}, "match", imagesDir, imagesDir+"/scene.png",
					"--text", "a woman and her dog sitting on a beach", "-t", longText,
					"--texts", textsFile, "--model", modelDir, "--protocol", protocol, "--format", "json")
				got := parseMatchJSON(t, r.stdout)
				images := append(fixtureImages(), imagesDir+"/scene.png")
				texts := []string{"a woman and her dog sitting on a beach", longText,
					"a red bus driving down a city street", "colourful waves"}
				want := libScores(t, modelDir, blipcuda.Protocol(protocol), images, texts)
				if got.SchemaVersion != 1 || got.Model != modelDir || got.Repo != "" || got.Protocol != protocol ||
					got.Device != expectedDevice() || got.Precision != "float32" || got.Score != "both" {
					t.Errorf("header = %+v", got)
				}
				if fmt.Sprint(got.Images) != fmt.Sprint(images) || fmt.Sprint(got.Texts) != fmt.Sprint(texts) {
					t.Fatalf("images %q texts %q", got.Images, got.Texts)
				}
				if fmt.Sprint(got.Truncated) != fmt.Sprint(want.Truncated) {
					t.Errorf("truncated = %v, want %v", got.Truncated, want.Truncated)
				}
				if protocol == "blip" && !got.Truncated[1] {
					t.Error("a 43-word text is not reported truncated under the blip protocol")
				}
				if protocol == "blip" && !strings.Contains(r.stderr, "texts[1] was cut") {
					t.Errorf("no warning about the truncated text:\n%s", r.stderr)
				}
				for i := range images {
					for j := range texts {
						if got.ITMProb[i][j] != want.ITMProb[i][j] || got.ITMLogits[i][j] != want.ITMLogits[i][j] ||
							got.ITC[i][j] != want.ITC[i][j] {
							t.Errorf("image %d text %d: prob %v logits %v itc %v, library %v %v %v", i, j,
								got.ITMProb[i][j], got.ITMLogits[i][j], got.ITC[i][j],
								want.ITMProb[i][j], want.ITMLogits[i][j], want.ITC[i][j])
						}
					}
				}
			})
		}
	}
}

func TestMatchScoreVariants(t *testing.T) {
	texts := []string{"a dog", "a red bus", "colourful waves"}
	images := fixtureImages()
	want := libScores(t, tinyBase, blipcuda.ProtocolBLIP, images, texts)
	args := []string{"match", imagesDir, "-m", tinyBase, "-f", "json"}
	for _, s := range texts {
		args = append(args, "-t", s)
	}

	itm := parseMatchJSON(t, mustRun(t, runOpts{}, append(args, "--score", "itm")...).stdout)
	if itm.Score != "itm" || itm.ITC != nil || itm.ITMProb == nil {
		t.Errorf("--score itm: score %q, itc %v", itm.Score, itm.ITC)
	}
	itc := parseMatchJSON(t, mustRun(t, runOpts{}, append(args, "-s", "itc")...).stdout)
	if itc.Score != "itc" || itc.ITMProb != nil || itc.ITMLogits != nil || itc.ITC == nil {
		t.Fatalf("--score itc: %+v", itc)
	}
	for i := range images {
		for j := range texts {
			if itm.ITMProb[i][j] != want.ITMProb[i][j] || itm.ITMLogits[i][j] != want.ITMLogits[i][j] {
				t.Errorf("--score itm: image %d text %d differs from the library", i, j)
			}
			// The ITC-only path sums as the library does: the same bits.
			if itc.ITC[i][j] != want.ITC[i][j] {
				t.Errorf("--score itc: image %d text %d: %v, library %v", i, j, itc.ITC[i][j], want.ITC[i][j])
			}
		}
	}
}

func TestMatchTable(t *testing.T) {
	texts := []string{"a dog", "a red bus", "colourful waves"}
	images := fixtureImages()
	want := libScores(t, tinyLarge, blipcuda.ProtocolBLIP, images, texts)
	r := mustRun(t, runOpts{env: []string{"BLIPCUDA_MODEL=" + tinyLarge}},
		"match", "-t", texts[0], "-t", texts[1], "-t", texts[2], imagesDir)
	blocks := strings.Split(strings.TrimSpace(r.stdout), "\n\n")
	if len(blocks) != len(images) {
		t.Fatalf("%d blocks, want one per image:\n%s", len(blocks), r.stdout)
	}
	for i, b := range blocks {
		lines := strings.Split(b, "\n")
		if lines[0] != images[i] || !strings.Contains(lines[1], "P(match)") || len(lines) != 2+len(texts) {
			t.Fatalf("block %d:\n%s", i, b)
		}
		prev := math.Inf(1)
		for k, line := range lines[2:] {
			f := strings.Fields(line)
			rank, _ := strconv.Atoi(f[0])
			p, _ := strconv.ParseFloat(f[1], 64)
			c, _ := strconv.ParseFloat(f[2], 64)
			text := strings.Join(f[3:], " ")
			j := indexOf(texts, text)
			if rank != k+1 || j < 0 {
				t.Fatalf("line %q", line)
			}
			if math.Abs(p-float64(want.ITMProb[i][j])) > 5e-5 || math.Abs(c-float64(want.ITC[i][j])) > 5e-5 {
				t.Errorf("image %d %q: %v %v, library %v %v", i, text, p, c, want.ITMProb[i][j], want.ITC[i][j])
			}
			if p > prev {
				t.Errorf("image %d: not ranked by P(match):\n%s", i, b)
			}
			prev = p
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Error("colour escapes in output to a pipe")
	}

	// --top 1 and --score itc: one line per image, ranked by the cosine.
	r = mustRun(t, runOpts{}, "match", imagesDir, "-m", tinyLarge, "-t", texts[0], "-t", texts[1], "-t", texts[2],
		"--top", "1", "--score", "itc")
	for i, b := range strings.Split(strings.TrimSpace(r.stdout), "\n\n") {
		lines := strings.Split(b, "\n")
		if len(lines) != 3 || strings.Contains(lines[1], "P(match)") {
			t.Fatalf("--top 1 --score itc, block %d:\n%s", i, b)
		}
		best := 0
		for j := range texts {
			if want.ITC[i][j] > want.ITC[i][best] {
				best = j
			}
		}
		if !strings.HasSuffix(lines[2], " "+texts[best]) {
			t.Errorf("image %d: best by ITC is %q, table says %q", i, texts[best], lines[2])
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestMatchCSV(t *testing.T) {
	texts := []string{"a dog", "a red bus, with a comma", "colourful \"waves\""}
	images := fixtureImages()
	want := libScores(t, tinyBase, blipcuda.ProtocolHF, images, texts)
	dir := t.TempDir()
	out := filepath.Join(dir, "scores.csv")
	r := mustRun(t, runOpts{}, "match", imagesDir, "-m", tinyBase, "--protocol", "hf",
		"-t", texts[0], "-t", texts[1], "-t", texts[2], "--format", "csv", "-o", out)
	if r.stdout != "" {
		t.Errorf("stdout with --output: %q", r.stdout)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("output directory holds %v", names)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "image_index,image,text_index,text,rank,itm_prob,itm_logit_no_match,itm_logit_match,itc,truncated" {
		t.Errorf("header %q", rows[0])
	}
	if len(rows) != 1+len(images)*len(texts) {
		t.Fatalf("%d rows", len(rows))
	}
	f32 := func(s string) float32 {
		v, err := strconv.ParseFloat(s, 32)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return float32(v)
	}
	for _, row := range rows[1:] {
		i, _ := strconv.Atoi(row[0])
		j, _ := strconv.Atoi(row[2])
		if row[1] != images[i] || row[3] != texts[j] || row[9] != "false" {
			t.Errorf("row %q", row)
		}
		if f32(row[5]) != want.ITMProb[i][j] || f32(row[6]) != want.ITMLogits[i][j][0] ||
			f32(row[7]) != want.ITMLogits[i][j][1] || f32(row[8]) != want.ITC[i][j] {
			t.Errorf("row %q: library %v %v %v", row, want.ITMProb[i][j], want.ITMLogits[i][j], want.ITC[i][j])
		}
	}
}

func TestMatchPlot(t *testing.T) {
	dir := t.TempDir()
	for _, score := range []string{"both", "itc"} {
		out := filepath.Join(dir, score+".png")
		r := mustRun(t, runOpts{}, "match", imagesDir, badImages+"/photo_97x71.webp", "-m", tinyBase,
			"-t", "a dog", "-t", "a red bus", "--score", score, "--plot", out, "-q")
		if r.stderr != "" {
			t.Errorf("--quiet: stderr %q", r.stderr)
		}
		if !strings.Contains(r.stdout, "P(match)") != (score == "itc") {
			t.Errorf("table for --score %s:\n%s", score, r.stdout)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		// 4 images × 2 texts with thumbnails, labels and a colour bar.
		if b := img.Bounds(); b.Dx() < 400 || b.Dx() > 2000 || b.Dy() < 250 || b.Dy() > 1500 {
			t.Errorf("%s is %v", out, b)
		}
	}
	if names := listDir(t, dir); len(names) != 2 {
		t.Errorf("plot directory holds %v", names)
	}
}

func TestMatchDirectories(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, imagesDir+"/scene.png", filepath.Join(dir, "b.PNG"))
	copyFile(t, imagesDir+"/blocks.png", filepath.Join(dir, "sub", "a.png"))
	copyFile(t, imagesDir+"/blocks.png", filepath.Join(dir, ".hidden.png"))
	writeFile(t, dir, "notes.txt", "not an image")
	args := []string{"match", dir, "-m", tinyBase, "-t", "a dog", "-f", "json"}
	got := parseMatchJSON(t, mustRun(t, runOpts{}, args...).stdout)
	if fmt.Sprint(got.Images) != fmt.Sprint([]string{filepath.Join(dir, "b.PNG")}) {
		t.Errorf("images %q", got.Images)
	}
	got = parseMatchJSON(t, mustRun(t, runOpts{}, append(args, "--recursive")...).stdout)
	if fmt.Sprint(got.Images) != fmt.Sprint([]string{filepath.Join(dir, "b.PNG"), filepath.Join(dir, "sub", "a.png")}) {
		t.Errorf("--recursive: images %q", got.Images)
	}
	os.Remove(filepath.Join(dir, "b.PNG"))
	wantFail(t, run(t, runOpts{}, args...), 1, dir, "holds no images", "--recursive")
}

func TestMatchSkipBad(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, imagesDir+"/scene.png", filepath.Join(dir, "good.png"))
	copyFile(t, badImages+"/bad_truncated.jpg", filepath.Join(dir, "truncated.jpg"))
	args := []string{"match", dir, "-m", tinyBase, "-t", "a dog", "-f", "json"}
	wantFail(t, run(t, runOpts{}, args...), 1, filepath.Join(dir, "truncated.jpg"), "truncated")
	r := mustRun(t, runOpts{}, append(args, "--skip-bad")...)
	if got := parseMatchJSON(t, r.stdout); fmt.Sprint(got.Images) != fmt.Sprint([]string{filepath.Join(dir, "good.png")}) {
		t.Errorf("images %q", got.Images)
	}
	if !strings.Contains(r.stderr, "warning: skipping image "+filepath.Join(dir, "truncated.jpg")) {
		t.Errorf("no warning:\n%s", r.stderr)
	}
	os.Remove(filepath.Join(dir, "good.png"))
	wantFail(t, run(t, runOpts{}, append(args, "--skip-bad")...), 1, "none of the 1 images could be read")
}

func TestMatchTextsFromStdin(t *testing.T) {
	r := mustRun(t, runOpts{stdin: strings.NewReader("a dog\na red bus\n")},
		"match", imagesDir+"/scene.png", "-m", tinyBase, "--texts", "-", "-f", "json")
	if got := parseMatchJSON(t, r.stdout); fmt.Sprint(got.Texts) != "[a dog a red bus]" {
		t.Errorf("texts %q", got.Texts)
	}
}
