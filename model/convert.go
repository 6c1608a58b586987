package model

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/blipcuda/blipcuda/internal/outfile"
	"github.com/blipcuda/blipcuda/ops"
)

// SafetensorsDType returns the safetensors spelling (F32, F16, BF16) of a
// floating-point type named "float32", "float16" or "bfloat16" (also
// accepted: the safetensors names themselves, any case, and fp32, fp16,
// half, bf16).
func SafetensorsDType(name string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "float32", "f32", "fp32", "float":
		return "F32", nil
	case "float16", "f16", "fp16", "half":
		return "F16", nil
	case "bfloat16", "bf16":
		return "BF16", nil
	}
	return "", fmt.Errorf("model: unknown dtype %q (want float32, float16 or bfloat16)", name)
}

// dtypeSize is the bytes per element of a safetensors float dtype.
func dtypeSize(dt string) int {
	if dt == "F32" {
		return 4
	}
	return 2
}

// WriteSafetensors writes the parameters of cfg held in w to path as a
// safetensors file, converted to dtype ("float32", "float16" or
// "bfloat16"; see SafetensorsDType), the format transformers reads with
// from_pretrained. Tensors are written in cfg.Params() order, named as
// transformers names them, with the header's __metadata__ holding
// {"format": "pt"} (as transformers' save_pretrained writes it) plus the
// entries of metadata.
//
// float16 and bfloat16 values are rounded to nearest, ties to even (as
// PyTorch's .half() and .bfloat16() do); float16 overflows to ±Inf.
//
// The file is streamed: only a small conversion buffer is allocated, never
// a second copy of the weights. It is written by internal/outfile: a
// regular file (or new path) atomically, to a temporary file in the
// directory of the resolved path, synced, then renamed over it; a device
// or FIFO directly. On any error, including ctx being cancelled, the
// temporary file is removed and path is left as it was.
func WriteSafetensors(ctx context.Context, path string, w *Weights, cfg Config, dtype string, metadata map[string]string) (err error) {
	dt, err := SafetensorsDType(dtype)
	if err != nil {
		return err
	}
	if w == nil {
		return fmt.Errorf("model: write %s: no weights", path)
	}
	params := cfg.Params()
	tensors := make([]HostTensor, len(params))
	for i, p := range params {
		t, ok := w.Tensor(p.Name)
		if !ok {
			return fmt.Errorf("model: write %s: %w: tensor %s missing", path, ErrWeights, p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) || len(t.Data) != p.Len() {
			return fmt.Errorf("model: write %s: %w: tensor %s has shape %v (%d values), the config requires %v",
				path, ErrWeights, p.Name, t.Shape, len(t.Data), p.Shape)
		}
		tensors[i] = t
	}
	header, err := safetensorsHeader(params, dt, metadata)
	if err != nil {
		return fmt.Errorf("model: write %s: %w", path, err)
	}

	f, err := outfile.Create(ctx, path)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	defer f.Abort() // after Commit it does nothing
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(len(header)))
	if _, err := f.Write(n8[:]); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if _, err := f.Write(header); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	const chunk = 1 << 16 // elements converted at a time
	buf := make([]byte, chunk*dtypeSize(dt))
	for i, t := range tensors {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("model: write %s: %w", path, err)
		}
		for first := 0; first < len(t.Data); first += chunk {
			src := t.Data[first:min(first+chunk, len(t.Data))]
			b := encodeFloats(buf, src, dt)
			if _, err := f.Write(b); err != nil {
				return fmt.Errorf("model: tensor %s: %w", params[i].Name, err)
			}
		}
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

// safetensorsHeader builds the JSON header: the metadata first, then the
// tensors in order with contiguous data offsets, padded with spaces to a
// multiple of 8 bytes so that the data is aligned.
func safetensorsHeader(params []Param, dt string, metadata map[string]string) ([]byte, error) {
	meta := map[string]string{}
	for k, v := range metadata {
		meta[k] = v
	}
	if _, ok := meta["format"]; !ok {
		meta["format"] = "pt"
	}
	mb, err := json.Marshal(meta) // map keys come out sorted
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(`{"__metadata__":`)
	b.Write(mb)
	var off uint64
	size := uint64(dtypeSize(dt))
	for _, p := range params {
		name, err := json.Marshal(p.Name)
		if err != nil {
			return nil, err
		}
		shape, err := json.Marshal(p.Shape)
		if err != nil {
			return nil, err
		}
		end := off + uint64(p.Len())*size
		fmt.Fprintf(&b, `,%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, dt, shape, off, end)
		off = end
	}
	b.WriteString("}")
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return []byte(b.String()), nil
}

// encodeFloats writes src as little-endian dt values into buf and returns
// the bytes used.
func encodeFloats(buf []byte, src []float32, dt string) []byte {
	switch dt {
	case "F32":
		for i, v := range src {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		return buf[:4*len(src)]
	case "F16":
		for i, v := range src {
			binary.LittleEndian.PutUint16(buf[2*i:], Float32ToFloat16(v))
		}
	default:
		for i, v := range src {
			binary.LittleEndian.PutUint16(buf[2*i:], Float32ToBFloat16(v))
		}
	}
	return buf[:2*len(src)]
}

// Float32ToFloat16 returns the IEEE 754 half-precision bits nearest to v,
// ties to even, as PyTorch's float-to-half conversion (ops.Float32ToFloat16).
func Float32ToFloat16(v float32) uint16 { return ops.Float32ToFloat16(v) }

// Float32ToBFloat16 returns the bfloat16 bits nearest to v, ties to even,
// as PyTorch's float-to-bfloat16 conversion (ops.Float32ToBFloat16).
func Float32ToBFloat16(v float32) uint16 { return ops.Float32ToBFloat16(v) }
