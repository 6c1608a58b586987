package tokenizer

import "testing"

func TestPreCaption(t *testing.T) {
	// Expected values from salesforce/BLIP's pre_caption under Python 3.11.
	for _, c := range []struct {
		in       string
		maxWords int
		want     string
	}{
		{"A Dog.  Runs!!\n", 30, "a dog runs"},
		{"ΟΔΟΣ. ΣΑΣ'Σ AΣ:B Σ", 30, "οδος σασ'ς aσ b σ"},
		{"one two three four", 2, "one two"},
		{"a\t\tb\u3000\u3000c d\te", 30, "a b c d\te"},
		{"  (hello)  \n\n", 30, "hello"},
		{"a \n", 30, "a"},
		{"İ ẞ Ǆ", 30, "i\u0307 ß ǆ"},
		{"x\n", 30, "x"},
		{"\n x\n\n", 30, "x"},
		{"a\x1cb\x1c\x1dc", 30, "a\x1cb c"},
		{"~~~", 30, ""},
		{"a b", 1, "a"},
		{"", 30, ""},
		// Go extensions: no limit, invalid bytes kept.
		{"one two three", 0, "one two three"},
		{"one two three", -1, "one two three"},
		{"A\xffB.", 30, "a\xffb"},
	} {
		if got := PreCaption(c.in, c.maxWords); got != c.want {
			t.Errorf("PreCaption(%+q, %d) = %+q, want %+q", c.in, c.maxWords, got, c.want)
		}
	}
}
