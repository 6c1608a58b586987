package imageproc

// Huffman entropy decoding (ITU-T T.81 Annex F.2.2 for sequential scans,
// Annex G.2 for progressive ones), with the behaviour of libjpeg-turbo's
// decoder on damaged segments: when a scan needs more bits than its entropy
// segment holds (it runs into a marker), zero bits are supplied, and the
// remaining MCUs of that restart interval are left at zero coefficients
// (uniform grey), as jdhuff.c and jdphuff.c do.

const huffLookBits = 9

// huffTable is a decoding table built from a DHT segment (Annex C).
type huffTable struct {
	// lut maps the next huffLookBits bits to length<<8 | symbol for codes
	// no longer than huffLookBits; 0 means "longer code".
	lut     [1 << huffLookBits]uint16
	maxcode [18]int32 // largest code of each length, −1 if none; [17] sentinel
	valptr  [17]int32 // index in vals of the first code of each length minus that code
	vals    [256]uint8
	// fastAC maps the next huffLookBits bits, when they hold a whole AC
	// code and its value, to value<<16 | run<<8 | bits used; 0 otherwise.
	fastAC  [1 << huffLookBits]int32
	defined bool
}

// build derives the decoding tables from the 16 code-length counts and the
// symbols (Annex C, Figure C.1 to C.3). dc enables the DC symbol check.
func (t *huffTable) build(counts []uint8, syms []uint8, dc bool) error {
	*t = huffTable{}
	copy(t.vals[:], syms)
	code, k := int32(0), 0
	for l := 1; l <= 16; l++ {
		n := int(counts[l-1])
		// The codes of length l must fit in l bits.
		if int(code)+n > 1<<l {
			return jpegErr(ErrCorrupt, "bad Huffman table (code lengths overflow)")
		}
		if n == 0 {
			t.maxcode[l] = -1
		} else {
			t.valptr[l] = int32(k) - code
			for i := 0; i < n; i++ {
				if l <= huffLookBits {
					shift := huffLookBits - l
					base := int(code) << shift
					for j := 0; j < 1<<shift; j++ {
						t.lut[base+j] = uint16(l<<8) | uint16(syms[k])
					}
				}
				code++
				k++
			}
			t.maxcode[l] = code - 1
		}
		code <<= 1
	}
	t.maxcode[17] = 1<<31 - 1
	for i, e := range t.lut {
		l, rs := uint(e>>8), uint8(e)
		r, sz := int32(rs>>4), uint(rs&15)
		if e == 0 || sz == 0 || l+sz > huffLookBits {
			continue
		}
		v := int32(i>>(huffLookBits-l-sz)) & (1<<sz - 1)
		if v < 1<<(sz-1) {
			v += -1<<sz + 1
		}
		t.fastAC[i] = v<<16 | r<<8 | int32(l+sz)
	}
	if dc {
		for _, s := range syms {
			if s > 15 {
				return jpegErr(ErrCorrupt, "bad DC Huffman table (symbol %d > 15)", s)
			}
		}
	}
	t.defined = true
	return nil
}

// bitReader reads the entropy-coded data of one scan from data[pos:].
type bitReader struct {
	data []byte
	pos  int
	acc  uint64 // the low n bits are unread input, most significant first
	n    uint
	// padBits counts the zero bits appended after a marker or the end of the
	// data; consuming any of them means the segment was too short.
	padBits uint
	eof     bool // the data ended inside the scan (a truncated file)
}

// fill tops the accumulator up to at least 57 bits.
func (b *bitReader) fill() {
	for b.n <= 56 {
		if b.padBits == 0 && b.pos < len(b.data) {
			c := b.data[b.pos]
			if c != 0xff {
				b.pos++
				b.acc = b.acc<<8 | uint64(c)
				b.n += 8
				continue
			}
			if b.pos+1 < len(b.data) && b.data[b.pos+1] == 0 {
				b.pos += 2
				b.acc = b.acc<<8 | 0xff
				b.n += 8
				continue
			}
			if b.pos+1 >= len(b.data) {
				b.eof = true
			}
			// A marker (left unread) or the end of the data.
		} else if b.pos >= len(b.data) {
			b.eof = true
		}
		b.acc <<= 8
		b.n += 8
		b.padBits += 8
	}
}

// overrun reports whether zero padding has been consumed.
func (b *bitReader) overrun() bool { return b.n < b.padBits }

// reset discards the buffered bits (at a restart marker or the end of a scan).
func (b *bitReader) reset() {
	b.acc, b.n, b.padBits = 0, 0, 0
}

// bits returns the next k (≤ 16) bits.
func (b *bitReader) bits(k uint) int32 {
	if k == 0 {
		return 0
	}
	if b.n < k {
		b.fill()
	}
	b.n -= k
	return int32(b.acc>>b.n) & (1<<k - 1)
}

// bit returns the next bit.
func (b *bitReader) bit() bool {
	if b.n == 0 {
		b.fill()
	}
	b.n--
	return b.acc>>b.n&1 != 0
}

// receiveExtend reads s bits and sign-extends them (Annex F, EXTEND).
func (b *bitReader) receiveExtend(s uint8) int32 {
	v := b.bits(uint(s))
	if s > 0 && v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// decode reads one Huffman-coded symbol. A bit pattern that is no code of
// the table is handled as libjpeg does (jdhuff.c jpeg_huff_decode, with a
// warning there): 17 bits are consumed and the symbol is 0.
func (b *bitReader) decode(t *huffTable) uint8 {
	if b.n < 17 {
		b.fill()
	}
	if e := t.lut[(b.acc>>(b.n-huffLookBits))&(1<<huffLookBits-1)]; e != 0 {
		b.n -= uint(e >> 8)
		return uint8(e)
	}
	return b.decodeLong(t)
}

// decodeLong decodes a code longer than huffLookBits; at least 17 bits must
// be buffered.
func (b *bitReader) decodeLong(t *huffTable) uint8 {
	for l := uint(huffLookBits + 1); l <= 16; l++ {
		code := int32(b.acc>>(b.n-l)) & (1<<l - 1)
		if code <= t.maxcode[l] {
			b.n -= l
			return t.vals[(t.valptr[l]+code)&0xff]
		}
	}
	b.n -= 17
	return 0
}

// symbolAndValue decodes a symbol whose low 4 bits give the size s of the
// value that follows, and that value (sign-extended, Annex F EXTEND), with
// one buffer check: the hot path of sequential decoding.
func (b *bitReader) symbolAndValue(t *huffTable) (sym uint8, v int32) {
	if b.n < 33 {
		b.fill()
	}
	if e := t.lut[(b.acc>>(b.n-huffLookBits))&(1<<huffLookBits-1)]; e != 0 {
		b.n -= uint(e >> 8)
		sym = uint8(e)
	} else {
		sym = b.decodeLong(t)
	}
	s := uint(sym & 15)
	if s == 0 {
		return sym, 0
	}
	b.n -= s
	v = int32(b.acc>>b.n) & (1<<s - 1)
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return sym, v
}

// zigzag maps the position of a coefficient in the zig-zag sequence to its
// natural (row-major) index (T.81 Figure A.6). Like libjpeg's
// jpeg_natural_order it has 16 extra entries so that a corrupt run length
// that overshoots position 63 lands on 63 instead of failing.
var zigzag = [80]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
	63, 63, 63, 63, 63, 63, 63, 63,
	63, 63, 63, 63, 63, 63, 63, 63,
}

// decodeBlockSeq decodes one block of a sequential scan into blk (natural
// order, zeroed by the caller); pred is the component's DC predictor.
//
// It reports whether any AC coefficient was decoded (else the block is flat).
func (b *bitReader) decodeBlockSeq(blk *[64]int32, dc, ac *huffTable, pred *int32) (hasAC bool) {
	_, diff := b.symbolAndValue(dc)
	*pred += diff
	blk[0] = int32(int16(*pred))
	for k := 1; k < 64; {
		if b.n < 16 {
			b.fill()
		}
		if f := ac.fastAC[(b.acc>>(b.n-huffLookBits))&(1<<huffLookBits-1)]; f != 0 {
			b.n -= uint(f & 0xff)
			k += int(f>>8) & 15
			blk[zigzag[k]] = f >> 16
			hasAC = true
			k++
			continue
		}
		rs, v := b.symbolAndValue(ac)
		r, s := int(rs>>4), rs&15
		if s == 0 {
			if r != 15 {
				break // EOB
			}
			k += 16
			continue
		}
		k += r
		blk[zigzag[k]] = int32(int16(v))
		hasAC = true
		k++
	}
	return hasAC
}

// Progressive decoding (Annex G.1.2.1–G.1.2.3); coefficients are kept as
// int16 in natural order, as libjpeg keeps them (JCOEF).

func (b *bitReader) decodeDCFirst(blk []int16, dc *huffTable, pred *int32, al uint8) error {
	s := b.decode(dc)
	*pred += b.receiveExtend(s)
	blk[0] = int16(*pred << al)
	return nil
}

func (b *bitReader) decodeDCRefine(blk []int16, al uint8) {
	if b.bit() {
		blk[0] |= 1 << al
	}
}

func (b *bitReader) decodeACFirst(blk []int16, ac *huffTable, ss, se, al uint8, eobrun *int32) error {
	if *eobrun > 0 {
		*eobrun--
		return nil
	}
	for k := int(ss); k <= int(se); {
		rs := b.decode(ac)
		r, s := int32(rs>>4), rs&15
		if s == 0 {
			if r < 15 {
				*eobrun = 1<<r - 1
				if r > 0 {
					*eobrun += b.bits(uint(r))
				}
				break
			}
			k += 16
			continue
		}
		k += int(r)
		blk[zigzag[k]] = int16(b.receiveExtend(s) << al)
		k++
	}
	return nil
}

func (b *bitReader) decodeACRefine(blk []int16, ac *huffTable, ss, se, al uint8, eobrun *int32) error {
	p1, m1 := int16(1)<<al, int16(-1)<<al
	refine := func(c *int16) {
		if *c != 0 && b.bit() && *c&p1 == 0 {
			if *c >= 0 {
				*c += p1
			} else {
				*c += m1
			}
		}
	}
	k := int(ss)
	if *eobrun == 0 {
		for ; k <= int(se); k++ {
			rs := b.decode(ac)
			r, s := int32(rs>>4), rs&15
			var v int16
			if s != 0 {
				// s must be 1 in a refinement scan; libjpeg warns and
				// continues on other values.
				if b.bit() {
					v = p1
				} else {
					v = m1
				}
			} else if r != 15 {
				*eobrun = 1 << r
				if r > 0 {
					*eobrun += b.bits(uint(r))
				}
				break
			}
			// Skip r zero-history coefficients, refining the non-zero ones
			// passed on the way, then place v.
			for ; k <= int(se); k++ {
				c := &blk[zigzag[k]]
				if *c != 0 {
					refine(c)
				} else {
					if r == 0 {
						break
					}
					r--
				}
			}
			if v != 0 { // k ≤ Se+1 ≤ 64: within zigzag (libjpeg does the same)
				blk[zigzag[k]] = v
			}
		}
	}
	if *eobrun > 0 {
		// The rest of the band gets correction bits only.
		for ; k <= int(se); k++ {
			refine(&blk[zigzag[k]])
		}
		*eobrun--
	}
	return nil
}
