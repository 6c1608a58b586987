package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// scanPickle walks the opcodes of a pickle before it is handed to the
// unpickler and refuses streams the unpickler would choke on: unknown
// opcodes, a length prefix larger than the bytes that follow (gopickle
// allocates the announced length before reading, so a forged length would
// allocate gigabytes), lines without a terminator, and a missing STOP.
func scanPickle(b []byte) error {
	i := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-i) {
			return fmt.Errorf("pickle opcode at byte %d announces %d bytes, only %d follow", i, n, len(b)-i)
		}
		return nil
	}
	for i < len(b) {
		op := b[i]
		at := i
		i++
		var skip uint64
		switch op {
		case '(', '.', '0', '1', '2', 'N', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 'R', 's', 't', ')', 'u',
			'Q', 0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
			if op == '.' {
				return nil
			}
		case 0x80, 'K', 'h', 'q', 0x82: // PROTO, BININT1, BINGET, BINPUT, EXT1
			skip = 1
		case 'M', 0x83: // BININT2, EXT2
			skip = 2
		case 'J', 'j', 'r', 0x84: // BININT, LONG_BINGET, LONG_BINPUT, EXT4
			skip = 4
		case 'G': // BINFLOAT
			skip = 8
		case 'U', 'C', 0x8c, 0x8a: // 1-byte length: SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE, LONG1
			if err := need(1); err != nil {
				return err
			}
			skip = 1 + uint64(b[i])
		case 'T', 'B', 'X', 0x8b: // 4-byte length: BINSTRING, BINBYTES, BINUNICODE, LONG4
			if err := need(4); err != nil {
				return err
			}
			skip = 4 + uint64(binary.LittleEndian.Uint32(b[i:]))
		case 0x8d, 0x8e, 0x96: // 8-byte length: BINUNICODE8, BINBYTES8, BYTEARRAY8
			if err := need(8); err != nil {
				return err
			}
			n := binary.LittleEndian.Uint64(b[i:])
			if err := need(8 + n); err != nil || n > 1<<40 {
				return fmt.Errorf("pickle opcode at byte %d announces %d bytes, only %d follow", at, n, len(b)-i-8)
			}
			skip = 8 + n
		case 0x95: // FRAME: its payload is more opcodes, so only check the length.
			if err := need(8); err != nil {
				return err
			}
			n := binary.LittleEndian.Uint64(b[i:])
			if n > uint64(len(b)-i-8) {
				return fmt.Errorf("pickle frame at byte %d announces %d bytes, only %d follow", at, n, len(b)-i-8)
			}
			skip = 8
		case 'I', 'L', 'S', 'V', 'F', 'g', 'p', 'P': // one newline-terminated argument
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return fmt.Errorf("pickle opcode %q at byte %d has no line end", op, at)
			}
			skip = uint64(j) + 1
		case 'c', 'i': // GLOBAL, INST: two lines
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return fmt.Errorf("pickle opcode %q at byte %d has no line end", op, at)
			}
			k := bytes.IndexByte(b[i+j+1:], '\n')
			if k < 0 {
				return fmt.Errorf("pickle opcode %q at byte %d has no second line", op, at)
			}
			skip = uint64(j + k + 2)
		default:
			return fmt.Errorf("unknown pickle opcode %#02x at byte %d", op, at)
		}
		if err := need(skip); err != nil {
			return err
		}
		i += int(skip)
	}
	return fmt.Errorf("pickle has no STOP opcode")
}
