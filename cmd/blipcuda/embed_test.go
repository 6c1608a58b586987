package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/blipcuda/blipcuda"
)

// embedJSON is embed's JSON document as README.md documents it.
type embedJSON struct {
	SchemaVersion int           `json:"schema_version"`
	Model         string        `json:"model"`
	Repo          string        `json:"repo"`
	Protocol      string        `json:"protocol"`
	Device        string        `json:"device"`
	Precision     string        `json:"precision"`
	Dim           int           `json:"dim"`
	Images        []string      `json:"images"`
	Texts         []string      `json:"texts"`
	Truncated     []bool        `json:"truncated"`
	TextTokens    [][]int32     `json:"text_tokens"`
	ImageEmbeds   [][]float32   `json:"image_embeds"`
	TextEmbeds    [][]float32   `json:"text_embeds"`
	ImageFeatures [][][]float32 `json:"image_features"`
	Arrays        map[string]struct {
		File  string `json:"file"`
		Shape []int  `json:"shape"`
	} `json:"arrays"` // metadata.json only
}

// libEmbeddings is what the library gives for the same inputs.
type libEmbeddings struct {
	images []blipcuda.ImageEncoding
	texts  []blipcuda.TextEncoding
}

func libEmbed(t *testing.T, modelDir string, images, texts []string) libEmbeddings {
	t.Helper()
	ctx := context.Background()
	m, err := blipcuda.Load(ctx, modelDir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out libEmbeddings
	if len(images) > 0 {
		var ims []*blipcuda.Image
		for _, p := range images {
			im, err := m.LoadImage(p)
			if err != nil {
				t.Fatal(err)
			}
			ims = append(ims, im)
		}
		if out.images, err = m.EncodeImages(ctx, ims, true); err != nil {
			t.Fatal(err)
		}
	}
	if len(texts) > 0 {
		if out.texts, err = m.EncodeTexts(ctx, texts); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

var npyDict = regexp.MustCompile(`^\{'descr': '<f4', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \} *\n$`)

// readNPY parses a .npy file written by writeNPY (format 1.0, '<f4', C
// order), checking the header as NumPy would read it.
func readNPY(t *testing.T, path string) ([]int, []float32) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("%s: bad magic or version % x", path, b[:min(len(b), 8)])
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	if (10+hl)%64 != 0 {
		t.Errorf("%s: data starts at %d, not a multiple of 64", path, 10+hl)
	}
	m := npyDict.FindStringSubmatch(string(b[10 : 10+hl]))
	if m == nil {
		t.Fatalf("%s: header %q", path, b[10:10+hl])
	}
	var shape []int
	n := 1
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s != "" {
			d, _ := strconv.Atoi(s)
			shape = append(shape, d)
			n *= d
		}
	}
	if len(shape) == 1 && !strings.HasSuffix(strings.TrimSpace(m[1]), ",") {
		t.Errorf("%s: a one-element tuple needs a trailing comma: %q", path, m[1])
	}
	data := b[10+hl:]
	if len(data) != 4*n {
		t.Fatalf("%s: %d data bytes for shape %v", path, len(data), shape)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return shape, out
}

func TestEmbedJSON(t *testing.T) {
	images := fixtureImages()
	texts := []string{"a dog", "Two cats sleeping on a couch!"}
	want := libEmbed(t, tinyBase, images, texts)
	r := mustRun(t, runOpts{}, "embed", imagesDir, "-m", tinyBase, "-t", texts[0], "-t", texts[1], "--features")
	var got embedJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.SchemaVersion != 1 || got.Dim != 256 || got.Protocol != "blip" || got.Device != expectedDevice() ||
		fmt.Sprint(got.Images) != fmt.Sprint(images) || fmt.Sprint(got.Texts) != fmt.Sprint(texts) {
		t.Errorf("header %+v", got)
	}
	for i := range images {
		if !slices.Equal(got.ImageEmbeds[i], want.images[i].Embedding) {
			t.Errorf("image %d: embedding differs from the library", i)
		}
		var flat []float32
		for _, row := range got.ImageFeatures[i] {
			flat = append(flat, row...)
		}
		if len(got.ImageFeatures[i]) != want.images[i].Tokens || !slices.Equal(flat, want.images[i].Features) {
			t.Errorf("image %d: features differ from the library", i)
		}
	}
	for j := range texts {
		if !slices.Equal(got.TextEmbeds[j], want.texts[j].Embedding) ||
			fmt.Sprint(got.TextTokens[j]) != fmt.Sprint(want.texts[j].Tokens) {
			t.Errorf("text %d: embedding or tokens differ from the library", j)
		}
	}

	// Texts alone: empty image lists, no features key.
	r = mustRun(t, runOpts{}, "embed", "-m", tinyBase, "-t", "a dog")
	var only map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &only); err != nil {
		t.Fatal(err)
	}
	if string(only["images"]) != "[]" || string(only["image_embeds"]) != "[]" || only["image_features"] != nil {
		t.Errorf("texts only: images %s image_embeds %s", only["images"], only["image_embeds"])
	}
	r = mustRun(t, runOpts{}, "embed", "-m", tinyBase, imagesDir+"/scene.png")
	only = nil
	if err := json.Unmarshal([]byte(r.stdout), &only); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"texts", "truncated", "text_tokens", "text_embeds"} {
		if string(only[k]) != "[]" {
			t.Errorf("images only: %s = %s, want []", k, only[k])
		}
	}
}

func TestEmbedNPY(t *testing.T) {
	images := fixtureImages()
	texts := []string{"a dog", "a red bus"}
	want := libEmbed(t, tinyLarge, images, texts)
	dir := t.TempDir()
	out := filepath.Join(dir, "emb") + "/"
	mustRun(t, runOpts{}, "embed", "-t", texts[0], imagesDir, "-m", tinyLarge, "-t", texts[1], "--features", "-o", out)
	if got := fmt.Sprint(listDir(t, out)); got != "[image_embeds.npy image_features.npy metadata.json text_embeds.npy]" {
		t.Errorf("directory holds %s", got)
	}
	shape, data := readNPY(t, filepath.Join(out, "image_embeds.npy"))
	if fmt.Sprint(shape) != "[3 256]" {
		t.Errorf("image_embeds shape %v", shape)
	}
	for i := range images {
		if !slices.Equal(data[i*256:(i+1)*256], want.images[i].Embedding) {
			t.Errorf("image_embeds row %d differs from the library", i)
		}
	}
	shape, data = readNPY(t, filepath.Join(out, "text_embeds.npy"))
	if fmt.Sprint(shape) != "[2 256]" || !slices.Equal(data[256:], want.texts[1].Embedding) {
		t.Errorf("text_embeds: shape %v or values differ", shape)
	}
	shape, data = readNPY(t, filepath.Join(out, "image_features.npy"))
	tok, width := want.images[0].Tokens, want.images[0].Width
	if fmt.Sprint(shape) != fmt.Sprint([]int{3, tok, width}) || !slices.Equal(data[2*tok*width:], want.images[2].Features) {
		t.Errorf("image_features: shape %v or values differ", shape)
	}
	b, err := os.ReadFile(filepath.Join(out, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta embedJSON
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(meta.Images) != fmt.Sprint(images) || fmt.Sprint(meta.Texts) != fmt.Sprint(texts) ||
		meta.Arrays["image_features"].File != "image_features.npy" || fmt.Sprint(meta.Arrays["text_embeds"].Shape) != "[2 256]" {
		t.Errorf("metadata.json: %s", b)
	}

	// One array: a .npy file. --format npy with a name without extension:
	// a directory.
	single := filepath.Join(dir, "texts.npy")
	mustRun(t, runOpts{}, "embed", "-m", tinyLarge, "-t", texts[0], "-t", texts[1], "-o", single)
	if shape, data := readNPY(t, single); fmt.Sprint(shape) != "[2 256]" || !slices.Equal(data[:256], want.texts[0].Embedding) {
		t.Errorf("%s: shape %v or values differ", single, shape)
	}
	mustRun(t, runOpts{}, "embed", "-m", tinyLarge, imagesDir+"/scene.png", "--format", "npy", "-o", filepath.Join(dir, "imgs"))
	if shape, data := readNPY(t, filepath.Join(dir, "imgs", "image_embeds.npy")); fmt.Sprint(shape) != "[1 256]" ||
		!slices.Equal(data, want.images[1].Embedding) {
		t.Errorf("--format npy directory: shape %v or values differ", shape)
	}
}

func TestEmbedSafetensors(t *testing.T) {
	images := fixtureImages()
	texts := []string{"a dog", "a red bus", "colourful waves"}
	want := libEmbed(t, tinyBase, images, texts)
	out := filepath.Join(t.TempDir(), "emb.safetensors")
	args := []string{"embed", imagesDir, "-m", tinyBase, "--features", "-o", out}
	for _, s := range texts {
		args = append(args, "--text", s)
	}
	mustRun(t, runOpts{}, args...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	tensor := func(name string, shape []uint64) []float32 {
		tv, ok := st.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		if tv.DType() != safetensors.F32 || fmt.Sprint(tv.Shape()) != fmt.Sprint(shape) {
			t.Fatalf("%s: %v %v", name, tv.DType(), tv.Shape())
		}
		d := tv.Data()
		out := make([]float32, len(d)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
		return out
	}
	ie := tensor("image_embeds", []uint64{3, 256})
	te := tensor("text_embeds", []uint64{3, 256})
	tok, width := uint64(want.images[0].Tokens), uint64(want.images[0].Width)
	feat := tensor("image_features", []uint64{3, tok, width})
	for i := range images {
		if !slices.Equal(ie[i*256:(i+1)*256], want.images[i].Embedding) ||
			!slices.Equal(feat[uint64(i)*tok*width:uint64(i+1)*tok*width], want.images[i].Features) {
			t.Errorf("image %d differs from the library", i)
		}
	}
	for j := range texts {
		if !slices.Equal(te[j*256:(j+1)*256], want.texts[j].Embedding) {
			t.Errorf("text %d differs from the library", j)
		}
	}
	_, meta, err := safetensors.ReadMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	md := meta.Metadata()
	var names []string
	if err := json.Unmarshal([]byte(md["images"]), &names); err != nil || fmt.Sprint(names) != fmt.Sprint(images) {
		t.Errorf("metadata images %q", md["images"])
	}
	if err := json.Unmarshal([]byte(md["texts"]), &names); err != nil || fmt.Sprint(names) != fmt.Sprint(texts) {
		t.Errorf("metadata texts %q", md["texts"])
	}
	if md["model"] != tinyBase || md["protocol"] != "blip" || md["schema_version"] != "1" {
		t.Errorf("metadata %v", md)
	}
}

func TestEmbedOutputChoice(t *testing.T) {
	dir := t.TempDir()
	img := imagesDir + "/scene.png"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{img, "-t", "a dog", "-o", filepath.Join(dir, "both.npy")}, "holds one array"},
		{[]string{img, "--features", "-o", filepath.Join(dir, "f.npy")}, "holds one array"},
		{[]string{img, "--format", "npy"}, "give --output"},
		{[]string{img, "--format", "safetensors", "-o", "-"}, "give --output"},
		{[]string{img, "-o", filepath.Join(dir, "x.bin")}, "cannot tell the format"},
		{[]string{img, "--format", "json", "-o", filepath.Join(dir, "x.npy")}, "does not match"},
		{[]string{img, "--format", "json", "-o", dir + "/"}, "is a directory"},
		{[]string{img, "--format", "parquet"}, `--format "parquet"`},
		{[]string{"-t", "a dog", "--features"}, "--features needs images"},
		{[]string{"-m", tinyBase}, "nothing to embed"},
	} {
		wantFail(t, run(t, runOpts{}, append([]string{"embed", "-m", tinyBase}, c.args...)...), exitUsage, c.want)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("refused runs left %v", names)
	}
	// JSON into a file, atomically, and nothing on stdout.
	out := filepath.Join(dir, "e.json")
	if r := mustRun(t, runOpts{}, "embed", "-m", tinyBase, img, "-o", out); r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.HasPrefix(b, []byte("{\n  \"schema_version\": 1,")) {
		t.Errorf("%s: %v %.40q", out, err, b)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
}
