package tokenizer

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// BLIP's extra token ids. salesforce/BLIP's init_tokenizer adds "[DEC]" (the
// decoder's bos token) and "[ENC]" (which replaces "[CLS]" for image-text
// matching in the original retrieval code) after bert-base-uncased's 30522
// entries, so the text embedding table has BLIPVocabSize rows. The Hub
// tokenizer files contain neither token: they are ids only.
const (
	DecID         int32 = 30522 // "[DEC]"
	EncID         int32 = 30523 // "[ENC]"
	BLIPVocabSize       = 30524 // rows of BLIP's word embedding table
)

// DefaultMaxInputCharsPerWord is BERT's max_input_chars_per_word: longer
// words become [UNK].
const DefaultMaxInputCharsPerWord = 100

// DefaultModelMaxLength is tokenizer_config.json's model_max_length for the
// BLIP checkpoints (the text encoder's 512 positions).
const DefaultModelMaxLength = 512

// Errors. Errors returned by this package wrap one of them.
var (
	// ErrInvalidUTF8 is returned for text that is not valid UTF-8; the
	// error is an *InvalidUTF8Error.
	ErrInvalidUTF8 = errors.New("tokenizer: invalid UTF-8")
	// ErrFormat is returned for tokenizer files that cannot be used.
	ErrFormat = errors.New("tokenizer: bad tokenizer file")
	// ErrMaxLen is returned for a maximum length of 1, which leaves no
	// room for [CLS] and [SEP].
	ErrMaxLen = errors.New("tokenizer: maximum length must be ≤ 0 (no limit) or ≥ 2")
)

// InvalidUTF8Error reports text that is not valid UTF-8. It matches
// ErrInvalidUTF8 with errors.Is.
type InvalidUTF8Error struct {
	// Offset is the byte offset of the first invalid byte.
	Offset int
}

// Error implements error.
func (e *InvalidUTF8Error) Error() string {
	return fmt.Sprintf("tokenizer: invalid UTF-8 at byte %d", e.Offset)
}

// Is reports whether target is ErrInvalidUTF8.
func (e *InvalidUTF8Error) Is(target error) bool { return target == ErrInvalidUTF8 }

func invalidUTF8(s string) error {
	off := 0
	for off < len(s) {
		r, size := utf8.DecodeRuneInString(s[off:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		off += size
	}
	return &InvalidUTF8Error{Offset: off}
}

// Compat selects the Hugging Face implementation a Tokenizer reproduces
// where they differ (see the package documentation).
type Compat uint8

const (
	// CompatFast reproduces BertTokenizerFast (tokenizers 0.22.2), which
	// BlipProcessor uses.
	CompatFast Compat = iota
	// CompatSlow reproduces the Python BertTokenizer (transformers 4.57.6)
	// on Python 3.12 (Unicode 15.0), as used by salesforce/BLIP and LAVIS.
	CompatSlow
)

// String returns "fast" or "slow".
func (c Compat) String() string {
	switch c {
	case CompatFast:
		return "fast"
	case CompatSlow:
		return "slow"
	}
	return fmt.Sprintf("Compat(%d)", uint8(c))
}

// AccentMode says whether accents are stripped (strip_accents).
type AccentMode uint8

const (
	// AccentsDefault strips accents when lower-casing (strip_accents null,
	// as in BERT uncased).
	AccentsDefault AccentMode = iota
	// AccentsStrip always strips accents (strip_accents true).
	AccentsStrip
	// AccentsKeep never strips accents (strip_accents false).
	AccentsKeep
)

// Options configure a Tokenizer built by FromVocab. The zero value is
// bert-base-uncased as the BLIP checkpoints use it.
type Options struct {
	// Compat selects the implementation to reproduce.
	Compat Compat
	// Cased disables lower-casing (do_lower_case false).
	Cased bool
	// Accents says whether accents are stripped.
	Accents AccentMode
	// NoCJKSpacing disables the spaces around CJK ideographs
	// (tokenize_chinese_chars false).
	NoCJKSpacing bool
	// NoCleanText disables the removal of control characters and the
	// mapping of whitespace to spaces (tokenizers' clean_text false; the
	// Python BertTokenizer always cleans, but CompatSlow honours this too).
	NoCleanText bool
	// MaxInputCharsPerWord is the longest word, in characters, that is not
	// [UNK]; 0 means DefaultMaxInputCharsPerWord.
	MaxInputCharsPerWord int
	// ContinuingSubwordPrefix marks word pieces inside a word; "" means "##".
	ContinuingSubwordPrefix string
	// UnkToken, ClsToken, SepToken, PadToken and MaskToken name the special
	// tokens; "" means "[UNK]", "[CLS]", "[SEP]", "[PAD]" and "[MASK]". All
	// but MaskToken must be in the vocabulary.
	UnkToken, ClsToken, SepToken, PadToken, MaskToken string
	// AddedTokens are matched in the text before tokenization. The special
	// tokens above are added automatically when present in the vocabulary,
	// as transformers does.
	AddedTokens []AddedToken
	// ModelMaxLength is reported by Tokenizer.ModelMaxLength; 0 means
	// DefaultModelMaxLength.
	ModelMaxLength int
}

// Tokenizer is a BERT WordPiece tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab   map[string]int32 // WordPiece vocabulary
	cont    map[string]int32 // continuation pieces, prefix removed
	reverse map[int32]string // id → token, added tokens included
	added   []AddedToken
	byText  map[string]int32 // added token content → index into added

	rawMatch  *matcher // fast: added tokens matched in the raw text
	normMatch *matcher // fast: added tokens matched in the normalized text

	slowMatch  *matcher         // slow: all added tokens
	slowIndex  map[string]int32 // slow: pattern → index into added
	slowKeep   *matcher         // slow: text the lower-casing pass skips
	neverSplit map[string]bool  // slow: all_special_tokens

	compat                   Compat
	lower, strip, cjk, clean bool
	maxChars                 int
	maxPiece                 int // longest vocabulary entry, in bytes
	prefix                   string
	unk, cls, sep, pad       int32
	mask                     int32 // -1 if none
	vocabSize                int
	modelMaxLength           int
}

// Encoding is one tokenized text.
type Encoding struct {
	// IDs are the token ids, [CLS] first and [SEP] last.
	IDs []int32
	// Truncated reports that tokens were dropped to respect the maximum
	// length.
	Truncated bool
}

// Batch is a batch of encodings right-padded with [PAD] to one length, laid
// out like model.TextBatch.
type Batch struct {
	// IDs holds Batch×Len token ids, row-major.
	IDs []int32
	// Mask holds Batch×Len values, 1 for a real token and 0 for padding
	// (transformers' attention_mask).
	Mask []int32
	// Batch is the number of texts; Len the padded length.
	Batch, Len int
	// Lengths holds each text's number of real tokens.
	Lengths []int
	// Truncated reports, for each text, that tokens were dropped.
	Truncated []bool
}

// Row returns the ids and mask of text i.
func (b *Batch) Row(i int) (ids, mask []int32) {
	return b.IDs[i*b.Len : (i+1)*b.Len], b.Mask[i*b.Len : (i+1)*b.Len]
}

// Tokenize returns the word pieces of text, without [CLS] and [SEP]; "[UNK]"
// stands for unknown words. It returns an *InvalidUTF8Error if text is not
// valid UTF-8.
func (t *Tokenizer) Tokenize(text string) ([]string, error) {
	out := sink{want: true}
	if err := t.run(text, &out); err != nil {
		return nil, err
	}
	if out.toks == nil {
		out.toks = []string{}
	}
	return out.toks, nil
}

// TokenIDs returns the ids of text's word pieces, without [CLS] and [SEP].
func (t *Tokenizer) TokenIDs(text string) ([]int32, error) {
	out := sink{ids: make([]int32, 0, len(text)/4+4)}
	if err := t.run(text, &out); err != nil {
		return nil, err
	}
	return out.ids, nil
}

// Encode tokenizes text as transformers' tokenizer(text, max_length=maxLen,
// truncation=True) does: [CLS], the word pieces, [SEP], the pieces cut from
// the end so that the whole is at most maxLen ids long. maxLen ≤ 0 means no
// limit (the BLIP text encoder itself accepts at most 512 positions);
// maxLen 2 gives [CLS] [SEP], as BertTokenizerFast does (the Python
// BertTokenizer logs an error and does not truncate). Encode returns an
// *InvalidUTF8Error if text is not valid UTF-8, and ErrMaxLen for maxLen 1.
func (t *Tokenizer) Encode(text string, maxLen int) (Encoding, error) {
	if maxLen == 1 {
		return Encoding{}, ErrMaxLen
	}
	c := len(text)/4 + 8
	if maxLen > 0 && c > maxLen+1 {
		c = maxLen + 1
	}
	out := sink{ids: make([]int32, 1, c)}
	out.ids[0] = t.cls
	if err := t.run(text, &out); err != nil {
		return Encoding{}, err
	}
	ids := out.ids
	truncated := false
	if maxLen > 0 && len(ids)+1 > maxLen {
		ids = ids[:maxLen-1]
		truncated = true
	}
	ids = append(ids, t.sep)
	return Encoding{IDs: ids, Truncated: truncated}, nil
}

// EncodeBatch encodes every text with Encode and pads the results to the
// longest (transformers' padding=True). An error names the index of the
// text that caused it and wraps Encode's error.
func (t *Tokenizer) EncodeBatch(texts []string, maxLen int) (Batch, error) {
	encs := make([]Encoding, len(texts))
	for i, s := range texts {
		e, err := t.Encode(s, maxLen)
		if err != nil {
			return Batch{}, fmt.Errorf("tokenizer: text %d: %w", i, err)
		}
		encs[i] = e
	}
	return t.Pad(encs, 0), nil
}

// Pad right-pads encodings with [PAD] to the longest of them, or to length
// if that is longer (transformers' padding="max_length" with
// max_length=length, as salesforce/BLIP pads to 35).
func (t *Tokenizer) Pad(encs []Encoding, length int) Batch {
	n := max(length, 0)
	for _, e := range encs {
		n = max(n, len(e.IDs))
	}
	b := Batch{
		IDs:       make([]int32, len(encs)*n),
		Mask:      make([]int32, len(encs)*n),
		Batch:     len(encs),
		Len:       n,
		Lengths:   make([]int, len(encs)),
		Truncated: make([]bool, len(encs)),
	}
	for i, e := range encs {
		row, mask := b.Row(i)
		copy(row, e.IDs)
		for j := range row {
			if j < len(e.IDs) {
				mask[j] = 1
			} else {
				row[j] = t.pad
			}
		}
		b.Lengths[i] = len(e.IDs)
		b.Truncated[i] = e.Truncated
	}
	return b
}

// ID returns the id of token (an added token or a vocabulary entry).
func (t *Tokenizer) ID(token string) (int32, bool) {
	if k, ok := t.byText[token]; ok {
		return t.added[k].ID, true
	}
	id, ok := t.vocab[token]
	return id, ok
}

// Token returns the token with the given id.
func (t *Tokenizer) Token(id int32) (string, bool) {
	s, ok := t.reverse[id]
	return s, ok
}

// VocabSize returns the largest id plus one (30522 for the BLIP tokenizer
// files; BLIP's embedding table has BLIPVocabSize rows).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// CLS returns the id of [CLS].
func (t *Tokenizer) CLS() int32 { return t.cls }

// SEP returns the id of [SEP].
func (t *Tokenizer) SEP() int32 { return t.sep }

// PAD returns the id of [PAD].
func (t *Tokenizer) PAD() int32 { return t.pad }

// UNK returns the id of [UNK].
func (t *Tokenizer) UNK() int32 { return t.unk }

// Mask returns the id of [MASK], if the tokenizer has one.
func (t *Tokenizer) Mask() (int32, bool) { return t.mask, t.mask >= 0 }

// ModelMaxLength returns tokenizer_config.json's model_max_length (512 for
// BLIP). Encode does not enforce it.
func (t *Tokenizer) ModelMaxLength() int { return t.modelMaxLength }

// AddedTokens returns a copy of the added tokens.
func (t *Tokenizer) AddedTokens() []AddedToken {
	return append([]AddedToken(nil), t.added...)
}

// Compat returns the implementation the tokenizer reproduces.
func (t *Tokenizer) Compat() Compat { return t.compat }

// WithCompat returns a tokenizer that shares t's vocabulary and reproduces
// the implementation c.
func (t *Tokenizer) WithCompat(c Compat) *Tokenizer {
	u := *t
	u.compat = c
	return &u
}
