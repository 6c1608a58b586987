package tokenizer

import (
	"slices"
	"sort"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file holds the character classes of both implementations.
//
// CompatFast: tokenizers' BertNormalizer and BertPreTokenizer, from the tables
// in tables_fast.go.
//
// CompatSlow: transformers' BasicTokenizer (_is_control, _is_whitespace,
// _is_punctuation, _is_chinese_char, str.lower, str.split), from Go's unicode
// package.

// lowerRun is one run of fastLowerRuns.
type lowerRun struct {
	Lo, Hi, Stride, Delta int32
}

// fastLower appends the lower-case form of r as tokenizers computes it
// (Rust's char::to_lowercase).
func fastLower(dst []rune, r rune) []rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, r)
	}
	if s, ok := fastLowerMulti[r]; ok {
		for _, x := range s {
			dst = append(dst, x)
		}
		return dst
	}
	i := sort.Search(len(fastLowerRuns), func(i int) bool { return fastLowerRuns[i].Hi >= r })
	if i < len(fastLowerRuns) {
		lr := fastLowerRuns[i]
		if r >= lr.Lo && (r-lr.Lo)%lr.Stride == 0 {
			r += lr.Delta
		}
	}
	return append(dst, r)
}

func fastIsControl(r rune) bool {
	if r < utf8.RuneSelf {
		return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f
	}
	return unicode.Is(fastControl, r)
}

func fastIsSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || ('\t' <= r && r <= '\r')
	}
	return unicode.Is(fastSpace, r)
}

func fastIsPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return isASCIIPunct(r)
	}
	return unicode.Is(fastPunct, r)
}

func fastIsMn(r rune) bool {
	return r >= 0x300 && unicode.Is(fastMn, r)
}

// fastIsCJK is tokenizers' is_chinese_char, whose fifth range starts at
// U+2B920 where BERT's starts at U+2B820.
func fastIsCJK(r rune) bool {
	switch {
	case r < 0x3400:
		return false
	case r <= 0x4DBF:
		return true
	case r < 0x4E00:
		return false
	case r <= 0x9FFF:
		return true
	case 0xF900 <= r && r <= 0xFAFF:
		return true
	case 0x20000 <= r && r <= 0x2A6DF:
		return true
	case 0x2A700 <= r && r <= 0x2B81F:
		return true
	case 0x2B920 <= r && r <= 0x2CEAF:
		return true
	case 0x2F800 <= r && r <= 0x2FA1F:
		return true
	}
	return false
}

// slowIsCJK is BasicTokenizer._is_chinese_char.
func slowIsCJK(r rune) bool {
	if 0x2B820 <= r && r <= 0x2B91F {
		return true
	}
	return fastIsCJK(r)
}

func isASCIIPunct(r rune) bool {
	return (33 <= r && r <= 47) || (58 <= r && r <= 64) || (91 <= r && r <= 96) || (123 <= r && r <= 126)
}

// pyAssigned reports whether r has a Unicode general category other than Cn.
func pyAssigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C)
}

// slowIsControl is _is_control: category C* (Cc, Cf, Cn, Co, Cs) other than
// tab, newline and carriage return.
func slowIsControl(r rune) bool {
	if r < utf8.RuneSelf {
		return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f
	}
	return unicode.In(r, unicode.C) || !pyAssigned(r)
}

// slowIsWhitespace is _is_whitespace: space, tab, newline, carriage return
// and category Zs.
func slowIsWhitespace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}
	return unicode.Is(unicode.Zs, r)
}

// slowIsPunct is _is_punctuation.
func slowIsPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return isASCIIPunct(r)
	}
	return unicode.In(r, unicode.P)
}

// pyIsSpace is Python's str.isspace for one character, which str.split(),
// str.strip() and the re module's \s use: bidirectional class WS, B or S,
// or category Zs.
func pyIsSpace(r rune) bool {
	switch {
	case r == ' ' || ('\t' <= r && r <= '\r') || (0x1c <= r && r <= 0x1f):
		return true
	case r < 0x85:
		return false
	case r == 0x85 || r == 0xa0 || r == 0x1680 || (0x2000 <= r && r <= 0x200a) ||
		r == 0x2028 || r == 0x2029 || r == 0x202f || r == 0x205f || r == 0x3000:
		return true
	}
	return false
}

// pyLowerRune appends Python's full lower-case mapping of r, without the
// context-dependent final sigma.
func pyLowerRune(dst []rune, r rune) []rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, r)
	}
	if r == 0x130 {
		return append(dst, 'i', 0x307)
	}
	return append(dst, unicode.ToLower(r))
}

// pyCased is the Unicode Cased property (Python's _PyUnicode_IsCased).
func pyCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// pyCaseIgnorable is the Unicode Case_Ignorable property: Mn, Me, Cf, Lm, Sk
// and Word_Break MidLetter, MidNumLet and Single_Quote.
func pyCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return r >= 0x5e && unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// pyLowerRunes lower-cases rs as Python's str.lower does, including the
// final form of capital sigma.
func pyLowerRunes(dst []rune, rs []rune) []rune {
	for i, r := range rs {
		if r == 0x3a3 {
			dst = append(dst, pyFinalSigma(rs, i))
			continue
		}
		dst = pyLowerRune(dst, r)
	}
	return dst
}

// pyFinalSigma returns ς or σ for the capital sigma at rs[i], following
// CPython's handle_capital_sigma.
func pyFinalSigma(rs []rune, i int) rune {
	j := i - 1
	for j >= 0 && pyCaseIgnorable(rs[j]) {
		j--
	}
	final := j >= 0 && pyCased(rs[j])
	if final && i+1 < len(rs) {
		j = i + 1
		for j < len(rs) && pyCaseIgnorable(rs[j]) {
			j++
		}
		final = j == len(rs) || !pyCased(rs[j])
	}
	if final {
		return 0x3c2
	}
	return 0x3c3
}

// ccc returns the canonical combining class of r.
func ccc(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	var b [utf8.UTFMax]byte
	n := utf8.EncodeRune(b[:], r)
	return norm.NFD.Properties(b[:n]).CCC()
}

const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulTCount = 28
	hangulNCount = 21 * hangulTCount
	hangulSCount = 19 * hangulNCount
)

// decompose appends the full canonical decomposition of r.
func decompose(dst []rune, r rune) []rune {
	if r < 0xc0 {
		return append(dst, r)
	}
	if s := r - hangulSBase; 0 <= s && s < hangulSCount {
		dst = append(dst, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
		if t := s % hangulTCount; t != 0 {
			dst = append(dst, hangulTBase+t)
		}
		return dst
	}
	var b [utf8.UTFMax]byte
	n := utf8.EncodeRune(b[:], r)
	d := norm.NFD.Properties(b[:n]).Decomposition()
	if d == nil {
		return append(dst, r)
	}
	for len(d) > 0 {
		x, size := utf8.DecodeRune(d)
		dst = append(dst, x)
		d = d[size:]
	}
	return dst
}

// nfdStrip appends to dst the NFD of rs with the characters for which drop
// is true removed. Unlike norm.NFD it reorders combining marks across any
// number of non-starters (no stream-safe U+034F insertion), as Python's
// unicodedata and Rust's unicode-normalization do. override, if not nil,
// gives results that replace a character's decomposition (already stripped;
// all are starters).
func nfdStrip(dst, rs []rune, drop func(rune) bool, override map[rune]string) []rune {
	base := len(dst)
	reorder := false
	var prev uint8
	for _, r := range rs {
		if r < 0xc0 {
			dst = append(dst, r)
			prev = 0
			continue
		}
		if override != nil {
			if s, ok := override[r]; ok {
				for _, x := range s {
					dst = append(dst, x)
				}
				prev = 0
				continue
			}
		}
		start := len(dst)
		dst = decompose(dst, r)
		for _, x := range dst[start:] {
			c := ccc(x)
			if c != 0 && prev > c {
				reorder = true
			}
			prev = c
		}
	}
	if reorder {
		canonicalOrder(dst[base:])
	}
	n := base
	for _, r := range dst[base:] {
		if !drop(r) {
			dst[n] = r
			n++
		}
	}
	return dst[:n]
}

// canonicalOrder sorts every run of non-starters by combining class,
// stably (the Canonical Ordering Algorithm).
func canonicalOrder(rs []rune) {
	type mark struct {
		r rune
		c uint8
	}
	var run []mark
	for i := 0; i < len(rs); {
		if ccc(rs[i]) == 0 {
			i++
			continue
		}
		j := i
		run = run[:0]
		for j < len(rs) {
			c := ccc(rs[j])
			if c == 0 {
				break
			}
			run = append(run, mark{rs[j], c})
			j++
		}
		slices.SortStableFunc(run, func(a, b mark) int { return int(a.c) - int(b.c) })
		for k, m := range run {
			rs[i+k] = m.r
		}
		i = j
	}
}
