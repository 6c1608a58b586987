package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// scratch holds the buffers of one call.
type scratch struct {
	r1, r2, r3 []rune
	b, w       []byte
	pieces     []piece
	sub        []piece
	wp         []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// sink collects the output of run.
type sink struct {
	ids  []int32
	toks []string
	want bool // collect toks too
	// words, if not nil, receives the words before WordPiece instead
	// (tests).
	words *[]string
}

func (t *Tokenizer) emit(out *sink, id int32) {
	out.ids = append(out.ids, id)
	if out.want {
		out.toks = append(out.toks, t.reverse[id])
	}
}

// run tokenizes text (without [CLS] and [SEP]) into out.
func (t *Tokenizer) run(text string, out *sink) error {
	if !utf8.ValidString(text) {
		return invalidUTF8(text)
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	if t.compat == CompatSlow {
		if t.lower {
			text = t.slowLowerPass(text, sc.r1)
		}
		sc.pieces = t.splitSlow(sc.pieces[:0], text)
		for _, p := range sc.pieces {
			if p.tok >= 0 {
				t.emitAdded(out, p)
				continue
			}
			t.slowWords(p.text, sc, out)
		}
		return nil
	}
	sc.pieces = t.splitFast(sc.pieces[:0], text, t.rawMatch)
	for _, p := range sc.pieces {
		if p.tok >= 0 {
			t.emitAdded(out, p)
			continue
		}
		nb := t.fastNormalize(p.text, sc)
		if t.normMatch == nil {
			t.fastWords(nb, sc, out)
			continue
		}
		sc.sub = t.splitFast(sc.sub[:0], string(nb), t.normMatch)
		for _, q := range sc.sub {
			if q.tok >= 0 {
				t.emitAdded(out, q)
				continue
			}
			t.fastWords([]byte(q.text), sc, out)
		}
	}
	return nil
}

func (t *Tokenizer) emitAdded(out *sink, p piece) {
	at := &t.added[p.tok]
	out.ids = append(out.ids, at.ID)
	if out.want {
		// CompatSlow matched the token's (possibly lower-cased) text
		// exactly; CompatFast's match may include stripped spaces.
		if t.compat == CompatSlow {
			out.toks = append(out.toks, p.text)
		} else {
			out.toks = append(out.toks, at.Content)
		}
	}
}

// fastNormalize is tokenizers' BertNormalizer: clean_text,
// handle_chinese_chars, strip_accents, lowercase, in that order. It returns
// UTF-8 in sc.b.
func (t *Tokenizer) fastNormalize(s string, sc *scratch) []byte {
	rs := sc.r1[:0]
	for _, r := range s {
		if t.clean {
			if fastIsControl(r) {
				continue
			}
			if fastIsSpace(r) {
				rs = append(rs, ' ')
				continue
			}
		}
		if t.cjk && fastIsCJK(r) {
			rs = append(rs, ' ', r, ' ')
			continue
		}
		rs = append(rs, r)
	}
	sc.r1 = rs
	if t.strip {
		sc.r2 = nfdStrip(sc.r2[:0], rs, fastIsMn, fastStripOverride)
		rs = sc.r2
	}
	if t.lower {
		lo := sc.r3[:0]
		for _, r := range rs {
			lo = fastLower(lo, r)
		}
		sc.r3 = lo
		rs = lo
	}
	b := sc.b[:0]
	for _, r := range rs {
		b = utf8.AppendRune(b, r)
	}
	sc.b = b
	return b
}

// fastWords is tokenizers' BertPreTokenizer (split on whitespace, isolate
// punctuation) followed by WordPiece.
func (t *Tokenizer) fastWords(b []byte, sc *scratch, out *sink) {
	start, n := 0, 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case fastIsSpace(r):
			if n > 0 {
				t.wordPiece(b[start:i], n, sc, out)
			}
			n = 0
			start = i + size
		case fastIsPunct(r):
			if n > 0 {
				t.wordPiece(b[start:i], n, sc, out)
			}
			t.wordPiece(b[i:i+size], 1, sc, out)
			n = 0
			start = i + size
		default:
			n++
		}
		i += size
	}
	if n > 0 {
		t.wordPiece(b[start:], n, sc, out)
	}
}

// slowWords is transformers' BasicTokenizer.tokenize followed by
// WordpieceTokenizer.tokenize, for text between added tokens.
func (t *Tokenizer) slowWords(s string, sc *scratch, out *sink) {
	rs := sc.r1[:0]
	for _, r := range s {
		if t.clean {
			if r == 0 || r == 0xfffd || slowIsControl(r) {
				continue
			}
			if slowIsWhitespace(r) {
				rs = append(rs, ' ')
				continue
			}
		}
		if t.cjk && slowIsCJK(r) {
			rs = append(rs, ' ', r, ' ')
			continue
		}
		rs = append(rs, r)
	}
	sc.r1 = rs
	if !t.strip {
		// BasicTokenizer applies NFC before splitting. When accents are
		// stripped, the NFD that follows makes it irrelevant.
		for _, r := range rs {
			if r >= 0x300 {
				rs = []rune(norm.NFC.String(string(rs)))
				break
			}
		}
	}
	// whitespace_tokenize, then per token: lower, strip accents, split on
	// punctuation.
	for i := 0; i < len(rs); {
		for i < len(rs) && pyIsSpace(rs[i]) {
			i++
		}
		j := i
		for j < len(rs) && !pyIsSpace(rs[j]) {
			j++
		}
		if j > i {
			t.slowToken(rs[i:j], sc, out)
		}
		i = j
	}
}

func (t *Tokenizer) slowToken(tok []rune, sc *scratch, out *sink) {
	if len(t.neverSplit) > 0 {
		w := sc.w[:0]
		for _, r := range tok {
			w = utf8.AppendRune(w, r)
		}
		sc.w = w
		if t.neverSplit[string(w)] {
			t.wordPiece(w, len(tok), sc, out)
			return
		}
	}
	if t.lower {
		sc.r2 = pyLowerRunes(sc.r2[:0], tok)
		tok = sc.r2
	}
	if t.strip {
		sc.r3 = nfdStrip(sc.r3[:0], tok, slowIsMn, nil)
		tok = sc.r3
	}
	w := sc.w[:0]
	n := 0
	for _, r := range tok {
		switch {
		case pyIsSpace(r):
			// Never produced by the steps above; whitespace_tokenize would
			// split here.
			if n > 0 {
				t.wordPiece(w, n, sc, out)
			}
			w, n = w[:0], 0
		case slowIsPunct(r):
			if n > 0 {
				t.wordPiece(w, n, sc, out)
			}
			w = utf8.AppendRune(w[:0], r)
			t.wordPiece(w, 1, sc, out)
			w, n = w[:0], 0
		default:
			w = utf8.AppendRune(w, r)
			n++
		}
	}
	if n > 0 {
		t.wordPiece(w, n, sc, out)
	}
	sc.w = w
}

func slowIsMn(r rune) bool { return r >= 0x300 && unicode.Is(unicode.Mn, r) }

// wordPiece splits one word (n characters) greedily, longest match first,
// and emits its pieces, or [UNK] if the word is too long or cannot be split.
func (t *Tokenizer) wordPiece(w []byte, n int, sc *scratch, out *sink) {
	if out.words != nil {
		*out.words = append(*out.words, string(w))
		return
	}
	if n > t.maxChars {
		t.emit(out, t.unk)
		return
	}
	ids := sc.wp[:0]
	for start := 0; start < len(w); {
		// No piece is longer than the longest vocabulary entry.
		end := len(w)
		if end-start > t.maxPiece {
			end = start + t.maxPiece
			for end > start && !utf8.RuneStart(w[end]) {
				end--
			}
		}
		found := false
		for end > start {
			var id int32
			var ok bool
			if start == 0 {
				id, ok = t.vocab[string(w[start:end])]
			} else {
				id, ok = t.cont[string(w[start:end])]
			}
			if ok {
				ids = append(ids, id)
				found = true
				break
			}
			_, size := utf8.DecodeLastRune(w[start:end])
			end -= size
		}
		if !found {
			sc.wp = ids
			t.emit(out, t.unk)
			return
		}
		start = end
	}
	sc.wp = ids
	for _, id := range ids {
		t.emit(out, id)
	}
}
