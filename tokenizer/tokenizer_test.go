package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVocabulary(t *testing.T) {
	a, b, c := tokenizers(t)
	for _, tok := range []*Tokenizer{a, b, c} {
		if tok.VocabSize() != 30522 {
			t.Errorf("VocabSize %d", tok.VocabSize())
		}
		if tok.CLS() != 101 || tok.SEP() != 102 || tok.PAD() != 0 || tok.UNK() != 100 {
			t.Errorf("specials %d %d %d %d", tok.CLS(), tok.SEP(), tok.PAD(), tok.UNK())
		}
		if id, ok := tok.Mask(); !ok || id != 103 {
			t.Errorf("Mask %d %v", id, ok)
		}
		if id, ok := tok.ID("hello"); !ok || id != 7592 {
			t.Errorf("ID(hello) %d %v", id, ok)
		}
		if s, ok := tok.Token(7592); !ok || s != "hello" {
			t.Errorf("Token(7592) %q %v", s, ok)
		}
		if s, ok := tok.Token(1); !ok || s != "[unused0]" {
			t.Errorf("Token(1) %q %v", s, ok)
		}
		if _, ok := tok.Token(30522); ok {
			t.Error("Token(30522) exists")
		}
		if _, ok := tok.ID("[ENC]"); ok {
			t.Error("[ENC] is in the Hub vocabulary")
		}
		if tok.ModelMaxLength() != 512 {
			t.Errorf("ModelMaxLength %d", tok.ModelMaxLength())
		}
		if n := len(tok.AddedTokens()); n != 5 {
			t.Errorf("%d added tokens", n)
		}
		if tok.Compat() != CompatFast || tok.WithCompat(CompatSlow).Compat() != CompatSlow || tok.Compat() != CompatFast {
			t.Error("WithCompat")
		}
	}
	if CompatFast.String() != "fast" || CompatSlow.String() != "slow" {
		t.Error("Compat.String")
	}
}

// TestExamples checks a few well-known inputs, including the cases of
// dependencies.md §5 where sugarme/tokenizer is wrong.
func TestExamples(t *testing.T) {
	tok, _, _ := tokenizers(t)
	for _, c := range []struct {
		text string
		want string
	}{
		{"A picture of the Café.", "a picture of the cafe ."},
		{"naïve Über", "naive uber"},
		{"dog\u00a0cat dog\u3000cat", "dog cat dog cat"},
		{"\ufffd dog", "dog"},
		{"İstanbul cat", "istanbul cat"},
		{"\u212a dog", "k dog"},
		{"running unbelievable", "running unbelievable"},
		{"dog...!", "dog . . . !"},
		{"$5 — a", "$ 5 — a"},
		{"一只猫", "一 [UNK] [UNK]"},
		{strings.Repeat("a", 101), "[UNK]"},
		{"a[MASK]b", "a [MASK] b"},
		{"[mask]", "[ mask ]"},
		{"", ""},
		{" \t\n", ""},
	} {
		toks, err := tok.Tokenize(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(toks, " "); got != c.want {
			t.Errorf("Tokenize(%+q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestTruncation(t *testing.T) {
	tok, _, _ := tokenizers(t)
	text := strings.Repeat("dog ", 40)
	full, err := tok.Encode(text, 0)
	if err != nil || len(full.IDs) != 42 || full.Truncated {
		t.Fatalf("Encode: %d ids, %v, %v", len(full.IDs), full.Truncated, err)
	}
	for _, n := range []int{2, 3, 35, 41, 42, 43, 100, -1} {
		e, err := tok.Encode(text, n)
		if err != nil {
			t.Fatal(err)
		}
		wantLen := 42
		if n > 0 && n < 42 {
			wantLen = n
		}
		if len(e.IDs) != wantLen || e.Truncated != (wantLen < 42) {
			t.Errorf("maxLen %d: %d ids, truncated %v", n, len(e.IDs), e.Truncated)
		}
		if e.IDs[0] != 101 || e.IDs[len(e.IDs)-1] != 102 || !slices.Equal(e.IDs[:wantLen-1], full.IDs[:wantLen-1]) {
			t.Errorf("maxLen %d: ids %v", n, e.IDs)
		}
	}
	if _, err := tok.Encode(text, 1); !errors.Is(err, ErrMaxLen) {
		t.Errorf("maxLen 1: %v", err)
	}
	e, _ := tok.Encode("", 2)
	if !slices.Equal(e.IDs, []int32{101, 102}) || e.Truncated {
		t.Errorf("empty text, maxLen 2: %v %v", e.IDs, e.Truncated)
	}
}

func TestBatch(t *testing.T) {
	tok, _, _ := tokenizers(t)
	b, err := tok.EncodeBatch([]string{"a dog", "", "a man riding a wave on top of a surfboard"}, 6)
	if err != nil {
		t.Fatal(err)
	}
	if b.Batch != 3 || b.Len != 6 || len(b.IDs) != 18 || len(b.Mask) != 18 {
		t.Fatalf("batch %d×%d, %d ids, %d mask", b.Batch, b.Len, len(b.IDs), len(b.Mask))
	}
	wantIDs := []int32{
		101, 1037, 3899, 102, 0, 0,
		101, 102, 0, 0, 0, 0,
		101, 1037, 2158, 5559, 1037, 102,
	}
	wantMask := []int32{
		1, 1, 1, 1, 0, 0,
		1, 1, 0, 0, 0, 0,
		1, 1, 1, 1, 1, 1,
	}
	if !slices.Equal(b.IDs, wantIDs) || !slices.Equal(b.Mask, wantMask) {
		t.Errorf("ids %v\nmask %v", b.IDs, b.Mask)
	}
	if !slices.Equal(b.Lengths, []int{4, 2, 6}) || !slices.Equal(b.Truncated, []bool{false, false, true}) {
		t.Errorf("lengths %v truncated %v", b.Lengths, b.Truncated)
	}
	ids, mask := b.Row(1)
	if !slices.Equal(ids, []int32{101, 102, 0, 0, 0, 0}) || !slices.Equal(mask, []int32{1, 1, 0, 0, 0, 0}) {
		t.Errorf("Row(1) %v %v", ids, mask)
	}

	// Padding to a fixed length, as salesforce/BLIP pads to 35.
	e1, _ := tok.Encode("a dog", 35)
	p := tok.Pad([]Encoding{e1}, 35)
	if p.Len != 35 || p.IDs[4] != 0 || p.Mask[3] != 1 || p.Mask[4] != 0 {
		t.Errorf("Pad: len %d ids %v mask %v", p.Len, p.IDs, p.Mask)
	}
	if empty, err := tok.EncodeBatch(nil, 0); err != nil || empty.Batch != 0 || len(empty.IDs) != 0 {
		t.Errorf("empty batch: %+v %v", empty, err)
	}

	_, err = tok.EncodeBatch([]string{"ok", "bad \xff byte"}, 0)
	var u *InvalidUTF8Error
	if !errors.Is(err, ErrInvalidUTF8) || !errors.As(err, &u) || u.Offset != 4 || !strings.Contains(err.Error(), "text 1") {
		t.Errorf("invalid UTF-8 in a batch: %v", err)
	}
}

func TestInvalidUTF8(t *testing.T) {
	tok, _, _ := tokenizers(t)
	for _, tt := range []*Tokenizer{tok, tok.WithCompat(CompatSlow)} {
		for text, off := range map[string]int{"a\xffb": 1, "\xc3": 0, "caf\xc3\xa9\xe9": 5, "\xed\xa0\x80": 0} {
			_, err := tt.Encode(text, 0)
			var u *InvalidUTF8Error
			if !errors.Is(err, ErrInvalidUTF8) || !errors.As(err, &u) || u.Offset != off {
				t.Errorf("%v Encode(%q): %v", tt.Compat(), text, err)
			}
			if _, err := tt.Tokenize(text); !errors.Is(err, ErrInvalidUTF8) {
				t.Errorf("%v Tokenize(%q): %v", tt.Compat(), text, err)
			}
		}
	}
}

// TestBLIPTokens adds [DEC] and [ENC] as salesforce/BLIP's init_tokenizer
// does and checks their ids.
func TestBLIPTokens(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(bertDir, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromVocab(bytes.NewReader(data), Options{AddedTokens: []AddedToken{
		{Content: "[DEC]", ID: -1, Special: true},
		{Content: "[ENC]", ID: -1, Special: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []*Tokenizer{tok, tok.WithCompat(CompatSlow)} {
		e, err := tt.Encode("[DEC] a photo of a dog [ENC]", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []int32{101, DecID, 1037, 6302, 1997, 1037, 3899, EncID, 102}
		if !slices.Equal(e.IDs, want) {
			t.Errorf("%v: %v, want %v", tt.Compat(), e.IDs, want)
		}
	}
	if tok.VocabSize() != BLIPVocabSize {
		t.Errorf("VocabSize %d, want %d", tok.VocabSize(), BLIPVocabSize)
	}
}

// TestOptions checks the cased, accent and CJK options against the
// behaviour of BertTokenizerFast with those flags.
func TestOptions(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(bertDir, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts Options
		text string
		want string
	}{
		{Options{Accents: AccentsKeep}, "Café", "[UNK]"},
		{Options{Accents: AccentsKeep}, "é", "[UNK]"},
		{Options{Cased: true}, "Dog dog", "[UNK] dog"},
		{Options{Cased: true, Accents: AccentsStrip}, "déjà", "de ##ja"},
		{Options{NoCJKSpacing: true}, "a一b", "a ##一 ##b"},
		{Options{MaxInputCharsPerWord: 3}, "dog cats", "dog [UNK]"},
		{Options{NoCleanText: true}, "a\x01b", "[UNK]"},
	} {
		for _, mode := range []Compat{CompatFast, CompatSlow} {
			if mode == CompatSlow && c.opts.NoCleanText {
				continue
			}
			o := c.opts
			o.Compat = mode
			tok, err := FromVocab(bytes.NewReader(data), o)
			if err != nil {
				t.Fatal(err)
			}
			toks, _ := tok.Tokenize(c.text)
			if got := strings.Join(toks, " "); got != c.want {
				t.Errorf("%+v %+q: %q, want %q", o, c.text, got, c.want)
			}
		}
	}
}

func TestBadFiles(t *testing.T) {
	base, err := os.ReadFile(filepath.Join(bertDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(base, &j); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(base, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	model := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	jsonCases := []struct {
		name, want string
		data       []byte
	}{
		{"truncated", "malformed JSON", base[:len(base)/2]},
		{"empty file", "malformed JSON", nil},
		{"not an object", "malformed JSON", []byte(`[1, 2]`)},
		{"no model", "no model", []byte(`{}`)},
		{"BPE", `model type "BPE"`, edit(func(m map[string]any) { model(m)["type"] = "BPE" })},
		{"empty vocab", "empty vocabulary", edit(func(m map[string]any) { model(m)["vocab"] = map[string]any{} })},
		{"vocab list", "not an object", edit(func(m map[string]any) { model(m)["vocab"] = []any{"a"} })},
		{"duplicate id", "share id", edit(func(m map[string]any) { model(m)["vocab"].(map[string]any)["zzz"] = 5 })},
		{"negative id", "non-negative int32", edit(func(m map[string]any) { model(m)["vocab"].(map[string]any)["zzz"] = -5 })},
		{"float id", "non-negative int32", edit(func(m map[string]any) { model(m)["vocab"].(map[string]any)["zzz"] = 5.5 })},
		{"missing [UNK]", `"[UNK]" is missing`, edit(func(m map[string]any) { delete(model(m)["vocab"].(map[string]any), "[UNK]") })},
		{"missing [PAD]", `"[PAD]" is missing`, edit(func(m map[string]any) {
			delete(model(m)["vocab"].(map[string]any), "[PAD]")
			m["added_tokens"] = []any{}
		})},
		{"missing [CLS]", `"[CLS]": id 101 is not in the vocabulary`, edit(func(m map[string]any) {
			delete(model(m)["vocab"].(map[string]any), "[CLS]")
			m["added_tokens"] = []any{}
		})},
		{"normalizer", `normalizer type "Sequence"`, edit(func(m map[string]any) { m["normalizer"] = map[string]any{"type": "Sequence"} })},
		{"pre_tokenizer", `pre_tokenizer type "Whitespace"`, edit(func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "Whitespace"} })},
		{"no post_processor", "post_processor: missing", edit(func(m map[string]any) { m["post_processor"] = nil })},
		{"added token without id", "has no id", edit(func(m map[string]any) { m["added_tokens"] = []any{map[string]any{"content": "x"}} })},
		{"added token ids", "has ids", edit(func(m map[string]any) {
			m["added_tokens"] = []any{map[string]any{"content": "x", "id": 40000}, map[string]any{"content": "x", "id": 40001}}
		})},
	}
	for _, c := range jsonCases {
		_, err := FromTokenizerJSON(bytes.NewReader(c.data))
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "tokenizer.json") {
			t.Errorf("%s: %v (want %q)", c.name, err, c.want)
		}
	}
	// Duplicate keys are invisible to encoding/json's maps.
	dup := bytes.Replace(base, []byte(`"hello": 7592`), []byte(`"hello": 7592, "hello": 99999`), 1)
	if _, err := FromTokenizerJSON(bytes.NewReader(dup)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `duplicate token "hello"`) {
		t.Errorf("duplicate key: %v", err)
	}

	vocabCases := []struct {
		name, data, want string
	}{
		{"empty", "", "empty vocabulary"},
		{"no [CLS]", "[PAD]\n[UNK]\n[SEP]\na\n", `"[CLS]" is missing`},
		{"no [SEP]", "[PAD]\n[UNK]\n[CLS]\na\n", `"[SEP]" is missing`},
		{"no [PAD]", "[UNK]\n[CLS]\n[SEP]\na\n", `"[PAD]" is missing`},
		{"no [UNK]", "[PAD]\n[CLS]\n[SEP]\na\n", `"[UNK]" is missing`},
		{"duplicate", "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\nb\na\n", `line 7: duplicate token "a" (first on line 5)`},
		{"invalid UTF-8", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xff\n", "line 5: invalid UTF-8"},
	}
	for _, c := range vocabCases {
		_, err := FromVocab(strings.NewReader(c.data), Options{})
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("vocab %s: %v (want %q)", c.name, err, c.want)
		}
	}
	// CRLF line endings and a BOM are accepted.
	tok, err := FromVocab(strings.NewReader("\ufeff[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\ndog\r\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := tok.Encode("Dog cat", 0); !slices.Equal(e.IDs, []int32{2, 4, 1, 3}) {
		t.Errorf("CRLF vocab: %v", e.IDs)
	}

	// Load names the file.
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "neither tokenizer.json nor vocab.txt") {
		t.Errorf("empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte("[PAD]\n[UNK]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), filepath.Join(dir, "vocab.txt")) {
		t.Errorf("bad vocab.txt: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"do_lower_case": 1`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "tokenizer_config.json: malformed JSON") {
		t.Errorf("bad tokenizer_config.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"do_lower_case": "yes"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "do_lower_case is not a boolean") {
		t.Errorf("bad do_lower_case: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), base[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), filepath.Join(dir, "tokenizer.json")+": malformed JSON") {
		t.Errorf("truncated tokenizer.json: %v", err)
	}
}

// TestConfigOverride checks that tokenizer_config.json's do_lower_case
// overrides tokenizer.json's normalizer, as in BertTokenizerFast.
func TestConfigOverride(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(bertDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"do_lower_case": false, "model_max_length": 1e30}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := tok.Tokenize("Dog dog")
	if strings.Join(toks, " ") != "[UNK] dog" {
		t.Errorf("cased: %q", toks)
	}
	if tok.ModelMaxLength() <= 512 {
		t.Errorf("ModelMaxLength %d", tok.ModelMaxLength())
	}
}

func TestConcurrent(t *testing.T) {
	fx := loadFixture(t)
	tok, _, _ := tokenizers(t)
	done := make(chan error)
	for g := range 4 {
		go func() {
			tt := tok
			if g%2 == 1 {
				tt = tok.WithCompat(CompatSlow)
			}
			for _, c := range fx.Captions {
				want := c.IDs
				if g%2 == 1 {
					if c.PyUnassigned {
						continue
					}
					want = or(c.Slow, c.IDs)
				}
				e, err := tt.Encode(c.Text, 0)
				if err != nil || !slices.Equal(e.IDs, want) {
					done <- errors.New("mismatch on " + c.Text)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
