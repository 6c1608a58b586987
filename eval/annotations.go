// Package eval is BLIP's image-text retrieval evaluation (salesforce/BLIP
// train_retrieval.py, evaluation() and itm_eval()) over the blipcuda
// library: image→text and text→image recall@1/5/10 of a Karpathy-layout
// annotation file (COCO 5k or Flickr30k 1k test, or one of your own).
//
// The procedure, to the letter of BLIP's:
//
//   - every caption is cleaned by pre_caption(caption, max_words=30); texts
//     are numbered in file order, which gives txt2img and img2txt;
//   - ITC embeddings of every image and text (the model's protocol: under
//     "blip", 35 tokens, [CLS]); sims = image_embeds · text_embedsᵀ;
//   - image→text: for each image, its k texts of highest sim are scored by
//     the ITM match logit (index 1, not the softmax; [ENC] first under
//     "blip") plus the sim; every other text scores −100. Text→image: the
//     same per text over its k images;
//   - recall as itm_eval computes it.
//
// Each (image, text) pair is scored once even when it is in both an image's
// and a text's top k (the ITM logit of a pair does not depend on which
// direction asked for it), and the pairs are grouped by image so that each
// image's cross-attention keys and values are computed once for all of its
// candidates.
//
// Options.Store (an ImageStore; `blipcuda eval --index` fills it from an
// index) supplies vectors computed before, in place of encoding the images
// it holds.
package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/blipcuda/blipcuda/tokenizer"
)

// MaxWords is the max_words BLIP's retrieval datasets give pre_caption.
const MaxWords = 30

// ErrAnnotations reports an annotation file that is not in the Karpathy
// test layout or holds something unusable.
var ErrAnnotations = errors.New("bad annotation file")

// Entry is one image of an annotation file and its captions as written.
type Entry struct {
	Image    string
	Captions []string
}

// Collection is an annotation file read for evaluation: the images, the
// cleaned texts in file order, and the maps between them.
type Collection struct {
	// Source names the file in messages.
	Source string
	// Entries are the images and their captions as written in the file.
	Entries []Entry
	// Texts are the captions after pre_caption(caption, 30), numbered in
	// file order.
	Texts []string
	// TextImage is txt2img: the image of each text.
	TextImage []int
	// ImageTexts is img2txt: the texts of each image.
	ImageTexts [][]int
}

// maxAnnotationFile bounds what ReadAnnotations reads (COCO's Karpathy
// test file is 2.2 MB).
const maxAnnotationFile = 1 << 30

// ReadAnnotations reads and checks a Karpathy-layout annotation file.
func ReadAnnotations(path string) (*Collection, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("annotation file %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("annotation file %s: %w", path, unwrapPath(err))
	}
	if st.IsDir() {
		return nil, fmt.Errorf("annotation file %s is a directory", path)
	}
	if st.Size() > maxAnnotationFile {
		return nil, fmt.Errorf("%w %s: larger than %d MiB", ErrAnnotations, path, maxAnnotationFile>>20)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("annotation file %s: %w", path, unwrapPath(err))
	}
	return ParseAnnotations(path, buf.Bytes())
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ParseAnnotations parses the Karpathy test layout: a JSON list of objects
// {"image": "val2014/COCO_val2014_….jpg", "caption": ["…", …]} (other
// members are ignored). Every entry needs an image path, unique in the
// file, and a non-empty list of captions, each a string with words left
// after BLIP's caption cleaning. Errors name the file and the entry
// (numbered from 1).
func ParseAnnotations(name string, data []byte) (*Collection, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrAnnotations, name, fmt.Sprintf(format, args...))
	}
	if !utf8.Valid(data) {
		return nil, fail("not valid UTF-8 (JSON is UTF-8)")
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line, col := position(data, se.Offset)
			return nil, fail("not JSON: line %d, column %d: %v", line, col, se)
		case errors.As(err, &te):
			return nil, fail("a JSON %s, where the Karpathy layout is a list of {\"image\": …, \"caption\": […]} objects", te.Value)
		case len(bytes.TrimSpace(data)) == 0:
			return nil, fail("empty")
		}
		return nil, fail("not JSON: %v", err)
	}
	if len(raw) == 0 {
		return nil, fail("an empty list: no images to evaluate")
	}
	c := &Collection{Source: name, Entries: make([]Entry, 0, len(raw)), ImageTexts: make([][]int, 0, len(raw))}
	seen := make(map[string]int, len(raw))
	for i, r := range raw {
		n := i + 1
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
			return nil, fail("entry %d is %s, not an object {\"image\": …, \"caption\": […]}", n, jsonKind(r))
		}
		imgRaw, ok := obj["image"]
		if !ok {
			return nil, fail("entry %d has no \"image\"", n)
		}
		var img string
		if err := json.Unmarshal(imgRaw, &img); err != nil {
			return nil, fail("entry %d: \"image\" is %s, not a string", n, jsonKind(imgRaw))
		}
		if img == "" {
			return nil, fail("entry %d: \"image\" is empty", n)
		}
		key := filepath.Clean(filepath.FromSlash(img))
		if first, dup := seen[key]; dup {
			return nil, fail("entry %d: image %q is already entry %d (each image must appear once: "+
				"its captions belong in one list)", n, img, first)
		}
		seen[key] = n
		capRaw, ok := obj["caption"]
		if !ok {
			return nil, fail("entry %d (image %q) has no \"caption\"", n, img)
		}
		var caps []json.RawMessage
		if err := json.Unmarshal(capRaw, &caps); err != nil || caps == nil {
			hint := ""
			if jsonKind(capRaw) == "a string" {
				hint = " (the Karpathy train layout has one caption per entry; evaluation reads the test layout, a list per image)"
			}
			return nil, fail("entry %d (image %q): \"caption\" is %s, not a list of strings%s", n, img, jsonKind(capRaw), hint)
		}
		if len(caps) == 0 {
			return nil, fail("entry %d (image %q): the caption list is empty", n, img)
		}
		e := Entry{Image: img, Captions: make([]string, len(caps))}
		idx := make([]int, len(caps))
		for j, cr := range caps {
			var s string
			if err := json.Unmarshal(cr, &s); err != nil {
				return nil, fail("entry %d (image %q): caption %d is %s, not a string", n, img, j+1, jsonKind(cr))
			}
			clean := tokenizer.PreCaption(s, MaxWords)
			if clean == "" {
				return nil, fail("entry %d (image %q): caption %d (%q) has no words after BLIP's caption cleaning", n, img, j+1, s)
			}
			e.Captions[j] = s
			idx[j] = len(c.Texts)
			c.Texts = append(c.Texts, clean)
			c.TextImage = append(c.TextImage, i)
		}
		c.Entries = append(c.Entries, e)
		c.ImageTexts = append(c.ImageTexts, idx)
	}
	return c, nil
}

// jsonKind names the JSON type of a value, for messages.
func jsonKind(r json.RawMessage) string {
	t := bytes.TrimSpace(r)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

// Subset returns the collection restricted to the images whose indices
// keep lists (in order), with texts renumbered; it is how images left out
// by --skip-missing drop their captions too.
func (c *Collection) Subset(keep []int) *Collection {
	out := &Collection{Source: c.Source}
	for _, i := range keep {
		e := c.Entries[i]
		idx := make([]int, 0, len(c.ImageTexts[i]))
		for _, t := range c.ImageTexts[i] {
			idx = append(idx, len(out.Texts))
			out.Texts = append(out.Texts, c.Texts[t])
			out.TextImage = append(out.TextImage, len(out.Entries))
		}
		out.Entries = append(out.Entries, e)
		out.ImageTexts = append(out.ImageTexts, idx)
	}
	return out
}

// ImagePath joins an entry's image path to the images root as BLIP's
// os.path.join does: an absolute image path stands alone.
func ImagePath(root, image string) string {
	p := filepath.FromSlash(image)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}
