package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestStress compares both implementations with random differential cases
// written by make_fixtures.py --stress (tens of thousands of texts mixing
// vocabulary words, combining marks, random code points, whitespace, added
// tokens and long words, under several tokenizer configurations). It runs
// only when TOKENIZER_STRESS names that file.
func TestStress(t *testing.T) {
	path := os.Getenv("TOKENIZER_STRESS")
	if path == "" {
		t.Skip("TOKENIZER_STRESS not set")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sets []struct {
			Name  string         `json:"name"`
			Cfg   map[string]any `json:"cfg"`
			Cases []struct {
				Text         string  `json:"text"`
				IDs          []int32 `json:"ids"`
				Slow         []int32 `json:"slow"`
				PyUnassigned bool    `json:"py_unassigned"`
			} `json:"cases"`
		} `json:"sets"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	vocab, err := os.ReadFile(filepath.Join(bertDir, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range doc.Sets {
		t.Run(set.Name, func(t *testing.T) {
			var tok *Tokenizer
			var err error
			if set.Name == "variant" {
				tok, err = FromTokenizerJSON(bytes.NewReader(variantJSON(t)))
			} else {
				o := Options{}
				o.Cased = set.Cfg["do_lower_case"] == false
				switch set.Cfg["strip_accents"] {
				case true:
					o.Accents = AccentsStrip
				case false:
					o.Accents = AccentsKeep
				}
				o.NoCJKSpacing = set.Cfg["tokenize_chinese_chars"] == false
				tok, err = FromVocab(bytes.NewReader(vocab), o)
			}
			if err != nil {
				t.Fatal(err)
			}
			slow := tok.WithCompat(CompatSlow)
			nf, ns := 0, 0
			for _, c := range set.Cases {
				if e, _ := tok.Encode(c.Text, 0); !slices.Equal(e.IDs, c.IDs) {
					if nf++; nf <= 5 {
						got, _ := tok.Tokenize(c.Text)
						t.Errorf("fast %+q:\n got %q\nwant %q", c.Text, got, idsToTokens(tok, c.IDs))
					}
				}
				if c.PyUnassigned {
					continue
				}
				want := or(c.Slow, c.IDs)
				if e, _ := slow.Encode(c.Text, 0); !slices.Equal(e.IDs, want) {
					if ns++; ns <= 5 {
						got, _ := slow.Tokenize(c.Text)
						t.Errorf("slow %+q:\n got %q\nwant %q", c.Text, got, idsToTokens(tok, want))
					}
				}
			}
			t.Logf("%d cases: %d fast and %d slow mismatches", len(set.Cases), nf, ns)
		})
	}
}
