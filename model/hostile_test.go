package model

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The tests below feed the loaders crafted files, each made by the test,
// and check the error and how much the load allocated.

// ptEntry is one tensor of a crafted state dict.
type ptEntry struct {
	name           string
	key            string // storage record
	numel          int64  // storage elements, as the pickle says
	offset         int64
	size, stride   []int64
	storageClassID string // FloatStorage unless set
}

// pickleInt appends a pickle integer: BININT for 32 bits, else LONG1.
func pickleInt(b []byte, v int64) []byte {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		return binary.LittleEndian.AppendUint32(append(b, 'J'), uint32(int32(v)))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0x8a, 8), uint64(v))
}

func pickleStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(append(b, 'X'), uint32(len(s)))
	return append(b, s...)
}

func pickleTuple(b []byte, v []int64) []byte {
	b = append(b, '(')
	for _, x := range v {
		b = pickleInt(b, x)
	}
	return append(b, 't')
}

// statePickle writes a torch.save-like state dict pickle (protocol 2, a
// plain dict) of the entries.
func statePickle(entries []ptEntry) []byte {
	b := []byte("\x80\x02}(")
	for _, e := range entries {
		cls := e.storageClassID
		if cls == "" {
			cls = "FloatStorage"
		}
		b = pickleStr(b, e.name)
		b = append(b, "ctorch._utils\n_rebuild_tensor_v2\n("...)
		b = append(b, '(')
		b = pickleStr(b, "storage")
		b = append(b, "ctorch\n"+cls+"\n"...)
		b = pickleStr(b, e.key)
		b = pickleStr(b, "cpu")
		b = pickleInt(b, e.numel)
		b = append(b, 't', 'Q')
		b = pickleInt(b, e.offset)
		b = pickleTuple(b, e.size)
		b = pickleTuple(b, e.stride)
		b = append(b, 0x89, '}', 't', 'R')
	}
	return append(b, 'u', '.')
}

// record is a zip entry of a crafted archive. With declared > 0 the
// directory claims that size whatever the data is (a stored entry).
type record struct {
	name     string
	data     []byte
	deflate  bool
	declared uint64
}

func writeZip(t *testing.T, path string, recs []record) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, r := range recs {
		var err error
		switch {
		case r.declared > 0:
			var w interface{ Write([]byte) (int, error) }
			w, err = zw.CreateRaw(&zip.FileHeader{Name: r.name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(r.data),
				CompressedSize64: r.declared, UncompressedSize64: r.declared})
			if err == nil {
				_, err = w.Write(r.data)
			}
		default:
			m := zip.Store
			if r.deflate {
				m = zip.Deflate
			}
			var w interface{ Write([]byte) (int, error) }
			w, err = zw.CreateHeader(&zip.FileHeader{Name: r.name, Method: m})
			if err == nil {
				_, err = w.Write(r.data)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// honestEntries returns one entry and one zero-filled record per
// parameter of cfg: a checkpoint that loads.
func honestEntries(cfg Config) ([]ptEntry, []record) {
	var es []ptEntry
	var rs []record
	for i, p := range cfg.Params() {
		key := "s" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		size := make([]int64, len(p.Shape))
		stride := make([]int64, len(p.Shape))
		st := int64(1)
		for j := len(p.Shape) - 1; j >= 0; j-- {
			size[j], stride[j] = int64(p.Shape[j]), st
			st *= int64(p.Shape[j])
		}
		es = append(es, ptEntry{name: p.Name, key: key, numel: int64(p.Len()), size: size, stride: stride})
		rs = append(rs, record{name: "archive/data/" + key, data: make([]byte, 4*p.Len())})
	}
	return es, rs
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// loadBounded loads a crafted checkpoint, requires an ErrWeights error
// saying each of want and no recovered panic, and that the load allocated
// at most limit bytes.
func loadBounded(t *testing.T, path string, cfg Config, limit uint64, want ...string) {
	t.Helper()
	var err error
	n := allocated(func() {
		var w *Weights
		if w, err = OpenWeightsFile(path, cfg); err == nil {
			w.Close()
		}
	})
	if err == nil {
		t.Fatalf("%s loaded", path)
	}
	if !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want ErrWeights naming %s", err, path)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want it to say %q", err, w)
		}
	}
	var pp *parsePanic
	if errors.As(err, &pp) || strings.Contains(err.Error(), "runtime error") {
		t.Errorf("a recovered panic reached the error: %v (%v)", err, pp)
	}
	if n > limit {
		t.Errorf("loading allocated %d bytes, want ≤ %d", n, limit)
	}
}

func TestPyTorchCraftedHonest(t *testing.T) {
	cfg := tinyConfig(t, "tiny-large")
	es, rs := honestEntries(cfg)
	p := filepath.Join(t.TempDir(), "honest.bin")
	writeZip(t, p, append([]record{{name: "archive/data.pkl", data: statePickle(es)}}, rs...))
	w, err := LoadPyTorch(p, cfg)
	if err != nil {
		t.Fatalf("the crafted honest checkpoint does not load: %v", err)
	}
	w.Close()
}

// TestPyTorchHostileSizes: the sizes a checkpoint declares (zip directory,
// pickle, deflate) cannot make the loader allocate more than the
// configuration's parameters, nor overflow.
func TestPyTorchHostileSizes(t *testing.T) {
	cfg := tinyConfig(t, "tiny-large")
	params := cfg.NumParams()
	es, rs := honestEntries(cfg)
	// Every legitimate load allocates about 4 bytes per parameter (plus
	// the zip directory and the pickle); allow 4× that and a little.
	limit := uint64(16*params + 8<<20)
	dir := t.TempDir()
	pkl := func(mod func(e []ptEntry)) []byte {
		e := append([]ptEntry(nil), es...)
		mod(e)
		return statePickle(e)
	}
	first := func(rs []record, r record) []record {
		out := append([]record(nil), rs...)
		out[0] = r
		return out
	}
	huge := int64(1) << 38 // 1 TiB of float32
	cases := []struct {
		name string
		recs []record
		want []string
	}{
		// The zip directory claims a 1 TiB storage and the pickle agrees.
		{"terabyte storage", append([]record{{name: "archive/data.pkl", data: pkl(func(e []ptEntry) { e[0].numel = huge })}},
			first(rs, record{name: rs[0].name, data: make([]byte, 64), declared: uint64(4 * huge)})...),
			[]string{"274877906944 elements", "parameters of the whole configuration"}},
		// numel·elemSize wraps to 0 in 64 bits: an empty record agreed.
		{"numel overflow", append([]record{{name: "archive/data.pkl", data: pkl(func(e []ptEntry) { e[0].numel = 1 << 62 })}},
			first(rs, record{name: rs[0].name})...),
			[]string{"elements, more than"}},
		// offset+numel overflows to a negative number.
		{"offset overflow", append([]record{{name: "archive/data.pkl", data: pkl(func(e []ptEntry) { e[0].offset = math.MaxInt64 - 2 })}}, rs...),
			[]string{"offset 9223372036854775805"}},
		// A stored record whose compressed and uncompressed sizes differ.
		{"stored size mismatch", append([]record{{name: "archive/data.pkl", data: statePickle(es)}},
			first(rs, record{name: rs[0].name, data: []byte{}, declared: 0})...),
			[]string{"record holds 0 bytes"}},
		// An honest deflate bomb: a storage of zeros 10× the model, 20 KB
		// deflated.
		{"deflate bomb", append([]record{{name: "archive/data.pkl", data: pkl(func(e []ptEntry) { e[0].numel = 10 * params })}},
			first(rs, record{name: rs[0].name, data: make([]byte, 40*params), deflate: true})...),
			[]string{"more than the " + strconv.FormatInt(params, 10) + " parameters"}},
		// A size tuple whose product overflows.
		{"size product overflow", append([]record{{name: "archive/data.pkl", data: pkl(func(e []ptEntry) {
			e[0].size, e[0].stride = []int64{1 << 31, 1 << 31, 1 << 31, 4}, []int64{1 << 40, 1 << 33, 4, 1}
		})}}, rs...), []string{"too large"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".bin")
			writeZip(t, p, c.recs)
			loadBounded(t, p, cfg, limit, c.want...)
		})
	}
}

// TestPyTorchDeflateRatio: a deflated record cannot declare more than
// deflate can expand.
func TestPyTorchDeflateRatio(t *testing.T) {
	cfg := tinyConfig(t, "tiny-large")
	// 1 MiB declared in 10 bytes exceeds deflate's 1032:1.
	es := []ptEntry{{name: "itm_head.bias", key: "0", numel: 1 << 18, size: []int64{2}, stride: []int64{1}}}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(statePickle(es))
	raw, err := zw.CreateRaw(&zip.FileHeader{Name: "archive/data/0", Method: zip.Deflate, CompressedSize64: 10, UncompressedSize64: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	raw.Write(make([]byte, 10))
	zw.Close()
	p := filepath.Join(t.TempDir(), "ratio.bin")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	loadBounded(t, p, cfg, 8<<20, "more than deflate can expand")
}

// TestPicklesFloods: opcode floods are refused by the scan, before gopickle
// builds anything.
func TestPickleFloods(t *testing.T) {
	cfg := tinyConfig(t, "tiny-large")
	dir := t.TempDir()
	cases := []struct {
		name string
		pkl  []byte
		want string
	}{
		{"marks", append(bytes.Repeat([]byte{'('}, 200_000), '.'), "MARKs"},
		{"stack", append(bytes.Repeat([]byte{'N'}, 200_000), '.'), "stack exceeds"},
		{"underflow", []byte("\x80\x02a."), "needs 2 items"},
		{"odd dict", []byte("\x80\x02(Nd."), "not key-value pairs"},
		{"empty long", []byte("\x80\x02\x8a\x00."), "LONG1"},
		{"too large", append(bytes.Repeat([]byte{'N', '0'}, 600_000), 'N', '.'), "more than the"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".bin")
			writeZip(t, p, []record{{name: "archive/data.pkl", data: c.pkl, deflate: true}})
			loadBounded(t, p, cfg, 8<<20, c.want)
		})
	}
}

// TestConfigTotals: configurations whose products explode are refused by
// Validate, naming the field, before anything is allocated.
func TestConfigTotals(t *testing.T) {
	cases := []struct {
		doc  string
		want []string
	}{
		{`{"text_config":{"num_hidden_layers":1048576}}`, []string{"text_config.num_hidden_layers = 1048576"}},
		{`{"vision_config":{"image_size":4096,"patch_size":16}}`, []string{"vision attention scores", "image_size 4096"}},
		{`{"vision_config":{"image_size":4096,"patch_size":16,"hidden_size":16,"num_attention_heads":1,"intermediate_size":16}}`, []string{"vision attention scores"}},
		{`{"text_config":{"vocab_size":1000000,"hidden_size":16384,"num_attention_heads":16}}`, []string{"parameters", "more than the"}},
		{`{"text_config":{"max_position_embeddings":65536}}`, []string{"text attention scores"}},
		{`{"text_config":{"bos_token_id":40000}}`, []string{"bos_token_id = 40000"}},
		{`[1,2,3]`, []string{"JSON array, not an object"}},
		{`{"vision_config":{"hidden_size":"768"}}`, []string{"hidden_size is a JSON string, want a number"}},
	}
	for _, c := range cases {
		var err error
		n := allocated(func() { _, err = ParseConfig([]byte(c.doc)) })
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", c.doc, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err = %v, want it to say %q", c.doc, err, w)
			}
		}
		if strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "model.") {
			t.Errorf("%s: err = %v names a Go type", c.doc, err)
		}
		if n > 1<<20 {
			t.Errorf("%s: parsing allocated %d bytes", c.doc, n)
		}
	}
	for _, cfg := range []Config{BaseConfig(), LargeConfig(), tinyConfig(t, "tiny-base"), tinyConfig(t, "tiny-large")} {
		var n int64
		for _, p := range cfg.Params() {
			n += int64(p.Len())
		}
		if got := cfg.NumParams(); got != n {
			t.Errorf("NumParams = %d, Params add up to %d", got, n)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("a real configuration is refused: %v", err)
		}
	}
}

// TestWeightsSmallerThanConfig: a configuration describing far more than
// the weights file holds is refused from the file's header, before the
// tensor list proportional to the configuration is built.
func TestWeightsSmallerThanConfig(t *testing.T) {
	big := DefaultConfig()
	big.Text.NumHiddenLayers = 40
	big.Vision.NumHiddenLayers = 40
	if err := big.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(fixtureDir, "tiny-base", SafetensorsFile), filepath.Join(fixtureDir, "tiny-large", PyTorchFile)} {
		loadBounded(t, f, big, 16<<20, "describes "+strconv.FormatInt(big.NumParams(), 10)+" parameters")
	}
}

// TestNonFiniteWeights: NaN and infinite weights are refused at load,
// naming the tensor.
func TestNonFiniteWeights(t *testing.T) {
	cfg := tinyConfig(t, "tiny-base")
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		views := fullViews(t, cfg)
		data := make([]float32, 2)
		data[1] = v
		views["itm_head.bias"] = f32View(t, data, []int{2})
		p := filepath.Join(t.TempDir(), "nan.safetensors")
		writeSafetensors(t, p, views)
		loadBounded(t, p, cfg, 16<<20, "tensor itm_head.bias holds", "index 1", "corrupt")
	}
}

// TestWeightsMetadataBounded: a zip directory of many entries and a huge
// safetensors header are refused from their declared sizes, before they
// are parsed.
func TestWeightsMetadataBounded(t *testing.T) {
	dir := t.TempDir()
	var recs []record
	for i := 0; i < 20_000; i++ {
		recs = append(recs, record{name: "archive/data/e" + strconv.Itoa(i)})
	}
	p := filepath.Join(dir, "entries.bin")
	writeZip(t, p, recs)
	loadBounded(t, p, tinyConfig(t, "tiny-large"), 2<<20, "declares 20000 entries")

	cfg := tinyConfig(t, "tiny-base")
	hdr := `{"__metadata__":{"x":"` + strings.Repeat("a", 4<<20) + `"}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	p = filepath.Join(dir, "header.safetensors")
	if err := os.WriteFile(p, append(b, hdr...), 0o644); err != nil {
		t.Fatal(err)
	}
	loadBounded(t, p, cfg, 2<<20, "safetensors header declares "+strconv.Itoa(len(hdr))+" bytes")
}
