package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

// Load reads a tokenizer from a Hugging Face tokenizer directory, such as a
// Salesforce/blip-itm-* snapshot: tokenizer.json if present, else vocab.txt.
// tokenizer_config.json, if present, overrides the normalizer flags
// (do_lower_case, strip_accents, tokenize_chinese_chars, with transformers'
// defaults for missing keys, as BertTokenizerFast.from_pretrained does) and
// names the special tokens; special_tokens_map.json and added_tokens.json
// are read with vocab.txt. The tokenizer reproduces CompatFast; use
// WithCompat for CompatSlow.
func Load(dir string) (*Tokenizer, error) {
	cfg, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "tokenizer.json")
	data, err := bounded.ReadFile(path, bounded.TokenizerLimit)
	switch {
	case err == nil:
		return fromTokenizerJSON(path, data, cfg)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	path = filepath.Join(dir, "vocab.txt")
	data, err = bounded.ReadFile(path, bounded.VocabLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %s has neither tokenizer.json nor vocab.txt: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	opts := Options{}
	if cfg != nil {
		opts = cfg.options()
	}
	return fromVocab(path, data, opts)
}

// FromVocab reads a WordPiece vocabulary in vocab.txt format (one token per
// line, the line number being the id) and builds a tokenizer with opts.
func FromVocab(r io.Reader, opts Options) (*Tokenizer, error) {
	data, err := bounded.ReadAll("vocab", r, bounded.VocabLimit)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: reading vocab: %w", err)
	}
	return fromVocab("vocab", data, opts)
}

// FromTokenizerJSON reads a tokenizer.json file of a BERT WordPiece
// tokenizer (BertNormalizer, BertPreTokenizer, WordPiece).
func FromTokenizerJSON(r io.Reader) (*Tokenizer, error) {
	data, err := bounded.ReadAll("tokenizer.json", r, bounded.TokenizerLimit)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: reading tokenizer.json: %w", err)
	}
	return fromTokenizerJSON("tokenizer.json", data, nil)
}

func formatErr(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrFormat, path, fmt.Sprintf(format, args...))
}

func fromVocab(path string, data []byte, opts Options) (*Tokenizer, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(data) == 0 {
		return nil, formatErr(path, "empty vocabulary")
	}
	vocab := make(map[string]int32, bytes.Count(data, []byte("\n"))+1)
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > math.MaxInt32 {
		return nil, formatErr(path, "too many lines")
	}
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if !utf8.ValidString(line) {
			return nil, formatErr(path, "line %d: invalid UTF-8", i+1)
		}
		if j, dup := vocab[line]; dup {
			return nil, formatErr(path, "line %d: duplicate token %s (first on line %d)", i+1, bounded.Quote(line), j+1)
		}
		vocab[line] = int32(i)
	}
	return newTokenizer(path, vocab, opts, nil, nil, true)
}

// --- tokenizer.json ---

type jsonAddedToken struct {
	ID         *int64 `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

type jsonTokenizer struct {
	AddedTokens   []jsonAddedToken `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Model         *struct {
		Type                    string          `json:"type"`
		Vocab                   json.RawMessage `json:"vocab"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int64          `json:"max_input_chars_per_word"`
	} `json:"model"`
}

type jsonNormalizer struct {
	Type               string `json:"type"`
	CleanText          *bool  `json:"clean_text"`
	HandleChineseChars *bool  `json:"handle_chinese_chars"`
	StripAccents       *bool  `json:"strip_accents"`
	Lowercase          *bool  `json:"lowercase"`
}

func isNull(m json.RawMessage) bool {
	return len(m) == 0 || string(bytes.TrimSpace(m)) == "null"
}

func fromTokenizerJSON(path string, data []byte, cfg *config) (*Tokenizer, error) {
	var j jsonTokenizer
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %s: malformed JSON: %w", ErrFormat, path, err)
	}
	if j.Model == nil {
		return nil, formatErr(path, "no model")
	}
	if j.Model.Type != "WordPiece" {
		return nil, formatErr(path, "model type %s, want WordPiece", bounded.Quote(j.Model.Type))
	}
	vocab, err := parseVocabObject(j.Model.Vocab)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: model.vocab: %w", ErrFormat, path, err)
	}
	opts := Options{}
	if j.Model.UnkToken != nil {
		opts.UnkToken = *j.Model.UnkToken
		if opts.UnkToken == "" {
			return nil, formatErr(path, "empty model.unk_token")
		}
	}
	if p := j.Model.ContinuingSubwordPrefix; p != nil {
		if *p == "" {
			return nil, formatErr(path, "empty model.continuing_subword_prefix")
		}
		opts.ContinuingSubwordPrefix = *p
	}
	if m := j.Model.MaxInputCharsPerWord; m != nil {
		if *m <= 0 || *m > math.MaxInt32 {
			return nil, formatErr(path, "model.max_input_chars_per_word %d out of range", *m)
		}
		opts.MaxInputCharsPerWord = int(*m)
	}

	// Normalizer: absent means none at all.
	opts.Cased, opts.NoCJKSpacing, opts.NoCleanText, opts.Accents = true, true, true, AccentsKeep
	if !isNull(j.Normalizer) {
		var n jsonNormalizer
		if err := json.Unmarshal(j.Normalizer, &n); err != nil {
			return nil, fmt.Errorf("%w: %s: normalizer: %w", ErrFormat, path, err)
		}
		if n.Type != "BertNormalizer" {
			return nil, formatErr(path, "normalizer type %s is not supported (want BertNormalizer)", bounded.Quote(n.Type))
		}
		opts.NoCleanText = n.CleanText != nil && !*n.CleanText
		opts.NoCJKSpacing = n.HandleChineseChars != nil && !*n.HandleChineseChars
		opts.Cased = n.Lowercase != nil && !*n.Lowercase
		opts.Accents = accentMode(n.StripAccents)
	}
	if cfg != nil {
		cfg.applyNormalizer(&opts)
	}

	var pre struct {
		Type string `json:"type"`
	}
	if isNull(j.PreTokenizer) {
		return nil, formatErr(path, "no pre_tokenizer (want BertPreTokenizer)")
	}
	if err := json.Unmarshal(j.PreTokenizer, &pre); err != nil {
		return nil, fmt.Errorf("%w: %s: pre_tokenizer: %w", ErrFormat, path, err)
	}
	if pre.Type != "BertPreTokenizer" {
		return nil, formatErr(path, "pre_tokenizer type %s is not supported (want BertPreTokenizer)", bounded.Quote(pre.Type))
	}

	cls, sep, err := parsePostProcessor(j.PostProcessor)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: post_processor: %w", ErrFormat, path, err)
	}
	opts.ClsToken, opts.SepToken = cls.name, sep.name

	for i, a := range j.AddedTokens {
		if a.ID == nil {
			return nil, formatErr(path, "added_tokens[%d] (%s) has no id", i, bounded.Quote(a.Content))
		}
		if *a.ID < 0 || *a.ID >= math.MaxInt32 {
			return nil, formatErr(path, "added_tokens[%d] (%s): id %d out of range", i, bounded.Quote(a.Content), *a.ID)
		}
		normalized := !a.Special
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		opts.AddedTokens = append(opts.AddedTokens, AddedToken{
			Content: a.Content, ID: int32(*a.ID), Special: a.Special, Normalized: normalized,
			LStrip: a.LStrip, RStrip: a.RStrip, SingleWord: a.SingleWord,
		})
	}
	if cfg != nil {
		opts.PadToken, opts.MaskToken = cfg.names.pad, cfg.names.mask
		opts.ModelMaxLength = cfg.modelMaxLength
	}
	return newTokenizer(path, vocab, opts, &cls.id, &sep.id, false)
}

func accentMode(b *bool) AccentMode {
	switch {
	case b == nil:
		return AccentsDefault
	case *b:
		return AccentsStrip
	}
	return AccentsKeep
}

// parseVocabObject reads a JSON object of token → id, rejecting duplicate
// keys, duplicate ids and ids that are not int32.
func parseVocabObject(raw json.RawMessage) (map[string]int32, error) {
	if isNull(raw) {
		return nil, errors.New("missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not an object")
	}
	vocab := make(map[string]int32)
	ids := make(map[int32]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("unexpected %v", tok)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("token %s: id %v is not a number", bounded.Quote(key), tok)
		}
		id, err := strconv.ParseInt(string(num), 10, 32)
		if err != nil || id < 0 || id == math.MaxInt32 {
			return nil, fmt.Errorf("token %s: id %s is not a non-negative int32", bounded.Quote(key), num)
		}
		if _, dup := vocab[key]; dup {
			return nil, fmt.Errorf("duplicate token %s", bounded.Quote(key))
		}
		if other, dup := ids[int32(id)]; dup {
			return nil, fmt.Errorf("tokens %s and %s share id %d", bounded.Quote(other), bounded.Quote(key), id)
		}
		vocab[key] = int32(id)
		ids[int32(id)] = key
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if len(vocab) == 0 {
		return nil, errors.New("empty vocabulary")
	}
	return vocab, nil
}

type namedID struct {
	name string
	id   int32
}

// parsePostProcessor returns [CLS] and [SEP] of a TemplateProcessing of the
// form "[CLS] $A [SEP]" or of a BertProcessing.
func parsePostProcessor(raw json.RawMessage) (cls, sep namedID, err error) {
	if isNull(raw) {
		return cls, sep, errors.New("missing (without one no [CLS] and [SEP] are added)")
	}
	var pp struct {
		Type   string `json:"type"`
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs    []int64  `json:"ids"`
			Tokens []string `json:"tokens"`
		} `json:"special_tokens"`
		Cls []json.RawMessage `json:"cls"`
		Sep []json.RawMessage `json:"sep"`
	}
	if err := json.Unmarshal(raw, &pp); err != nil {
		return cls, sep, err
	}
	switch pp.Type {
	case "TemplateProcessing":
		s := pp.Single
		if len(s) != 3 || s[0].SpecialToken == nil || s[1].Sequence == nil || s[2].SpecialToken == nil {
			return cls, sep, errors.New(`single template is not "[CLS] $A [SEP]"`)
		}
		get := func(name string) (namedID, error) {
			st, ok := pp.SpecialTokens[name]
			if !ok || len(st.IDs) != 1 {
				return namedID{}, fmt.Errorf("special token %s needs exactly one id", bounded.Quote(name))
			}
			if st.IDs[0] < 0 || st.IDs[0] >= math.MaxInt32 {
				return namedID{}, fmt.Errorf("special token %s: id %d out of range", bounded.Quote(name), st.IDs[0])
			}
			return namedID{name, int32(st.IDs[0])}, nil
		}
		if cls, err = get(s[0].SpecialToken.ID); err != nil {
			return cls, sep, err
		}
		sep, err = get(s[2].SpecialToken.ID)
		return cls, sep, err
	case "BertProcessing":
		get := func(field string, v []json.RawMessage) (namedID, error) {
			var n namedID
			var id int64
			if len(v) != 2 || json.Unmarshal(v[0], &n.name) != nil || json.Unmarshal(v[1], &id) != nil {
				return n, fmt.Errorf("%s is not [token, id]", field)
			}
			if id < 0 || id >= math.MaxInt32 {
				return n, fmt.Errorf("%s: id %d out of range", field, id)
			}
			n.id = int32(id)
			return n, nil
		}
		if cls, err = get("cls", pp.Cls); err != nil {
			return cls, sep, err
		}
		sep, err = get("sep", pp.Sep)
		return cls, sep, err
	}
	return cls, sep, fmt.Errorf("type %s is not supported (want TemplateProcessing or BertProcessing)", bounded.Quote(pp.Type))
}

// --- tokenizer_config.json, special_tokens_map.json, added_tokens.json ---

type tokenNames struct {
	unk, cls, sep, pad, mask string
}

type config struct {
	hasConfig      bool // tokenizer_config.json was found
	lower          *bool
	stripAccents   *bool
	stripSet       bool // strip_accents key present
	cjk            *bool
	modelMaxLength int
	names          tokenNames
	added          []AddedToken
	extraSpecial   []string
}

// tokenName reads a special token given as a string or as an AddedToken
// object {"content": ...}.
func tokenName(raw json.RawMessage) (string, bool) {
	if isNull(raw) {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Content != "" {
		return o.Content, true
	}
	return "", false
}

func readJSONFile(path string, v any) (bool, error) {
	data, err := bounded.ReadFile(path, bounded.TokenizerLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tokenizer: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%w: %s: malformed JSON: %w", ErrFormat, path, err)
	}
	return true, nil
}

func readConfig(dir string) (*config, error) {
	var raw map[string]json.RawMessage
	path := filepath.Join(dir, "tokenizer_config.json")
	found, err := readJSONFile(path, &raw)
	if err != nil {
		return nil, err
	}
	var stm map[string]json.RawMessage
	stmPath := filepath.Join(dir, "special_tokens_map.json")
	foundSTM, err := readJSONFile(stmPath, &stm)
	if err != nil {
		return nil, err
	}
	var addedJSON map[string]int64
	atPath := filepath.Join(dir, "added_tokens.json")
	foundAT, err := readJSONFile(atPath, &addedJSON)
	if err != nil {
		return nil, err
	}
	if !found && !foundSTM && !foundAT {
		return nil, nil
	}
	c := &config{hasConfig: found}
	boolKey := func(key string) (*bool, bool, error) {
		v, ok := raw[key]
		if !ok {
			return nil, false, nil
		}
		if isNull(v) {
			return nil, true, nil
		}
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return nil, true, formatErr(path, "%s is not a boolean", key)
		}
		return &b, true, nil
	}
	if found {
		if c.lower, _, err = boolKey("do_lower_case"); err != nil {
			return nil, err
		}
		if c.stripAccents, c.stripSet, err = boolKey("strip_accents"); err != nil {
			return nil, err
		}
		if c.cjk, _, err = boolKey("tokenize_chinese_chars"); err != nil {
			return nil, err
		}
		if v, ok := raw["model_max_length"]; ok && !isNull(v) {
			var f float64
			if err := json.Unmarshal(v, &f); err != nil || f < 0 {
				return nil, formatErr(path, "model_max_length is not a non-negative number")
			}
			if f > math.MaxInt32 {
				f = math.MaxInt32
			}
			c.modelMaxLength = int(f)
		}
	}
	// Names: tokenizer_config.json wins over special_tokens_map.json.
	for _, src := range []map[string]json.RawMessage{stm, raw} {
		for key, dst := range map[string]*string{
			"unk_token": &c.names.unk, "cls_token": &c.names.cls, "sep_token": &c.names.sep,
			"pad_token": &c.names.pad, "mask_token": &c.names.mask,
		} {
			if s, ok := tokenName(src[key]); ok {
				*dst = s
			}
		}
		if v, ok := src["additional_special_tokens"]; ok && !isNull(v) {
			var list []json.RawMessage
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, formatErr(path, "additional_special_tokens is not a list")
			}
			c.extraSpecial = c.extraSpecial[:0]
			for _, e := range list {
				if s, ok := tokenName(e); ok {
					c.extraSpecial = append(c.extraSpecial, s)
				}
			}
		}
	}
	if v, ok := raw["added_tokens_decoder"]; ok && !isNull(v) {
		var dec map[string]jsonAddedToken
		if err := json.Unmarshal(v, &dec); err != nil {
			return nil, formatErr(path, "added_tokens_decoder: %v", err)
		}
		for key, a := range dec {
			id, err := strconv.ParseInt(key, 10, 32)
			if err != nil || id < 0 || id == math.MaxInt32 {
				return nil, formatErr(path, "added_tokens_decoder: bad id %s", bounded.Quote(key))
			}
			normalized := !a.Special
			if a.Normalized != nil {
				normalized = *a.Normalized
			}
			c.added = append(c.added, AddedToken{Content: a.Content, ID: int32(id), Special: a.Special,
				Normalized: normalized, LStrip: a.LStrip, RStrip: a.RStrip, SingleWord: a.SingleWord})
		}
	}
	for content, id := range addedJSON {
		if id < 0 || id >= math.MaxInt32 {
			return nil, formatErr(atPath, "token %s: id %d out of range", bounded.Quote(content), id)
		}
		c.added = append(c.added, AddedToken{Content: content, ID: int32(id), Normalized: true})
	}
	sort.SliceStable(c.added, func(i, j int) bool { return c.added[i].ID < c.added[j].ID })
	return c, nil
}

// applyNormalizer overrides the normalizer flags as BertTokenizerFast's
// constructor does: with tokenizer_config.json's values, or transformers'
// defaults (do_lower_case true, strip_accents null, tokenize_chinese_chars
// true) for missing keys.
func (c *config) applyNormalizer(o *Options) {
	if !c.hasConfig {
		return
	}
	o.Cased = c.lower != nil && !*c.lower
	o.Accents = accentMode(c.stripAccents)
	o.NoCJKSpacing = c.cjk != nil && !*c.cjk
}

// options returns the options for vocab.txt.
func (c *config) options() Options {
	o := Options{
		UnkToken: c.names.unk, ClsToken: c.names.cls, SepToken: c.names.sep,
		PadToken: c.names.pad, MaskToken: c.names.mask,
		ModelMaxLength: c.modelMaxLength,
	}
	c.applyNormalizer(&o)
	o.AddedTokens = append(o.AddedTokens, c.added...)
	for _, s := range c.extraSpecial {
		o.AddedTokens = append(o.AddedTokens, AddedToken{Content: s, ID: -1, Special: true})
	}
	return o
}
