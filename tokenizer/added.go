package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token matched in the text before the WordPiece model runs,
// as in tokenizer.json's added_tokens: the special tokens ("[CLS]", "[SEP]",
// "[PAD]", "[UNK]", "[MASK]") and any others, such as BLIP's "[DEC]" and
// "[ENC]".
type AddedToken struct {
	// Content is the token's text.
	Content string
	// ID is the token's id. In Options.AddedTokens a negative ID stands
	// for the id of the vocabulary entry with the same content or, if there
	// is none, the next free id (as transformers' add_tokens assigns them).
	ID int32
	// Special marks special tokens. CompatSlow does not lower-case special
	// tokens in the text (transformers' all_special_tokens).
	Special bool
	// Normalized tokens are matched in the normalized (lower-cased,
	// accent-stripped) text; the others in the raw text.
	Normalized bool
	// LStrip and RStrip make the token absorb the whitespace on its left and
	// right.
	LStrip, RStrip bool
	// SingleWord tokens match only when not inside a word.
	SingleWord bool
}

// matcher finds added tokens in a text, leftmost first and, among the
// tokens starting there, the longest (tokenizers' aho-corasick
// MatchKind::LeftmostLongest).
type matcher struct {
	pats  []string
	ids   []int32 // index into Tokenizer.added
	first [256][]int32
}

func newMatcher(pats []string, ids []int32) *matcher {
	m := &matcher{}
	order := make([]int, 0, len(pats))
	for i, p := range pats {
		if p != "" {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return nil
	}
	// Longest first, so the first candidate that matches is the longest.
	sort.SliceStable(order, func(a, b int) bool { return len(pats[order[a]]) > len(pats[order[b]]) })
	for _, i := range order {
		k := int32(len(m.pats))
		m.pats = append(m.pats, pats[i])
		m.ids = append(m.ids, ids[i])
		m.first[pats[i][0]] = append(m.first[pats[i][0]], k)
	}
	return m
}

// find returns the first match in s at or after from: its start, end and
// added-token index, or start -1.
func (m *matcher) find(s string, from int) (start, end int, id int32) {
	for i := from; i < len(s); i++ {
		for _, k := range m.first[s[i]] {
			if strings.HasPrefix(s[i:], m.pats[k]) {
				return i, i + len(m.pats[k]), m.ids[k]
			}
		}
	}
	return -1, -1, -1
}

// at returns the longest pattern matching at the start of s, or -1.
func (m *matcher) at(s string) (n int) {
	if s == "" {
		return -1
	}
	for _, k := range m.first[s[0]] {
		if strings.HasPrefix(s, m.pats[k]) {
			return len(m.pats[k])
		}
	}
	return -1
}

// piece is a part of the text: an added token (tok ≥ 0, an index into
// Tokenizer.added) or text to tokenize.
type piece struct {
	text string
	tok  int32
}

// rustWord is the Unicode \w of tokenizers' regex crate (Alphabetic, M, Nd,
// Pc, Join_Control, in its Unicode version).
func rustWord(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return unicode.Is(fastWord, r)
}

// splitFast splits s on the added tokens of m as tokenizers'
// AddedVocabulary::find_matches does, appending to dst.
func (t *Tokenizer) splitFast(dst []piece, s string, m *matcher) []piece {
	if m == nil {
		return append(dst, piece{s, -1})
	}
	startOffset := 0
	for pos := 0; pos < len(s); {
		start, stop, k := m.find(s, pos)
		if start < 0 {
			break
		}
		pos = stop
		at := &t.added[k]
		if at.SingleWord {
			startSpace := start == 0
			if !startSpace {
				r, _ := utf8.DecodeLastRuneInString(s[:start])
				startSpace = !rustWord(r)
			}
			stopSpace := stop == len(s)
			if !stopSpace {
				r, _ := utf8.DecodeRuneInString(s[stop:])
				stopSpace = !rustWord(r)
			}
			if !startSpace || !stopSpace {
				continue
			}
		}
		if at.LStrip {
			ns := len(strings.TrimRightFunc(s[:start], fastIsSpace))
			start = max(ns, startOffset)
		}
		if at.RStrip {
			// The search goes on from the end of the match itself, as
			// aho-corasick's find_iter does.
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], fastIsSpace))
		}
		if startOffset < start {
			dst = append(dst, piece{s[startOffset:start], -1})
		}
		dst = append(dst, piece{s[start:stop], k})
		startOffset = stop
	}
	if startOffset != len(s) || len(s) == 0 {
		dst = append(dst, piece{s[startOffset:], -1})
	}
	return dst
}

// splitSlow splits s on all added tokens and applies their flags as
// transformers' PreTrainedTokenizer.tokenize does.
func (t *Tokenizer) splitSlow(dst []piece, s string) []piece {
	base := len(dst)
	m := t.slowMatch
	if m == nil {
		return append(dst, piece{s, -1})
	}
	prev := 0
	for pos := 0; pos < len(s); {
		start, stop, _ := m.find(s, pos)
		if start < 0 {
			break
		}
		if start > prev {
			dst = append(dst, piece{s[prev:start], -1})
		}
		dst = append(dst, piece{s[start:stop], -1})
		prev, pos = stop, stop
	}
	if prev < len(s) {
		dst = append(dst, piece{s[prev:], -1})
	}
	ps := dst[base:]
	// As in Python, a piece is an added token when its text is one,
	// whatever produced it.
	for i := range ps {
		k, ok := t.slowIndex[ps[i].text]
		if !ok {
			continue
		}
		at := &t.added[k]
		if at.RStrip && i+1 < len(ps) && ps[i+1].text != "" {
			ps[i+1].text = strings.TrimLeftFunc(ps[i+1].text, pyIsSpace)
		}
		if at.LStrip && i > 0 && ps[i-1].text != "" {
			ps[i-1].text = strings.TrimRightFunc(ps[i-1].text, pyIsSpace)
		}
		switch {
		case at.SingleWord && i > 0 && ps[i-1].text != "" && !strings.HasSuffix(ps[i-1].text, " "):
			ps[i-1].text += ps[i].text
			ps[i].text = ""
		case at.SingleWord && i+1 < len(ps) && ps[i+1].text != "" && !strings.HasPrefix(ps[i+1].text, " "):
			ps[i+1].text = ps[i].text + ps[i+1].text
			ps[i].text = ""
		}
	}
	n := base
	for _, p := range ps {
		if p.text == "" {
			continue
		}
		p.tok = -1
		if k, ok := t.slowIndex[p.text]; ok {
			p.tok = k
		}
		dst[n] = p
		n++
	}
	return dst[:n]
}

// slowLowerPass lower-cases text character by character except where a
// special token (or a non-special normalized added token) occurs, as
// PreTrainedTokenizer.tokenize does when do_lower_case is set.
func (t *Tokenizer) slowLowerPass(text string, buf []rune) string {
	ascii := true
	for i := 0; i < len(text); i++ {
		if c := text[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			ascii = false
			break
		}
	}
	if ascii {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 8)
	m := t.slowKeep
	for i := 0; i < len(text); {
		if m != nil {
			if n := m.at(text[i:]); n > 0 {
				b.WriteString(text[i : i+n])
				i += n
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if r == '\n' {
			b.WriteByte('\n')
			continue
		}
		buf = pyLowerRune(buf[:0], r)
		for _, x := range buf {
			b.WriteRune(x)
		}
	}
	return b.String()
}
