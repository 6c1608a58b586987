package model

import (
	"archive/zip"
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

// The fuzz targets run on a micro configuration (54 tensors of a few
// values each) so that seeds are small and every execution is fast. Each
// fails on a recovered panic (every malformed input must be refused by a
// check, not by the runtime) and on an execution that allocates more than
// fuzzAllocLimit.

const fuzzAllocLimit = 64 << 20

func microConfig() Config {
	c := DefaultConfig()
	c.Vision = VisionConfig{HiddenSize: 2, IntermediateSize: 2, NumHiddenLayers: 1, NumAttentionHeads: 1,
		ImageSize: 2, PatchSize: 1, LayerNormEps: 1e-5, HiddenAct: "gelu"}
	c.Text.VocabSize, c.Text.HiddenSize, c.Text.IntermediateSize = 4, 2, 2
	c.Text.NumHiddenLayers, c.Text.NumAttentionHeads, c.Text.MaxPositionEmbeddings = 1, 1, 4
	c.Text.PadTokenID, c.Text.BosTokenID, c.Text.SepTokenID = 0, 1, 2
	c.Text.EncoderHiddenSize = c.Vision.HiddenSize
	c.ImageTextHiddenSize = 2
	return c
}

// checkFuzzLoad runs load, measuring its allocations, and fails on a
// recovered panic or an allocation beyond the bound.
func checkFuzzLoad(t *testing.T, load func() (*Weights, error)) {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	w, err := load()
	runtime.ReadMemStats(&b)
	if err == nil {
		w.Close()
	}
	var pp *parsePanic
	if errors.As(err, &pp) {
		t.Fatalf("recovered panic: %v (%v)", pp.value, err)
	}
	if err != nil && !errors.Is(err, ErrWeights) {
		t.Fatalf("error not wrapping ErrWeights: %v", err)
	}
	if n := b.TotalAlloc - a.TotalAlloc; n > fuzzAllocLimit {
		t.Fatalf("allocated %d bytes, bound %d", n, fuzzAllocLimit)
	}
}

// microArchive builds a checkpoint of the micro configuration whose first
// tensor's storage reference, view and record come from the fuzzer: the
// sizes a zip directory declares, its compression method, the pickle's
// element count, offset, size and stride. The other tensors are honest.
func microArchive(numel, offset, size0, stride0 int64, declared uint64, method uint16, data []byte) []byte {
	cfg := microConfig()
	es, rs := honestEntries(cfg)
	es[0].numel, es[0].offset = numel, offset
	if len(es[0].size) > 0 {
		es[0].size[0], es[0].stride[0] = size0, stride0
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(statePickle(es))
	raw, err := zw.CreateRaw(&zip.FileHeader{Name: rs[0].name, Method: method, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(len(data)), UncompressedSize64: declared})
	if err != nil {
		return nil
	}
	raw.Write(data)
	for _, r := range rs[1:] {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: r.name, Method: zip.Store})
		w.Write(r.data)
	}
	zw.Close()
	return buf.Bytes()
}

func FuzzLoadPyTorch(f *testing.F) {
	cfg := microConfig()
	p := cfg.Params()[0] // vision_model.embeddings.class_embedding [1 1 2]
	n := int64(p.Len())
	f.Add(n, int64(0), int64(1), int64(2), uint64(4*n), uint16(zip.Store), make([]byte, 4*n))
	f.Add(n, int64(0), int64(1), int64(2), uint64(4*n), uint16(zip.Deflate), []byte{0x63, 0x40, 0x05, 0x00}) // 8 zero bytes deflated
	f.Add(int64(1)<<38, int64(0), int64(1), int64(2), uint64(1)<<40, uint16(zip.Store), make([]byte, 8))
	f.Add(n, int64(1)<<62, int64(1), int64(2), uint64(4*n), uint16(zip.Store), make([]byte, 4*n))
	f.Add(int64(1)<<62, int64(0), int64(1), int64(2), uint64(0), uint16(zip.Store), []byte{})
	f.Fuzz(func(t *testing.T, numel, offset, size0, stride0 int64, declared uint64, method uint16, data []byte) {
		b := microArchive(numel, offset, size0, stride0, declared, method, data)
		if b == nil {
			return
		}
		checkFuzzLoad(t, func() (*Weights, error) {
			zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return nil, ErrWeights
			}
			return loadPyTorchZip("fuzz.bin", zr, cfg)
		})
	})
}

// FuzzPyTorchArchive mutates a whole small archive: the zip directory's
// sizes, offsets and methods, and the pickle.
func FuzzPyTorchArchive(f *testing.F) {
	cfg := microConfig()
	// Small seeds (a 1 KB archive of one tensor): the fuzzer minimises
	// every new input, and a seed of the whole micro checkpoint (9 KB)
	// would spend its time there. FuzzLoadPyTorch covers full loads.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(statePickle([]ptEntry{{name: "x", key: "0", numel: 2, size: []int64{2}, stride: []int64{1}}}))
	w, _ = zw.Create("archive/data/0")
	w.Write(make([]byte, 8))
	zw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFuzzLoad(t, func() (*Weights, error) {
			zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return nil, ErrWeights
			}
			return loadPyTorchZip("fuzz.bin", zr, cfg)
		})
	})
}

// microSafetensors returns a safetensors file holding the micro
// configuration's tensors, all zero.
func microSafetensors(tb testing.TB) []byte {
	views := map[string]safetensors.TensorView{}
	for _, p := range microConfig().Params() {
		shape := make([]uint64, len(p.Shape))
		for i, d := range p.Shape {
			shape[i] = uint64(d)
		}
		v, err := safetensors.NewTensorView(safetensors.F32, shape, make([]byte, 4*p.Len()))
		if err != nil {
			tb.Fatal(err)
		}
		views[p.Name] = v
	}
	var buf bytes.Buffer
	if err := safetensors.SerializeToWriter(views, nil, io.Writer(&buf)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzParseSafetensors(f *testing.F) {
	// Small seeds, for the same reason as FuzzPyTorchArchive: a header of
	// one tensor in each float dtype, and a forged shape.
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16} {
		v, err := safetensors.NewTensorView(dt, []uint64{2}, make([]byte, 2*dt.Size()))
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		if err := safetensors.SerializeToWriter(map[string]safetensors.TensorView{"itm_head.bias": v}, nil, &buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{})
	f.Add([]byte("\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776],\"data_offsets\":[0,4]}}    "))
	cfg := microConfig()
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFuzzLoad(t, func() (*Weights, error) { return ParseSafetensors("fuzz", b, cfg) })
	})
}

func TestMicroConfigLoads(t *testing.T) {
	cfg := microConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w, err := ParseSafetensors("micro", microSafetensors(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	b := microArchive(2, 0, 1, 2, 8, zip.Store, make([]byte, 8))
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if w, err = loadPyTorchZip("micro.bin", zr, cfg); err != nil {
		t.Fatalf("the micro archive does not load: %v", err)
	}
	w.Close()
}

// FuzzPickle mutates data.pkl itself (the scan, gopickle and the state dict
// checks), in an archive with one honest record.
func FuzzPickle(f *testing.F) {
	cfg := microConfig()
	f.Add(statePickle([]ptEntry{{name: "itm_head.bias", key: "0", numel: 2, size: []int64{2}, stride: []int64{1}}}))
	f.Add([]byte("\x80\x02}q\x00."))
	f.Add([]byte("\x80\x02(((N."))
	f.Fuzz(func(t *testing.T, pkl []byte) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("archive/data.pkl")
		w.Write(pkl)
		w, _ = zw.Create("archive/data/0")
		w.Write(make([]byte, 8))
		zw.Close()
		checkFuzzLoad(t, func() (*Weights, error) {
			zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			return loadPyTorchZip("fuzz.bin", zr, cfg)
		})
	})
}
