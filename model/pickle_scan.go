package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Bounds on a state dict's pickle, far above what torch.save writes (the
// stack holds at most a SETITEMS batch of 1000 pairs plus a few levels of
// nesting; each tensor memoizes a handful of objects), far below what would
// hurt: gopickle copies its stack on every MARK, so 63 M MARKs in a 64 KB
// deflated data.pkl would take 16 GB.
const (
	maxPickleMarks = 64      // nested MARKs
	maxPickleStack = 1 << 16 // items on the stack, all frames together
	maxPickleMemo  = 1 << 20 // memo entries
)

// pickleEffect is what an opcode does to the stack: it needs at least pop
// items on top (above the last mark), removes them and pushes push items.
// toMark opcodes first pop everything down to the last mark.
type pickleEffect struct {
	pop, push int
	toMark    bool
	memo      bool // stores into the memo
}

// pickleEffects covers every opcode scanPickle accepts. POP ('0') is taken
// to need an item, although Python's POP may also discard a bare mark.
var pickleEffects = func() [256]*pickleEffect {
	var t [256]*pickleEffect
	set := func(ops string, e pickleEffect) {
		for i := 0; i < len(ops); i++ {
			e := e
			t[ops[i]] = &e
		}
	}
	set("\x80\x95(.", pickleEffect{}) // PROTO, FRAME; MARK and STOP are special
	set("N)]}\x88\x89IJKMLFGSTUBCXV\x8c\x8d\x8e\x96\x8a\x8bghjPc\x82\x83\x84\x97", pickleEffect{push: 1})
	set("0", pickleEffect{pop: 1})
	set("2", pickleEffect{pop: 1, push: 2})
	set("Q\x85\x98", pickleEffect{pop: 1, push: 1})
	set("asbR\x93\x81\x86", pickleEffect{pop: 2, push: 1})
	t['s'].pop = 3
	set("\x87\x92", pickleEffect{pop: 3, push: 1})
	set("pqr\x94", pickleEffect{pop: 1, push: 1, memo: true})
	set("eu\x90", pickleEffect{toMark: true, pop: 1, push: 1}) // APPENDS, SETITEMS, ADDITEMS: the container stays
	set("1", pickleEffect{toMark: true})                       // POP_MARK
	set("tld\x91i", pickleEffect{toMark: true, push: 1})       // TUPLE, LIST, DICT, FROZENSET, INST
	set("o", pickleEffect{toMark: true, push: 1})              // OBJ (its class is above the mark; checked below)
	return t
}()

// scanPickle walks the opcodes of a pickle before it is handed to the
// unpickler and refuses streams the unpickler would choke on: unknown
// opcodes, a length prefix larger than the bytes that follow (gopickle
// allocates the announced length before reading, so a forged length would
// allocate gigabytes), lines without a terminator, a missing STOP, and
// stack effects that would underflow or exceed the bounds above (it
// tracks the depth of the stack and of the marks, not the values).
func scanPickle(b []byte) error {
	i := 0
	depth := 0      // items above the last mark
	var marks []int // depth below each mark
	total := 0      // items on the stack, all frames
	memo := 0
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
				if depth != 1 || len(marks) != 0 {
					return fmt.Errorf("pickle STOP at byte %d leaves %d items and %d marks, want one item", at, depth, len(marks))
				}
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
			if op == 0x8a && b[i] == 0 {
				return fmt.Errorf("pickle LONG1 at byte %d has no bytes", at)
			}
		case 'T', 'B', 'X', 0x8b: // 4-byte length: BINSTRING, BINBYTES, BINUNICODE, LONG4
			if err := need(4); err != nil {
				return err
			}
			skip = 4 + uint64(binary.LittleEndian.Uint32(b[i:]))
			if op == 0x8b && skip == 4 {
				return fmt.Errorf("pickle LONG4 at byte %d has no bytes", at)
			}
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
		if err := stackEffect(op, at, &depth, &marks, &total, &memo); err != nil {
			return err
		}
	}
	return fmt.Errorf("pickle has no STOP opcode")
}

// stackEffect applies opcode op (at byte at) to the tracked stack shape.
func stackEffect(op byte, at int, depth *int, marks *[]int, total, memo *int) error {
	e := pickleEffects[op]
	if e == nil {
		return fmt.Errorf("unknown pickle opcode %#02x at byte %d", op, at)
	}
	switch {
	case op == '(':
		if len(*marks) >= maxPickleMarks {
			return fmt.Errorf("pickle nests more than %d MARKs (byte %d): not a state dict", maxPickleMarks, at)
		}
		*marks = append(*marks, *depth)
		*depth = 0
		return nil
	case e.toMark:
		if len(*marks) == 0 {
			return fmt.Errorf("pickle opcode %q at byte %d has no MARK to pop to", op, at)
		}
		if op == 'o' && *depth == 0 {
			return fmt.Errorf("pickle OBJ at byte %d has no class above its MARK", at)
		}
		if (op == 'd' || op == 'u') && *depth%2 != 0 {
			return fmt.Errorf("pickle opcode %q at byte %d has %d items, not key-value pairs", op, at, *depth)
		}
		*total -= *depth
		*depth = (*marks)[len(*marks)-1]
		*marks = (*marks)[:len(*marks)-1]
	}
	if *depth < e.pop {
		return fmt.Errorf("pickle opcode %q at byte %d needs %d items on the stack, has %d", op, at, e.pop, *depth)
	}
	*depth += e.push - e.pop
	*total += e.push - e.pop
	if *total > maxPickleStack {
		return fmt.Errorf("pickle stack exceeds %d items at byte %d: not a state dict", maxPickleStack, at)
	}
	if e.memo {
		if *memo++; *memo > maxPickleMemo {
			return fmt.Errorf("pickle memoizes more than %d objects (byte %d): not a state dict", maxPickleMemo, at)
		}
	}
	return nil
}
