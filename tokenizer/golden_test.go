package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"unicode/utf8"
)

const fixtureDir = "../testdata/tokenizer"

var bertDir = filepath.Join(fixtureDir, "bert-base-uncased")

type caption struct {
	Group        string  `json:"group"`
	Text         string  `json:"text"`
	IDs          []int32 `json:"ids"`
	Slow         []int32 `json:"slow"`
	Trunc        []int32 `json:"trunc"`
	SlowTrunc    []int32 `json:"slow_trunc"`
	Pre          string  `json:"pre"`
	PreIDs       []int32 `json:"pre_ids"`
	PreSlow      []int32 `json:"pre_slow"`
	PyUnassigned bool    `json:"py_unassigned"`
}

type fixture struct {
	Versions           map[string]string `json:"versions"`
	MaxLength          int               `json:"max_length"`
	MaxWords           int               `json:"max_words"`
	Captions           []caption         `json:"captions"`
	VariantAddedTokens json.RawMessage   `json:"variant_added_tokens"`
	VariantCases       []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
		Slow []int32 `json:"slow"`
	} `json:"variant_cases"`
	Unicode struct {
		FastWords    []string   `json:"fast_words"`
		SlowWords    []string   `json:"slow_words"`
		PyLower      []string   `json:"pylower"`
		PyUnassigned [][2]int32 `json:"py_unassigned"`
	} `json:"unicode"`
}

var (
	fixtureOnce sync.Once
	fixtureData *fixture
	fixtureErr  error
)

func loadFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		data, err := os.ReadFile(filepath.Join(fixtureDir, "tokens.json"))
		if err != nil {
			fixtureErr = err
			return
		}
		fixtureData = new(fixture)
		fixtureErr = json.Unmarshal(data, fixtureData)
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureData
}

var (
	tokOnce                 sync.Once
	tokJSON, tokVocab, tok3 *Tokenizer
	tokErr                  error
)

// tokenizers returns the BLIP tokenizer loaded from tokenizer.json, from
// vocab.txt with FromVocab, and from a directory without tokenizer.json.
func tokenizers(t testing.TB) (fromJSON, fromVocab, fromVocabDir *Tokenizer) {
	t.Helper()
	tokOnce.Do(func() {
		if tokJSON, tokErr = Load(bertDir); tokErr != nil {
			return
		}
		f, err := os.Open(filepath.Join(bertDir, "vocab.txt"))
		if err != nil {
			tokErr = err
			return
		}
		defer f.Close()
		if tokVocab, tokErr = FromVocab(f, Options{}); tokErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "tokenizer-test")
		if err != nil {
			tokErr = err
			return
		}
		defer os.RemoveAll(dir)
		for _, name := range []string{"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"} {
			data, err := os.ReadFile(filepath.Join(bertDir, name))
			if err != nil {
				tokErr = err
				return
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				tokErr = err
				return
			}
		}
		tok3, tokErr = Load(dir)
	})
	if tokErr != nil {
		t.Fatal(tokErr)
	}
	return tokJSON, tokVocab, tok3
}

func or(a, b []int32) []int32 {
	if a != nil {
		return a
	}
	return b
}

func TestGolden(t *testing.T) {
	fx := loadFixture(t)
	if len(fx.Captions) < 300 {
		t.Fatalf("only %d fixture captions", len(fx.Captions))
	}
	a, b, c := tokenizers(t)
	for _, tc := range []struct {
		name string
		tok  *Tokenizer
	}{
		{"tokenizer.json", a}, {"FromVocab", b}, {"vocab.txt dir", c},
		{"tokenizer.json/slow", a.WithCompat(CompatSlow)}, {"FromVocab/slow", b.WithCompat(CompatSlow)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := tc.tok.Compat() == CompatSlow
			fails := 0
			for _, cp := range fx.Captions {
				if slow && cp.PyUnassigned {
					// Python 3.11 (Unicode 14.0) drops characters that Go's
					// Unicode 15.0 knows; CompatSlow follows Python 3.12.
					continue
				}
				want, wantTrunc, wantPre := cp.IDs, or(cp.Trunc, cp.IDs), cp.PreIDs
				if slow {
					want, wantTrunc, wantPre = or(cp.Slow, cp.IDs), or(cp.SlowTrunc, wantTrunc), or(cp.PreSlow, cp.PreIDs)
				}
				if err := checkCaption(tc.tok, cp.Text, want, wantTrunc, fx.MaxLength); err != nil {
					t.Errorf("%s caption %+q: %v", cp.Group, cp.Text, err)
					fails++
				}
				if got := PreCaption(cp.Text, fx.MaxWords); got != cp.Pre {
					t.Errorf("PreCaption(%+q, %d) = %+q, want %+q", cp.Text, fx.MaxWords, got, cp.Pre)
					fails++
				}
				e, err := tc.tok.Encode(cp.Pre, fx.MaxLength)
				if err != nil || !slices.Equal(e.IDs, wantPre) {
					t.Errorf("pre_caption %+q: got %v %v, want %v", cp.Pre, e.IDs, err, wantPre)
					fails++
				}
				if fails > 20 {
					t.Fatal("too many failures")
				}
			}
		})
	}
}

// checkCaption checks Encode without and with truncation, TokenIDs and
// Tokenize against the expected ids.
func checkCaption(tok *Tokenizer, text string, want, wantTrunc []int32, maxLen int) error {
	e, err := tok.Encode(text, 0)
	if err != nil {
		return err
	}
	if !slices.Equal(e.IDs, want) {
		toks, _ := tok.Tokenize(text)
		return fmt.Errorf("ids %v, want %v (tokens %q, want %q)", e.IDs, want, toks, idsToTokens(tok, want))
	}
	if e.Truncated {
		return fmt.Errorf("Truncated without a limit")
	}
	e, err = tok.Encode(text, maxLen)
	if err != nil {
		return err
	}
	if !slices.Equal(e.IDs, wantTrunc) {
		return fmt.Errorf("max_length %d: ids %v, want %v", maxLen, e.IDs, wantTrunc)
	}
	if e.Truncated != (len(want) > maxLen) {
		return fmt.Errorf("max_length %d: Truncated %v with %d ids", maxLen, e.Truncated, len(want))
	}
	ids, err := tok.TokenIDs(text)
	if err != nil || !slices.Equal(ids, want[1:len(want)-1]) {
		return fmt.Errorf("TokenIDs %v %v", ids, err)
	}
	toks, err := tok.Tokenize(text)
	if err != nil || len(toks) != len(ids) {
		return fmt.Errorf("Tokenize %q %v", toks, err)
	}
	for i, s := range toks {
		if id, ok := tok.ID(s); !ok || id != ids[i] {
			return fmt.Errorf("Tokenize %q: token %d %q is not id %d", toks, i, s, ids[i])
		}
	}
	return nil
}

func idsToTokens(tok *Tokenizer, ids []int32) []string {
	var out []string
	for _, id := range ids {
		s, _ := tok.Token(id)
		out = append(out, s)
	}
	return out
}

// variantJSON returns tokenizer.json with the fixture's added tokens: BLIP's
// [DEC] and [ENC] and tokens with the lstrip, rstrip, single_word and
// normalized flags.
func variantJSON(t testing.TB) []byte {
	fx := loadFixture(t)
	data, err := os.ReadFile(filepath.Join(bertDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["added_tokens"] = fx.VariantAddedTokens
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAddedTokenVariant(t *testing.T) {
	fx := loadFixture(t)
	tok, err := FromTokenizerJSON(bytes.NewReader(variantJSON(t)))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := tok.ID("[DEC]"); id != DecID {
		t.Errorf("[DEC] = %d, want %d", id, DecID)
	}
	if id, _ := tok.ID("[ENC]"); id != EncID {
		t.Errorf("[ENC] = %d, want %d", id, EncID)
	}
	if tok.VocabSize() != 30529 {
		t.Errorf("VocabSize %d", tok.VocabSize())
	}
	for _, c := range fx.VariantCases {
		for _, mode := range []Compat{CompatFast, CompatSlow} {
			want := c.IDs
			if mode == CompatSlow {
				want = or(c.Slow, c.IDs)
			}
			tt := tok.WithCompat(mode)
			e, err := tt.Encode(c.Text, 0)
			if err != nil || !slices.Equal(e.IDs, want) {
				toks, _ := tt.Tokenize(c.Text)
				t.Errorf("%v %+q: got %v %v (%q), want %v (%q)", mode, c.Text, e.IDs, err, toks, want, idsToTokens(tt, want))
			}
		}
	}
}

func pyUnassigned(fx *fixture) func(rune) bool {
	rs := fx.Unicode.PyUnassigned
	return func(r rune) bool {
		i, _ := slices.BinarySearchFunc(rs, r, func(e [2]int32, r rune) int {
			switch {
			case e[1] < r:
				return -1
			case e[0] > r:
				return 1
			}
			return 0
		})
		return i < len(rs) && rs[i][0] <= r && r <= rs[i][1]
	}
}

// TestUnicodeTables compares, for every code point, the basic tokenization
// (before WordPiece) of both implementations and Python's str.lower with
// hashes computed by make_fixtures.py from the real code.
func TestUnicodeTables(t *testing.T) {
	fx := loadFixture(t)
	tok, _, _ := tokenizers(t)
	isCn := pyUnassigned(fx)
	type state struct {
		sc    *scratch
		words []string
		out   sink
	}
	join := func(dst []byte, ws []string) []byte {
		for i, w := range ws {
			if i > 0 {
				dst = append(dst, 0x1f)
			}
			dst = append(dst, w...)
		}
		return dst
	}
	low := func(dst []byte, s string) []byte { return append(dst, string(pyLowerRunes(nil, []rune(s)))...) }
	funcs := []struct {
		name string
		want []string
		skip bool // skip Python-unassigned code points
		f    func(dst []byte, st *state, s string) []byte
	}{
		{"fast_words", fx.Unicode.FastWords, false, func(dst []byte, st *state, s string) []byte {
			st.words = st.words[:0]
			tok.fastWords(tok.fastNormalize(s, st.sc), st.sc, &st.out)
			return join(dst, st.words)
		}},
		{"slow_words", fx.Unicode.SlowWords, true, func(dst []byte, st *state, s string) []byte {
			st.words = st.words[:0]
			tok.slowWords(s, st.sc, &st.out)
			return join(dst, st.words)
		}},
		{"pylower", fx.Unicode.PyLower, true, func(dst []byte, st *state, s string) []byte {
			dst = low(dst, s)
			dst = append(dst, '\t')
			dst = low(dst, "A\u03a3"+s+"a")
			dst = append(dst, '\t')
			return low(dst, s+"\u03a3")
		}},
	}
	for _, fn := range funcs {
		t.Run(fn.name, func(t *testing.T) {
			t.Parallel()
			if len(fn.want) != 0x110 {
				t.Fatalf("%d hashes", len(fn.want))
			}
			st := &state{sc: new(scratch)}
			st.out.words = &st.words
			bad := 0
			var lines []byte
			for block := range 0x110 {
				lines = lines[:0]
				for r := rune(block << 12); r < rune(block+1)<<12; r++ {
					if !utf8.ValidRune(r) {
						continue
					}
					lines = strconv.AppendInt(lines, int64(r), 16)
					lines = append(lines, '\t')
					if fn.skip && isCn(r) {
						lines = append(lines, '?')
					} else {
						lines = fn.f(lines, st, string(r))
					}
					lines = append(lines, '\n')
				}
				sum := sha256.Sum256(lines)
				if got := hex.EncodeToString(sum[:])[:16]; got != fn.want[block] {
					bad++
					t.Errorf("code points U+%04X–U+%04X differ from the reference", block<<12, block<<12+0xfff)
					if dir := os.Getenv("TOKENIZER_UNICODE_DUMP"); dir != "" {
						_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%03x.txt", fn.name, block)), lines, 0o644)
					}
				}
			}
			if bad > 0 {
				t.Logf("%d blocks differ; set TOKENIZER_UNICODE_DUMP=dir to write Go's lines", bad)
			}
		})
	}
}
