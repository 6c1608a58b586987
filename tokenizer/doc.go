// Package tokenizer is the BERT uncased WordPiece tokenizer of the BLIP
// image-text matching models (bert-base-uncased vocabulary, 30522 entries),
// written to give exactly the ids of Hugging Face transformers.
//
// Two implementations exist in transformers and they disagree on rare
// characters, so a [Tokenizer] reproduces one of them, chosen by [Compat]:
//
//   - [CompatFast] (the default) reproduces BertTokenizerFast, i.e. the Rust
//     tokenizers library, which is what BlipProcessor and AutoTokenizer load
//     for the Salesforce/blip-itm-* checkpoints. Its character classes come
//     from tables read back from tokenizers 0.22.2 (tables_fast.go), so the
//     result does not depend on Go's Unicode version.
//   - [CompatSlow] reproduces the Python BertTokenizer, used by salesforce/BLIP
//     and LAVIS. Its character classes are Python's unicodedata categories;
//     the package uses Go's Unicode 15.0 tables, which are those of Python
//     3.12 (Python 3.11 has Unicode 14.0 and drops the characters added in
//     15.0 as unassigned).
//
// The two differ only on characters that are unassigned or new in recent
// Unicode versions (tokenizers classifies punctuation, format characters and
// nonspacing marks with Unicode 8.0-era data, lower-cases with Unicode 16.0
// and keeps unassigned code points, which the Python code drops), and on CJK
// Extension E code points
// U+2B820–U+2B91F, which tokenizers does not space (a typo in its range).
// testdata/tokenizer/slow_fast_diffs.txt lists the fixture captions where
// they differ.
//
// The pipeline is BERT's: added tokens such as "[MASK]" or BLIP's "[DEC]" and
// "[ENC]" are matched in the raw text; the rest is cleaned (control
// characters, U+0000 and U+FFFD removed, whitespace mapped to a space), CJK
// ideographs are surrounded by spaces, the text is lower-cased and its
// accents stripped (NFD, then nonspacing marks removed), split on whitespace
// and punctuation, and every word is split into word pieces greedily, longest
// match first, with the "##" continuation prefix; a word longer than 100
// characters, or one that cannot be split, becomes "[UNK]". [Tokenizer.Encode]
// adds "[CLS]" and "[SEP]" and truncates; [Tokenizer.EncodeBatch] also pads.
//
// [PreCaption] is BLIP's own caption cleaning (salesforce/BLIP
// data/utils.py pre_caption), which the original retrieval evaluation applies
// before tokenizing with max_length 35; Hugging Face's BlipProcessor does not.
//
// The ids [DecID] and [EncID] exist only as rows of BLIP's text embedding
// table: the Hub tokenizer files do not contain "[DEC]" or "[ENC]".
package tokenizer
