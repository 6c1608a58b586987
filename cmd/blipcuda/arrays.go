package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// array is a named float32 array in C (row-major) order.
type array struct {
	name  string
	shape []int
	data  []float32
}

// writeFloats writes data as little-endian float32.
func writeFloats(w io.Writer, data []float32) error {
	buf := make([]byte, 4*min(len(data), 1<<16))
	for first := 0; first < len(data); first += 1 << 16 {
		chunk := data[first:min(first+1<<16, len(data))]
		for i, v := range chunk {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*len(chunk)]); err != nil {
			return err
		}
	}
	return nil
}

// npyHeader returns the header of a .npy file, format version 1.0, for a
// little-endian float32 array in C order: the magic "\x93NUMPY", the
// version bytes 1 and 0, the header length as a little-endian uint16, and
// the header, a Python dict literal padded with spaces and ended by a
// newline so that the data starts at a multiple of 64 bytes (as NumPy
// writes it).
func npyHeader(shape []int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := "(" + strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	tuple += ")"
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': " + tuple + ", }"
	const pre = 10 // magic, version, length
	n := pre + len(dict) + 1
	pad := (64 - n%64) % 64
	h := make([]byte, 0, n+pad)
	h = append(h, "\x93NUMPY\x01\x00"...)
	h = binary.LittleEndian.AppendUint16(h, uint16(len(dict)+pad+1))
	h = append(h, dict...)
	for range pad {
		h = append(h, ' ')
	}
	return append(h, '\n')
}

// writeNPY writes a as a .npy file (see npyHeader).
func writeNPY(w io.Writer, a array) error {
	if _, err := w.Write(npyHeader(a.shape)); err != nil {
		return err
	}
	return writeFloats(w, a.data)
}

// writeSafetensorsArrays writes arrays as a safetensors file: a
// little-endian uint64 header length, a JSON header (metadata first, then
// the arrays in order with contiguous data offsets) padded with spaces to
// a multiple of 8 bytes, then the data, float32.
func writeSafetensorsArrays(w io.Writer, arrays []array, meta map[string]string) error {
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(`{"__metadata__":`)
	b.Write(mb)
	off := 0
	for _, a := range arrays {
		name, _ := json.Marshal(a.name)
		shape, _ := json.Marshal(a.shape)
		end := off + 4*len(a.data)
		fmt.Fprintf(&b, `,%s:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, name, shape, off, end)
		off = end
	}
	b.WriteString("}")
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(b.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, a := range arrays {
		if err := writeFloats(w, a.data); err != nil {
			return err
		}
	}
	return nil
}

// addMetadata adds fields to a safetensors __metadata__ map (whose values
// are strings): strings as they are, other values as JSON.
func addMetadata(meta map[string]string, fields []jsonField) error {
	for _, f := range fields {
		if s, ok := f.value.(string); ok {
			meta[f.key] = s
			continue
		}
		b, err := json.Marshal(f.value)
		if err != nil {
			return fmt.Errorf("metadata %s: %w", f.key, err)
		}
		meta[f.key] = string(b)
	}
	return nil
}
