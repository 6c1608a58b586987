package tokenizer

import "testing"

func benchEncode(b *testing.B, compat Compat, text string) {
	tok, _, _ := tokenizers(b)
	tok = tok.WithCompat(compat)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Encode(text, 35); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode encodes a typical COCO caption.
func BenchmarkEncode(b *testing.B) {
	const caption = "A man riding a wave on top of a surfboard."
	b.Run("fast", func(b *testing.B) { benchEncode(b, CompatFast, caption) })
	b.Run("slow", func(b *testing.B) { benchEncode(b, CompatSlow, caption) })
	const accented = "Un homme âgé fait du surf sur une vague à Biarritz, près du café."
	b.Run("fast-accents", func(b *testing.B) { benchEncode(b, CompatFast, accented) })
	b.Run("slow-accents", func(b *testing.B) { benchEncode(b, CompatSlow, accented) })
}

// BenchmarkEncodeBatch encodes and pads 32 captions.
func BenchmarkEncodeBatch(b *testing.B) {
	tok, _, _ := tokenizers(b)
	fx := loadFixture(b)
	texts := make([]string, 0, 32)
	for _, c := range fx.Captions[:32] {
		texts = append(texts, c.Text)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.EncodeBatch(texts, 35); err != nil {
			b.Fatal(err)
		}
	}
}
