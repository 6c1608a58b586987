package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/blipcuda/blipcuda/internal/fixtures"
	"github.com/nlpodyssey/safetensors"
)

// The fixtures are written by testdata/models/make_fixtures.py with
// transformers itself (see that script for what each file holds).

const fixtureDir = "../testdata/models"

type (
	protocolFixture = fixtures.Protocol
	modelFixture    = fixtures.Model
)

func loadFixtures(t testing.TB) *fixtures.File {
	t.Helper()
	f, err := fixtures.Load(filepath.Join(fixtureDir, "expected.json"))
	if err != nil {
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
