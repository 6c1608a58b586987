package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

// The fixtures are written by testdata/models/make_fixtures.py with
// transformers itself (see that script for what each file holds).

const fixtureDir = "../testdata/models"

type protocolFixture struct {
	Texts       []string  `json:"texts"`
	InputIDs    [][]int32 `json:"input_ids"`
	ITMInputIDs [][]int32 `json:"itm_input_ids"`
	ITMLogits   []float32 `json:"itm_logits"`
	ITMProb     []float32 `json:"itm_prob"`
	ITC         []float32 `json:"itc"`
	ImageEmbeds []float32 `json:"image_embeds"`
	TextEmbeds  []float32 `json:"text_embeds"`
}

type modelFixture struct {
	Images      []string        `json:"images"`
	PixelSHA256 []string        `json:"pixel_sha256"`
	NumParams   int64           `json:"num_params"`
	Inputs      []string        `json:"inputs"`
	HF          protocolFixture `json:"hf"`
	BLIP        protocolFixture `json:"blip"`
}

type fixtures struct {
	Versions map[string]string `json:"versions"`
	Real     map[string]struct {
		NumParams  int64 `json:"num_params"`
		NumTensors int   `json:"num_tensors"`
	} `json:"real"`
	Models map[string]modelFixture `json:"models"`
}

func loadFixtures(t testing.TB) fixtures {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixtures
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// loadActivations reads a model's per-layer reference activations.
func loadActivations(t testing.TB, model string) map[string][]float32 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, model, "activations.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Deserialize(data)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, nt := range st.Tensors() {
		b := nt.TensorView.Data()
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		out[nt.Name] = v
	}
	return out
}

// pixelHash is the SHA-256 of float32 pixels as little-endian bytes, as the
// fixture script hashes transformers' pixel_values.
func pixelHash(px []float32) string {
	b := make([]byte, 4*len(px))
	for i, v := range px {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// batchOf pads token id lists into a TextBatch.
func batchOf(ids [][]int32) TextBatch { return PadBatch(ids) }
