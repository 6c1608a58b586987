package model

import (
	"github.com/blipcuda/blipcuda/ops"

	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/blipcuda/blipcuda/internal/bounded"
	"github.com/nlpodyssey/safetensors"
)

// LoadSafetensors memory-maps a model.safetensors file and checks its
// tensors against cfg: its header may not exceed what the configuration's
// tensors need, its data must be large enough for the configuration's
// parameters, and NaN or infinite weights are refused. Replacing the file
// by rename under the returned Weights is safe; rewriting it in place is
// not (the mapping then faults with SIGBUS). float32 tensors are used in place (no copy) when
// aligned; float16 and bfloat16 tensors are widened to float32.
func LoadSafetensors(path string, cfg Config) (*Weights, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, fi, err := bounded.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	defer f.Close()
	size := fi.Size()
	if size < 8 {
		return nil, fmt.Errorf("%w: %s: %d bytes is too short for a safetensors file", ErrWeights, path, size)
	}
	if size > 1<<40 {
		return nil, fmt.Errorf("%w: %s: %d bytes is too large", ErrWeights, path, size)
	}
	buf, unmap, err := mapReadOnly(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: mapping: %w", ErrWeights, path, err)
	}
	w, err := parseSafetensors(path, buf, cfg)
	if err != nil {
		unmap()
		return nil, err
	}
	w.closers = append(w.closers, unmap)
	return w, nil
}

// ParseSafetensors checks the tensors of a safetensors file held in buf
// against cfg. The returned weights may alias buf.
func ParseSafetensors(name string, buf []byte, cfg Config) (*Weights, error) {
	return parseSafetensors(name, buf, cfg)
}

func parseSafetensors(path string, buf []byte, cfg Config) (w *Weights, err error) {
	// The parser is third-party code run on untrusted bytes: turn any panic
	// into an error.
	defer recoverParse(path, "safetensors file", &w, &err)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The header's length prefix is a bound on the tensor data: compare
	// the configuration with it before the header is even parsed.
	if len(buf) >= 8 {
		hl := binary.LittleEndian.Uint64(buf)
		// The JSON header is parsed whole: bound it by what a header of
		// this configuration's tensors needs (about 100 bytes each).
		if limit := uint64(headerLimit(cfg)); hl > limit {
			return nil, fmt.Errorf("%w: %s: the safetensors header declares %d bytes, more than the %d the tensors of this configuration need",
				ErrWeights, path, hl, limit)
		}
		if hl <= uint64(len(buf))-8 {
			if err := checkHolds(path, cfg, int64(uint64(len(buf))-8-hl)); err != nil {
				return nil, err
			}
		}
	}
	st, err := safetensors.Deserialize(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrWeights, path, err)
	}
	raw := make(map[string]rawTensor, st.Len())
	for _, nt := range st.Tensors() {
		tv := nt.TensorView
		shape := make([]int, len(tv.Shape()))
		for i, d := range tv.Shape() {
			if d > maxDim*maxDim {
				return nil, fmt.Errorf("%w: %s: tensor %s: dimension %d too large", ErrWeights, path, bounded.Quote(nt.Name), d)
			}
			shape[i] = int(d)
		}
		data := tv.Data()
		dtype := tv.DType().String()
		raw[nt.Name] = rawTensor{shape: shape, dtype: dtype, data: func() ([]float32, error) {
			return bytesToF32(data, dtype)
		}}
	}
	return check(path, cfg, raw)
}

// bytesToF32 interprets little-endian tensor bytes as float32 values,
// without copying when the dtype is F32 and the bytes are aligned.
func bytesToF32(b []byte, dtype string) ([]float32, error) {
	switch dtype {
	case "F32":
		if len(b)%4 != 0 {
			return nil, fmt.Errorf("%d bytes is not a whole number of float32", len(b))
		}
		n := len(b) / 4
		if n == 0 {
			return []float32{}, nil
		}
		if uintptr(unsafe.Pointer(&b[0]))%4 == 0 && nativeLittleEndian {
			return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), nil
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case "F16", "BF16":
		if len(b)%2 != 0 {
			return nil, fmt.Errorf("%d bytes is not a whole number of 16-bit values", len(b))
		}
		out := make([]float32, len(b)/2)
		for i := range out {
			h := binary.LittleEndian.Uint16(b[2*i:])
			if dtype == "F16" {
				out[i] = ops.Float16ToFloat32(h)
			} else {
				out[i] = ops.BFloat16ToFloat32(h)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s is not a float type", dtype)
}

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
