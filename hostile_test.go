package blipcuda

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/model"
	"github.com/blipcuda/blipcuda/tokenizer"
)

// TestTruncationLimitNamesWhatCut: the limit reported for a cut text is
// the one that binds — BLIP's 30 words and 35 tokens, or the model's
// max_position_embeddings when it is smaller, and always under hf.
func TestTruncationLimitNamesWhatCut(t *testing.T) {
	if got := loadTiny(t, "tiny-base").TruncationLimit(); got != "30 words, 35 tokens" {
		t.Errorf("blip, 512 positions: %q", got)
	}
	if got := loadTiny(t, "tiny-base", WithProtocol(ProtocolHF)).TruncationLimit(); !strings.Contains(got, "512 tokens") ||
		!strings.Contains(got, "max_position_embeddings") {
		t.Errorf("hf: %q", got)
	}
	cfg, err := model.LoadConfig(filepath.Join("testdata", "models", "tiny-base", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Text.MaxPositionEmbeddings = 20
	tok, err := tokenizer.Load(filepath.Join("testdata", "models", "tiny-base"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, model.RandomWeights(cfg, 1), tok)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	enc, err := m.EncodeTexts(context.Background(), []string{strings.Repeat("dog ", 25)})
	if err != nil {
		t.Fatal(err)
	}
	if !enc[0].Truncated || len(enc[0].Tokens) != 20 {
		t.Errorf("25 words at 20 positions: truncated=%v, %d tokens", enc[0].Truncated, len(enc[0].Tokens))
	}
	if got := m.TruncationLimit(); !strings.Contains(got, "20 tokens") || !strings.Contains(got, "max_position_embeddings") {
		t.Errorf("blip, 20 positions: %q", got)
	}
}
