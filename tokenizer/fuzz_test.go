package tokenizer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode checks that Encode never panics and that its output is well
// formed, for both implementations, with and without truncation, and on a
// tokenizer with added tokens of every kind.
func FuzzEncode(f *testing.F) {
	fx := loadFixture(f)
	for _, c := range fx.Captions {
		f.Add(c.Text)
	}
	for _, c := range fx.VariantCases {
		f.Add(c.Text)
	}
	f.Add("a\xffb")
	base, _, _ := tokenizers(f)
	variant, err := FromTokenizerJSON(bytes.NewReader(variantJSON(f)))
	if err != nil {
		f.Fatal(err)
	}
	toks := []*Tokenizer{base, base.WithCompat(CompatSlow), variant, variant.WithCompat(CompatSlow)}
	f.Fuzz(func(t *testing.T, text string) {
		valid := utf8.ValidString(text)
		for _, tok := range toks {
			full, err := tok.Encode(text, 0)
			if !valid {
				if !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("%v: invalid UTF-8 accepted: %v", tok.Compat(), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%v: %v", tok.Compat(), err)
			}
			checkIDs(t, tok, full.IDs)
			if full.Truncated {
				t.Fatalf("%v: truncated without a limit", tok.Compat())
			}
			cut, err := tok.Encode(text, 35)
			if err != nil {
				t.Fatal(err)
			}
			checkIDs(t, tok, cut.IDs)
			if cut.Truncated != (len(full.IDs) > 35) || len(cut.IDs) != min(len(full.IDs), 35) ||
				!slices.Equal(cut.IDs[:len(cut.IDs)-1], full.IDs[:len(cut.IDs)-1]) {
				t.Fatalf("%v: truncation %v → %v", tok.Compat(), full.IDs, cut.IDs)
			}
			pieces, err := tok.Tokenize(text)
			if err != nil || len(pieces) != len(full.IDs)-2 {
				t.Fatalf("%v: Tokenize %q %v, ids %v", tok.Compat(), pieces, err, full.IDs)
			}
		}
		p := PreCaption(text, 30)
		if valid && !utf8.ValidString(p) {
			t.Fatalf("PreCaption(%+q) = %+q is not valid UTF-8", text, p)
		}
		if n := strings.Count(p, " ") + 1; n > 30 {
			t.Fatalf("PreCaption(%+q) has %d words", text, n)
		}
	})
}

func checkIDs(t *testing.T, tok *Tokenizer, ids []int32) {
	t.Helper()
	if len(ids) < 2 || ids[0] != tok.CLS() || ids[len(ids)-1] != tok.SEP() {
		t.Fatalf("%v: ids %v do not start with [CLS] and end with [SEP]", tok.Compat(), ids)
	}
	for _, id := range ids {
		if id < 0 || int(id) >= tok.VocabSize() {
			t.Fatalf("%v: id %d out of range [0, %d)", tok.Compat(), id, tok.VocabSize())
		}
		if _, ok := tok.Token(id); !ok {
			t.Fatalf("%v: id %d has no token", tok.Compat(), id)
		}
	}
}

// smallTokenizerJSON is a small but complete BERT tokenizer.json.
const smallTokenizerJSON = `{
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 20, "content": "<x>", "single_word": true, "lstrip": true, "rstrip": true, "normalized": true, "special": false}
  ],
  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
    "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "dog": 5, "##s": 6, ".": 7, "cat": 8, "##og": 9, "d": 10, "é": 11}}
}`

// FuzzLoad checks that no tokenizer.json or vocab.txt content makes the
// loaders panic, and that what they accept tokenizes without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(smallTokenizerJSON))
	f.Add([]byte(strings.Replace(smallTokenizerJSON, `"BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]`,
		`"TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}], "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}`, 1)))
	f.Add([]byte("[PAD]\n[UNK]\n[CLS]\n[SEP]\na\ndog\n##s\n"))
	if data, err := os.ReadFile(filepath.Join(bertDir, "tokenizer_config.json")); err == nil {
		f.Add(data)
	}
	texts := []string{"A dog.", "dogs <x> cat<x>", "Dés [CLS] a", "", "一 \u0301 \x00"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var toks []*Tokenizer
		if tok, err := FromTokenizerJSON(bytes.NewReader(data)); err == nil {
			toks = append(toks, tok)
		} else if !errors.Is(err, ErrFormat) {
			t.Fatalf("error does not wrap ErrFormat: %v", err)
		}
		if tok, err := FromVocab(bytes.NewReader(data), Options{}); err == nil {
			toks = append(toks, tok)
		} else if !errors.Is(err, ErrFormat) {
			t.Fatalf("error does not wrap ErrFormat: %v", err)
		}
		for _, tok := range toks {
			for _, tt := range []*Tokenizer{tok, tok.WithCompat(CompatSlow)} {
				for _, s := range texts {
					e, err := tt.Encode(s, 8)
					if err != nil {
						t.Fatal(err)
					}
					checkIDs(t, tt, e.IDs)
				}
			}
		}
	})
}
