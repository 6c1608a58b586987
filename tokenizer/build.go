package tokenizer

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newTokenizer checks and assembles a tokenizer. vocab is the WordPiece
// vocabulary; clsID and sepID, if not nil, come from tokenizer.json's
// post_processor. With autoSpecials the special tokens found in the
// vocabulary become added tokens, as transformers does for vocab.txt.
func newTokenizer(path string, vocab map[string]int32, o Options, clsID, sepID *int32, autoSpecials bool) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, formatErr(path, "empty vocabulary")
	}
	if o.Compat > CompatSlow {
		return nil, formatErr(path, "unknown compat %d", o.Compat)
	}
	if o.MaxInputCharsPerWord < 0 {
		return nil, formatErr(path, "negative MaxInputCharsPerWord")
	}
	t := &Tokenizer{
		vocab:          vocab,
		compat:         o.Compat,
		lower:          !o.Cased,
		cjk:            !o.NoCJKSpacing,
		clean:          !o.NoCleanText,
		maxChars:       o.MaxInputCharsPerWord,
		prefix:         orDefault(o.ContinuingSubwordPrefix, "##"),
		modelMaxLength: o.ModelMaxLength,
		mask:           -1,
	}
	switch o.Accents {
	case AccentsDefault:
		t.strip = t.lower
	case AccentsStrip:
		t.strip = true
	case AccentsKeep:
	default:
		return nil, formatErr(path, "unknown accent mode %d", o.Accents)
	}
	if t.maxChars == 0 {
		t.maxChars = DefaultMaxInputCharsPerWord
	}
	if t.modelMaxLength == 0 {
		t.modelMaxLength = DefaultModelMaxLength
	}
	names := tokenNames{
		unk:  orDefault(o.UnkToken, "[UNK]"),
		cls:  orDefault(o.ClsToken, "[CLS]"),
		sep:  orDefault(o.SepToken, "[SEP]"),
		pad:  orDefault(o.PadToken, "[PAD]"),
		mask: orDefault(o.MaskToken, "[MASK]"),
	}

	maxID := int32(-1)
	t.cont = make(map[string]int32)
	t.reverse = make(map[int32]string, len(vocab)+len(o.AddedTokens))
	for tok, id := range vocab {
		if id < 0 || id == math.MaxInt32 {
			return nil, formatErr(path, "token %s: id %d out of range", bounded.Quote(tok), id)
		}
		if !utf8.ValidString(tok) {
			return nil, formatErr(path, "token %s is not valid UTF-8", bounded.Quote(tok))
		}
		if other, dup := t.reverse[id]; dup {
			return nil, formatErr(path, "tokens %s and %s share id %d", bounded.Quote(other), bounded.Quote(tok), id)
		}
		t.reverse[id] = tok
		maxID = max(maxID, id)
		t.maxPiece = max(t.maxPiece, len(tok))
		if rest, ok := strings.CutPrefix(tok, t.prefix); ok {
			t.cont[rest] = id
		}
	}

	// Added tokens: the file's, then (for vocab.txt) the special tokens.
	added := append([]AddedToken(nil), o.AddedTokens...)
	if autoSpecials {
		for _, n := range []string{names.unk, names.sep, names.pad, names.cls, names.mask} {
			if _, ok := vocab[n]; ok {
				added = append(added, AddedToken{Content: n, ID: -1, Special: true})
			}
		}
	}
	t.byText = make(map[string]int32, len(added))
	for _, a := range added {
		if a.Content == "" {
			continue
		}
		if !utf8.ValidString(a.Content) {
			return nil, formatErr(path, "added token %s is not valid UTF-8", bounded.Quote(a.Content))
		}
		if a.ID == math.MaxInt32 {
			return nil, formatErr(path, "added token %s: id %d out of range", bounded.Quote(a.Content), a.ID)
		}
		if k, dup := t.byText[a.Content]; dup {
			prev := &t.added[k]
			if a.ID >= 0 && prev.ID != a.ID {
				return nil, formatErr(path, "added token %s has ids %d and %d", bounded.Quote(a.Content), prev.ID, a.ID)
			}
			prev.Special = prev.Special || a.Special
			continue
		}
		if a.ID < 0 {
			if id, ok := vocab[a.Content]; ok {
				a.ID = id
			} else {
				if maxID == math.MaxInt32-1 {
					return nil, formatErr(path, "no id left for added token %s", bounded.Quote(a.Content))
				}
				maxID++
				a.ID = maxID
			}
		}
		if other, ok := t.reverse[a.ID]; ok && other != a.Content {
			if _, inVocab := vocab[other]; !inVocab {
				return nil, formatErr(path, "added tokens %s and %s share id %d", bounded.Quote(other), bounded.Quote(a.Content), a.ID)
			}
		}
		t.reverse[a.ID] = a.Content
		maxID = max(maxID, a.ID)
		t.byText[a.Content] = int32(len(t.added))
		t.added = append(t.added, a)
	}
	t.vocabSize = int(maxID) + 1

	var ok bool
	if t.unk, ok = vocab[names.unk]; !ok {
		return nil, formatErr(path, "unknown token %s is missing from the vocabulary", bounded.Quote(names.unk))
	}
	lookup := func(name string, given *int32) (int32, error) {
		if given != nil {
			if _, ok := t.reverse[*given]; !ok {
				return 0, formatErr(path, "special token %s: id %d is not in the vocabulary", bounded.Quote(name), *given)
			}
			return *given, nil
		}
		if id, ok := t.ID(name); ok {
			return id, nil
		}
		return 0, formatErr(path, "special token %s is missing from the vocabulary", bounded.Quote(name))
	}
	var err error
	if t.cls, err = lookup(names.cls, clsID); err != nil {
		return nil, err
	}
	if t.sep, err = lookup(names.sep, sepID); err != nil {
		return nil, err
	}
	if t.pad, err = lookup(names.pad, nil); err != nil {
		return nil, err
	}
	if id, ok := t.ID(names.mask); ok {
		t.mask = id
	}
	t.buildMatchers()
	return t, nil
}

// buildMatchers prepares the added-token matching of both implementations.
func (t *Tokenizer) buildMatchers() {
	var rawPats, normPats, slowPats, keepPats []string
	var rawIDs, normIDs, slowIDs, keepIDs []int32
	t.slowIndex = make(map[string]int32, len(t.added))
	t.neverSplit = make(map[string]bool)
	sc := new(scratch)
	for k, a := range t.added {
		k := int32(k)
		// tokenizers: normalized tokens are matched, in their normalized
		// form, in the normalized text.
		if a.Normalized {
			normPats = append(normPats, string(t.fastNormalize(a.Content, sc)))
			normIDs = append(normIDs, k)
		} else {
			rawPats = append(rawPats, a.Content)
			rawIDs = append(rawIDs, k)
		}
		// transformers: all added tokens are matched in the text after the
		// lower-casing pass; non-special normalized tokens were
		// lower-cased when added.
		p := a.Content
		if t.lower && !a.Special && a.Normalized {
			p = string(pyLowerRunes(nil, []rune(p)))
		}
		if _, dup := t.slowIndex[p]; !dup {
			t.slowIndex[p] = k
			slowPats = append(slowPats, p)
			slowIDs = append(slowIDs, k)
		}
		if a.Special || a.Normalized {
			keepPats = append(keepPats, p)
			keepIDs = append(keepIDs, k)
		}
		if a.Special {
			t.neverSplit[a.Content] = true
		}
	}
	t.rawMatch = newMatcher(rawPats, rawIDs)
	t.normMatch = newMatcher(normPats, normIDs)
	t.slowMatch = newMatcher(slowPats, slowIDs)
	t.slowKeep = newMatcher(keepPats, keepIDs)
}
