package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// PreCaption is salesforce/BLIP's pre_caption (data/utils.py), the caption
// cleaning of the original retrieval evaluation (maxWords 30 for COCO and
// Flickr30k, 50 by default):
//
//	caption = re.sub(r"([.!\"()*#:;~])", ' ', caption.lower())
//	caption = re.sub(r"\s{2,}", ' ', caption)
//	caption = caption.rstrip('\n')
//	caption = caption.strip(' ')
//	caption_words = caption.split(' ')
//	if len(caption_words) > max_words:
//	    caption = ' '.join(caption_words[:max_words])
//
// It reproduces Python exactly: str.lower is Unicode's full lower-casing
// with the final sigma rule, and \s is Python's Unicode whitespace (Go's
// Unicode 15.0 tables are Python 3.12's). Unlike
// Python, maxWords ≤ 0 means no limit. Bytes that are not valid UTF-8 are
// kept as they are (Encode then rejects them).
func PreCaption(caption string, maxWords int) string {
	// caption.lower(), then the punctuation becomes spaces.
	rs := make([]rune, 0, len(caption))
	// Invalid bytes are kept as negative runes (-1-byte).
	for i := 0; i < len(caption); {
		r, size := utf8.DecodeRuneInString(caption[i:])
		if r == utf8.RuneError && size == 1 {
			rs = append(rs, -1-rune(caption[i]))
		} else {
			rs = append(rs, r)
		}
		i += size
	}
	lowered := make([]rune, 0, len(rs)+4)
	for i, r := range rs {
		switch {
		case r < 0:
			lowered = append(lowered, r)
		case r == 0x3a3:
			lowered = append(lowered, pyFinalSigma(rs, i))
		default:
			lowered = pyLowerRune(lowered, r)
		}
	}
	for i, r := range lowered {
		switch r {
		case '.', '!', '"', '(', ')', '*', '#', ':', ';', '~':
			lowered[i] = ' '
		}
	}
	// re.sub(r"\s{2,}", ' ', ...)
	var b strings.Builder
	b.Grow(len(caption))
	for i := 0; i < len(lowered); {
		r := lowered[i]
		if r >= 0 && pyIsSpace(r) {
			j := i + 1
			for j < len(lowered) && lowered[j] >= 0 && pyIsSpace(lowered[j]) {
				j++
			}
			if j-i >= 2 {
				b.WriteByte(' ')
			} else {
				b.WriteRune(r)
			}
			i = j
			continue
		}
		if r < 0 {
			b.WriteByte(byte(-1 - r))
		} else {
			b.WriteRune(r)
		}
		i++
	}
	s := b.String()
	s = strings.TrimRight(s, "\n")
	s = strings.Trim(s, " ")
	if maxWords > 0 {
		// caption.split(' '): words are separated by single spaces.
		n, cut := 0, -1
		for i := 0; i < len(s); i++ {
			if s[i] == ' ' {
				n++
				if n == maxWords {
					cut = i
					break
				}
			}
		}
		if cut >= 0 {
			s = s[:cut]
		}
	}
	return s
}
