package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"unsafe"
)

// vecFile is a file of fixed-size rows of float16 or float32 values,
// little-endian, read through a memory map and written with WriteAt.
type vecFile struct {
	path string
	f    *os.File
	elem int    // bytes per value: 1, 2 or 4
	row  int    // values per row
	data []byte // the mapped file (nil when empty)
	buf  []byte // encoding buffer for writes
}

// littleEndian reports whether this machine stores values as the files do.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func openVec(path string, elem, row int, write bool) (*vecFile, error) {
	if !littleEndian {
		return nil, errors.New("index: vector files are little-endian and this machine is not")
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o666)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	v := &vecFile{path: path, f: f, elem: elem, row: row}
	if err := v.remap(); err != nil {
		f.Close()
		return nil, err
	}
	return v, nil
}

// rows returns the number of whole rows mapped.
func (v *vecFile) rows() int { return len(v.data) / (v.elem * v.row) }

// remap maps the file again if its size changed.
func (v *vecFile) remap() error {
	st, err := v.f.Stat()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	size := st.Size()
	if size == int64(len(v.data)) && sharedMap {
		return nil
	}
	if size > math.MaxInt {
		return fmt.Errorf("index: %s is too large to map", v.path)
	}
	if err := unmapFile(v.data); err != nil {
		return fmt.Errorf("index: unmapping %s: %w", v.path, err)
	}
	v.data = nil
	if size == 0 {
		return nil
	}
	if v.data, err = mapFile(v.f, int(size)); err != nil {
		return fmt.Errorf("index: mapping %s: %w", v.path, err)
	}
	return nil
}

func (v *vecFile) close() error {
	err := unmapFile(v.data)
	v.data = nil
	return errors.Join(err, v.f.Close())
}

func (v *vecFile) int8s() []int8 {
	if len(v.data) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&v.data[0])), len(v.data))
}

func (v *vecFile) halves() []uint16 {
	if len(v.data) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&v.data[0])), len(v.data)/2)
}

func (v *vecFile) floats() []float32 {
	if len(v.data) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&v.data[0])), len(v.data)/4)
}

func (v *vecFile) writeHalf(slot int, row []uint16) error {
	b := v.buffer()
	for i, h := range row {
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return v.writeRow(slot, b)
}

func (v *vecFile) writeInt8(slot int, row []int8) error {
	b := v.buffer()
	for i, x := range row {
		b[i] = byte(x)
	}
	return v.writeRow(slot, b)
}

func (v *vecFile) writeFloat(slot int, row []float32) error {
	b := v.buffer()
	for i, f := range row {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return v.writeRow(slot, b)
}

func (v *vecFile) buffer() []byte {
	if len(v.buf) != v.elem*v.row {
		v.buf = make([]byte, v.elem*v.row)
	}
	return v.buf
}

// writeHook, when set (by tests), is called before each row write and may
// fail it, standing in for a full disk.
var writeHook func(path string) error

func (v *vecFile) writeRow(slot int, b []byte) error {
	if writeHook != nil {
		if err := writeHook(v.path); err != nil {
			return fmt.Errorf("writing %s: %w", v.path, err)
		}
	}
	if _, err := v.f.WriteAt(b, int64(slot)*int64(len(b))); err != nil {
		return fmt.Errorf("writing %s: %w", v.path, unwrapPath(err))
	}
	return nil
}

func (v *vecFile) sync() error {
	if err := v.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", v.path, unwrapPath(err))
	}
	return nil
}
