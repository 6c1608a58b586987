package blipcuda

import (
	"github.com/blipcuda/blipcuda/model"
	"slices"

	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blipcuda/blipcuda/cuda"
	fx "github.com/blipcuda/blipcuda/internal/fixtures"
)

// End-to-end parity with transformers: files on disk → tokenizer, image
// preprocessing, protocol → scores, compared with what transformers computed
// from the same files (testdata/models/make_fixtures.py). Token ids must be
// identical; scores within 1e-4 absolute (float32 on both sides, differing
// only in summation order; observed differences are ~1e-6).
const parityTol = 1e-4

func fixtures(t testing.TB) map[string]fx.Model {
	t.Helper()
	f, err := fx.Load("testdata/models/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	return f.Models
}

func loadTiny(t testing.TB, name string, opts ...Option) *Model {
	t.Helper()
	m, err := Load(context.Background(), filepath.Join("testdata", "models", name), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func images(t testing.TB, m *Model, names []string) []*Image {
	t.Helper()
	var out []*Image
	for _, n := range names {
		im, err := m.LoadImage(filepath.Join("testdata", "models", "images", n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, im)
	}
	return out
}

func closeTo(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(float64(got[i] - want[i]))
		if !(d <= parityTol) {
			t.Errorf("%s[%d] = %g, transformers %g (|diff| %.2g > %g)", what, i, got[i], want[i], d, parityTol)
			return
		}
		worst = math.Max(worst, d)
	}
	t.Logf("%s: max |diff| %.2g", what, worst)
}

func TestMatchParity(t *testing.T) { matchParity(t, "cpu") }

// matchParity checks Match and EncodeTexts on device against transformers.
func matchParity(t *testing.T, device string) {
	fx := fixtures(t)
	for _, name := range []string{"tiny-base", "tiny-large"} {
		for _, proto := range []Protocol{ProtocolHF, ProtocolBLIP} {
			t.Run(name+"/"+string(proto), func(t *testing.T) {
				f := fx[name]
				want := f.HF
				if proto == ProtocolBLIP {
					want = f.BLIP
				}
				m := loadTiny(t, name, WithDevice(device), WithProtocol(proto), WithTextBatch(3), WithImageBatch(2))
				if d := m.Info().Device; d != device {
					t.Fatalf("Info().Device = %q, want %s", d, device)
				}
				s, err := m.Match(context.Background(), images(t, m, f.Images), f.Inputs)
				if err != nil {
					t.Fatal(err)
				}
				var logits, prob, itc []float32
				for i := range s.ITMLogits {
					for j := range s.ITMLogits[i] {
						logits = append(logits, s.ITMLogits[i][j][0], s.ITMLogits[i][j][1])
						prob = append(prob, s.ITMProb[i][j])
						itc = append(itc, s.ITC[i][j])
					}
				}
				closeTo(t, "ITM logits", logits, want.ITMLogits)
				closeTo(t, "P(match)", prob, want.ITMProb)
				closeTo(t, "ITC", itc, want.ITC)

				enc, err := m.EncodeTexts(context.Background(), f.Inputs)
				if err != nil {
					t.Fatal(err)
				}
				var emb []float32
				for j, e := range enc {
					if !slices.Equal(e.Tokens, want.InputIDs[j]) {
						t.Errorf("text %d tokens %v, transformers %v", j, e.Tokens, want.InputIDs[j])
					}
					emb = append(emb, e.Embedding...)
				}
				closeTo(t, "text embeddings", emb, want.TextEmbeds)
				// The long caption: 37 words → cut to 30 by pre_caption (blip);
				// its hf token count fits in 512.
				last := len(f.Inputs) - 1
				if got := s.Truncated[last]; got != (proto == ProtocolBLIP) {
					t.Errorf("long caption Truncated = %v under %s", got, proto)
				}
			})
		}
	}
}

func TestMatchFeaturesEqualsMatch(t *testing.T) {
	f := fixtures(t)["tiny-large"]
	m := loadTiny(t, "tiny-large")
	ctx := context.Background()
	imgs := images(t, m, f.Images)
	direct, err := m.Match(ctx, imgs, f.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := m.EncodeImages(ctx, imgs, true)
	if err != nil {
		t.Fatal(err)
	}
	if enc[0].Tokens != 577 || enc[0].Width != 24 || len(enc[0].Features) != 577*24 || len(enc[0].Embedding) != 256 {
		t.Fatalf("encoding shape %d×%d, %d features, %d-d embedding", enc[0].Tokens, enc[0].Width, len(enc[0].Features), len(enc[0].Embedding))
	}
	cached, err := m.MatchFeatures(ctx, enc, f.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range direct.ITMLogits {
		for j := range direct.ITMLogits[i] {
			if direct.ITMLogits[i][j] != cached.ITMLogits[i][j] || direct.ITC[i][j] != cached.ITC[i][j] {
				t.Fatalf("[%d][%d]: Match %v/%v, MatchFeatures %v/%v", i, j,
					direct.ITMLogits[i][j], direct.ITC[i][j], cached.ITMLogits[i][j], cached.ITC[i][j])
			}
		}
	}
	// Features without embeddings: ITM only.
	for i := range enc {
		enc[i].Embedding = nil
	}
	itmOnly, err := m.MatchFeatures(ctx, enc, f.Inputs[:2])
	if err != nil {
		t.Fatal(err)
	}
	if itmOnly.ITC != nil || itmOnly.ITMProb[2][1] != direct.ITMProb[2][1] {
		t.Errorf("ITM-only MatchFeatures: ITC %v, prob %v want %v", itmOnly.ITC, itmOnly.ITMProb[2][1], direct.ITMProb[2][1])
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	m := loadTiny(t, "tiny-base")
	img, err := m.LoadImage("testdata/models/images/scene.png")
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]struct {
		text string
		want error
	}{
		"empty":            {"", ErrEmptyText},
		"whitespace":       {" \t\n\u3000", ErrEmptyText},
		"only punctuation": {"!!! ...", ErrEmptyText}, // nothing left after pre_caption
		"invalid UTF-8":    {"a dog \xff\xfe", ErrInvalidText},
	}
	for name, c := range texts {
		t.Run(name, func(t *testing.T) {
			_, err := m.Match(ctx, []*Image{img}, []string{"a cat", c.text})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "text 1") {
				t.Errorf("err = %v, want %v naming text 1", err, c.want)
			}
		})
	}
	if _, err := m.Match(ctx, []*Image{img}, nil); err == nil {
		t.Error("Match accepted no texts")
	}
	if _, err := m.Match(ctx, nil, []string{"a cat"}); err == nil {
		t.Error("Match accepted no images")
	}
	for _, p := range []string{"testdata/models/images/none.png", "testdata/models/expected.json", "testdata/images/bad_truncated.png"} {
		if _, err := m.LoadImage(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadImage(%s) err = %v, want an error naming it", p, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Match(cctx, []*Image{img}, []string{"a cat"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Match: err = %v", err)
	}
	m.Close()
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Match(ctx, []*Image{img}, []string{"a cat"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Match after Close: err = %v", err)
	}
}

func TestHFProtocolTruncatesAt512(t *testing.T) {
	m := loadTiny(t, "tiny-base", WithProtocol(ProtocolHF))
	long := strings.Repeat("dog ", 600)
	enc, err := m.EncodeTexts(context.Background(), []string{long})
	if err != nil {
		t.Fatal(err)
	}
	if !enc[0].Truncated || len(enc[0].Tokens) != 512 || enc[0].Tokens[511] != 102 {
		t.Errorf("600 words: truncated=%v, %d tokens", enc[0].Truncated, len(enc[0].Tokens))
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	cases := map[string]error{
		"base-cocoa":                     ErrUnknownModel,
		"":                               ErrUnknownModel,
		"testdata/models/expected.json":  ErrBadCheckpoint,
		"testdata":                       ErrBadCheckpoint, // a directory without config.json
		"base-coco":                      ErrNotCached,
		"Salesforce/blip-itm-large-coco": ErrNotCached,
	}
	for name, want := range cases {
		if _, err := Load(ctx, name); !errors.Is(err, want) {
			t.Errorf("Load(%q) err = %v, want %v", name, err, want)
		}
	}
	if cuda.Available() != nil {
		// No GPU (and not the emulated one): --device cuda is a clear error.
		if _, err := Load(ctx, "testdata/models/tiny-base", WithDevice("cuda")); !errors.Is(err, ErrUnavailable) {
			t.Errorf("cuda: err = %v", err)
		}
	}
	if _, err := Load(ctx, "testdata/models/tiny-base", WithPrecision("float16"), WithDevice("cpu")); !errors.Is(err, ErrUnavailable) ||
		!strings.Contains(err.Error(), "CUDA backend") {
		t.Errorf("float16 on the CPU: err = %v", err)
	}
	if cuda.Available() != nil {
		// auto without a CUDA device: an error, not float32 in disguise.
		if _, err := Load(ctx, "testdata/models/tiny-base", WithPrecision("bfloat16")); !errors.Is(err, ErrUnavailable) ||
			!strings.Contains(err.Error(), "needs a CUDA device") {
			t.Errorf("bfloat16, auto, no CUDA: err = %v", err)
		}
	}
	if _, err := Load(ctx, "testdata/models/tiny-base", WithProtocol("lavis")); err == nil {
		t.Error("unknown protocol accepted")
	}
	// A checkpoint directory missing its weights.
	dir := t.TempDir()
	for _, f := range []string{"config.json", "vocab.txt"} {
		b, _ := os.ReadFile(filepath.Join("testdata/models/tiny-large", f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	if _, err := Load(ctx, dir); err == nil || !strings.Contains(err.Error(), "neither model.safetensors nor pytorch_model.bin") {
		t.Errorf("no weights: err = %v", err)
	}
	os.Remove(filepath.Join(dir, "vocab.txt"))
	if _, err := Load(ctx, dir); err == nil {
		t.Error("no vocabulary: no error")
	}
}

// TestLoadFromHubCache: a family name resolves through a Hugging Face cache
// laid out as huggingface_hub writes it.
func TestLoadFromHubCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	commit := "0123456789abcdef0123456789abcdef01234567"
	repo := filepath.Join(cache, "models--Salesforce--blip-itm-base-coco")
	snap := filepath.Join(repo, "snapshots", commit)
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(filepath.Join(repo, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644)
	src := "testdata/models/tiny-base"
	entries, _ := os.ReadDir(src)
	for i, e := range entries {
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		blob := filepath.Join(repo, "blobs", strings.Repeat("ab", 20)+string(rune('a'+i)))
		os.WriteFile(blob, b, 0o644)
		if err := os.Symlink(filepath.Join("..", "..", "blobs", filepath.Base(blob)), filepath.Join(snap, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Load(context.Background(), "base-coco")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info().Dir != snap || m.Info().Config.Vision.HiddenSize != 16 {
		t.Errorf("loaded %+v", m.Info())
	}
}

// TestBatchingIsExact: scores do not depend on how texts are batched (one
// at a time, in threes, all together, in length order, split where padding
// would grow): padding keys get exactly zero weight and rows are computed
// independently.
func TestBatchingIsExact(t *testing.T) {
	f := fixtures(t)["tiny-large"]
	ctx := context.Background()
	texts := append([]string(nil), f.Inputs...)
	words := strings.Fields("a small brown dog runs across the wet sand while two children fly a red kite")
	for i := range 40 {
		texts = append(texts, strings.Join(words[:3+i%14], " "))
	}
	var ref *Scores
	for _, size := range []int{1, 3, 64} {
		m := loadTiny(t, "tiny-large", WithTextBatch(size), WithProtocol(ProtocolHF))
		if size == 64 {
			prep, err := m.prepare(texts)
			if err != nil {
				t.Fatal(err)
			}
			batches := 0
			if err := m.forTextBatches(prep, func(p prepared) []int32 { return p.itm }, func([]int, model.TextBatch) error { batches++; return nil }); err != nil {
				t.Fatal(err)
			}
			if batches < 2 {
				t.Fatalf("%d texts in %d batch: the padding split is not exercised", len(texts), batches)
			}
		}
		s, err := m.Match(ctx, images(t, m, f.Images[:1]), texts)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = s
			continue
		}
		for j := range texts {
			if s.ITMLogits[0][j] != ref.ITMLogits[0][j] || s.ITC[0][j] != ref.ITC[0][j] {
				t.Errorf("text batch %d, text %d: ITM %v ITC %v; one at a time: %v %v",
					size, j, s.ITMLogits[0][j], s.ITC[0][j], ref.ITMLogits[0][j], ref.ITC[0][j])
			}
		}
	}
}

// TestTextBatches: batches cover every text once, in order, hold at most the
// batch size, and split early only past splitMin texts, where the padding
// would pass 1/splitWaste of the batch's tokens.
func TestTextBatches(t *testing.T) {
	var lens []int
	for l := 10; l <= 20; l++ {
		for range 23 {
			lens = append(lens, l)
		}
	}
	for _, max := range []int{1, 3, 14, 64, 256, 1000} {
		got := textBatches(lens, max)
		next, padded, real := 0, 0, 0
		for _, r := range got {
			n := r[1] - r[0]
			if r[0] != next || n < 1 || n > max {
				t.Fatalf("max %d: batch %v after %d", max, r, next)
			}
			next = r[1]
			padded += n * lens[r[1]-1]
			for _, l := range lens[r[0]:r[1]] {
				real += l
			}
			if r[1] < len(lens) && n < min(max, splitMin) {
				t.Errorf("max %d: batch %v of %d texts closed early", max, r, n)
			}
		}
		if next != len(lens) {
			t.Fatalf("max %d: batches end at %d of %d", max, next, len(lens))
		}
		t.Logf("max %d: %d batches, padding %.1f%% of %d tokens", max, len(got), 100*float64(padded-real)/float64(padded), padded)
		if max >= 64 && float64(padded-real) > float64(padded)/splitWaste {
			t.Errorf("max %d: padding %d of %d tokens", max, padded-real, padded)
		}
	}
	if got := textBatches([]int{5, 6, 7}, 16); len(got) != 1 {
		t.Errorf("3 texts: %v, want one batch", got)
	}
	if got := textBatches(nil, 16); len(got) != 0 {
		t.Errorf("no texts: %v", got)
	}
}

func TestWithProgress(t *testing.T) {
	var got []Progress
	m := loadTiny(t, "tiny-base", WithImageBatch(2), WithProgress(func(p Progress) { got = append(got, p) }))
	ctx := context.Background()
	ims := images(t, m, []string{"scene.png", "scene.png", "scene.png"})
	if _, err := m.Match(ctx, ims, []string{"a dog", "a cat"}); err != nil {
		t.Fatal(err)
	}
	if want := []Progress{{1, 3}, {2, 3}, {3, 3}}; !slices.Equal(got, want) {
		t.Errorf("Match progress %v, want %v", got, want)
	}
	got = nil
	enc, err := m.EncodeImages(ctx, ims, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Progress{{2, 3}, {3, 3}}; !slices.Equal(got, want) {
		t.Errorf("EncodeImages progress %v, want %v (per batch of 2)", got, want)
	}
	got = nil
	if _, err := m.MatchFeatures(ctx, enc[:2], []string{"a dog"}); err != nil {
		t.Fatal(err)
	}
	if want := []Progress{{1, 2}, {2, 2}}; !slices.Equal(got, want) {
		t.Errorf("MatchFeatures progress %v, want %v", got, want)
	}
}
