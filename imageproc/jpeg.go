package imageproc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"io"
)

// This file and jpeghuff.go, jpegidct.go hold blipcuda's own JPEG decoder,
// written from ITU-T T.81 and the documented behaviour of libjpeg-turbo's
// decompressor with the settings Pillow 12 uses (ISLOW IDCT, no scaling,
// fancy upsampling, no block smoothing needed for complete files), so that a
// JPEG decodes to the same RGB bytes as PIL.Image.open(f).convert("RGB"):
//
//   - baseline and extended sequential (SOF0, SOF1) and progressive (SOF2)
//     Huffman-coded frames, with successive approximation and restart
//     intervals; 8-bit samples only (Pillow 12 refuses other precisions:
//     "cannot handle 12-bit layers"); arithmetic coding, lossless and
//     hierarchical frames are refused with ErrUnsupported;
//   - 1, 3 or 4 components (Pillow refuses 2), any sampling factors 1..4
//     whose ratios to the largest are integers and whose MCU has at most 10
//     blocks, as libjpeg requires;
//   - colour space chosen as libjpeg does (JFIF → YCbCr; Adobe transform 0 →
//     RGB or CMYK, 1 → YCbCr, 2 → YCCK; otherwise component IDs 'R','G','B' →
//     RGB, else YCbCr; 4 components without Adobe → CMYK); YCbCr and YCCK
//     converted with libjpeg's fixed-point tables (jpegyuv.go); CMYK read the
//     way Pillow reads it (always as inverted "CMYK;I") and then converted
//     with Pillow's cmyk2rgb;
//   - chroma upsampled like libjpeg-turbo (upsampleChroma in jpegyuv.go).
//
// Damaged data: an entropy segment that runs into a marker too early is
// padded with zero bits and the rest of that restart interval is left grey,
// as libjpeg does (Pillow only warns). A file that ends before its last scan
// is complete is refused with ErrTruncated (Pillow also refuses a truncated
// file unless ImageFile.LOAD_TRUNCATED_IMAGES is set). Not reproduced:
// libjpeg's block smoothing of progressive images whose scans leave
// low-frequency coefficients unrefined (complete progressive files, such as
// every file Pillow or libjpeg writes, are not smoothed), and libjpeg-turbo's
// built-in default Huffman tables for Motion-JPEG frames without DHT (refused
// as corrupt).

// jpegErr builds an error that wraps kind (one of the package sentinels).
func jpegErr(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: jpeg: %s", kind, fmt.Sprintf(format, args...))
}

const (
	jpegMaxComps = 4
	// jpegMaxBlocksInMCU is libjpeg's D_MAX_BLOCKS_IN_MCU.
	jpegMaxBlocksInMCU = 10
)

// jpegComponent is one frame component and its decoded samples.
type jpegComponent struct {
	id     uint8
	h, v   int // sampling factors
	tq     uint8
	bw, bh int // blocks per row and column, padded to whole MCUs
	cw, ch int // libjpeg's downsampled_width and downsampled_height
	stride int // = 8*bw
	plane  []uint8
	coefs  []int16 // progressive only: bw*bh blocks of 64 (natural order)
	qt     *[64]int32
	pred   int32
	td, ta uint8
}

type jpegDecoder struct {
	data      []byte
	pos       int
	maxPixels int

	w, h         int
	progressive  bool
	frameSeen    bool
	comps        []jpegComponent
	hmax, vmax   int
	mcusX, mcusY int
	qt           [4][64]int32
	qtDefined    [4]bool
	dcTab, acTab [4]huffTable
	restart      int
	jfif, adobe  bool
	adobeXform   uint8
	scans        int
	eobrun       int32
	br           bitReader
	blk          [64]int32
	insufficient bool

	out     *RGB
	outDone int // rows of out converted so far
	ups     []*upsampler
	bufs    [][]uint8
}

// jpegConfig reads the header of a JPEG up to its frame header and returns
// the size and a colour model. It reads only what it needs from r.
func jpegConfig(r io.Reader) (image.Config, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return image.Config{}, jpegReadErr(err)
	}
	if b[0] != 0xff || b[1] != 0xd8 {
		return image.Config{}, jpegErr(ErrNotImage, "missing SOI marker")
	}
	seg := make([]byte, 0, 1<<10)
	for {
		// Find the next marker, skipping fill bytes and (like libjpeg,
		// with a warning there) stray bytes.
		if _, err := io.ReadFull(r, b[:1]); err != nil {
			return image.Config{}, jpegReadErr(err)
		}
		if b[0] != 0xff {
			continue
		}
		m := byte(0xff)
		for m == 0xff {
			if _, err := io.ReadFull(r, b[:1]); err != nil {
				return image.Config{}, jpegReadErr(err)
			}
			m = b[0]
		}
		if m == 0 || m == 0x01 || (m >= 0xd0 && m <= 0xd8) {
			continue // no length field
		}
		if m == 0xd9 || m == 0xda {
			return image.Config{}, jpegErr(ErrCorrupt, "no frame header before %s", markerName(m))
		}
		if _, err := io.ReadFull(r, b[:2]); err != nil {
			return image.Config{}, jpegReadErr(err)
		}
		n := int(binary.BigEndian.Uint16(b[:2])) - 2
		if n < 0 {
			return image.Config{}, jpegErr(ErrCorrupt, "bad segment length")
		}
		seg = seg[:0]
		if cap(seg) < n {
			seg = make([]byte, 0, n)
		}
		seg = seg[:n]
		if _, err := io.ReadFull(r, seg); err != nil {
			return image.Config{}, jpegReadErr(err)
		}
		if isSOF(m) {
			var d jpegDecoder
			if err := d.frame(m, seg); err != nil {
				return image.Config{}, err
			}
			var cm color.Model = color.YCbCrModel
			switch len(d.comps) {
			case 1:
				cm = color.GrayModel
			case 4:
				cm = color.CMYKModel
			}
			return image.Config{ColorModel: cm, Width: d.w, Height: d.h}, nil
		}
	}
}

func jpegReadErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return jpegErr(ErrTruncated, "data ends in the header")
	}
	return err
}

func isSOF(m byte) bool { return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc }

func markerName(m byte) string {
	switch {
	case m == 0xd9:
		return "EOI"
	case m == 0xda:
		return "SOS"
	case isSOF(m):
		return fmt.Sprintf("SOF%d", m-0xc0)
	}
	return fmt.Sprintf("marker 0x%02x", m)
}

// decodeJPEG decodes a whole JPEG file from r into RGB, refusing (before any
// sample buffer is allocated) frames over maxPixels pixels or whose buffers
// would exceed the memory that many pixels justify.
func decodeJPEG(r io.Reader, maxPixels int) (*RGB, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	d := &jpegDecoder{data: data, maxPixels: maxPixels}
	if err := d.decode(); err != nil {
		return nil, err
	}
	return d.output(), nil
}

// nextMarker returns the next marker at or after pos, skipping fill bytes
// and stray data as libjpeg does. ok is false at the end of the data.
func (d *jpegDecoder) nextMarker() (byte, bool) {
	for {
		i := bytes.IndexByte(d.data[d.pos:], 0xff)
		if i < 0 {
			d.pos = len(d.data)
			return 0, false
		}
		d.pos += i
		for d.pos < len(d.data) && d.data[d.pos] == 0xff {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return 0, false
		}
		m := d.data[d.pos]
		d.pos++
		if m != 0 {
			return m, true
		}
	}
}

// segment returns the payload of the marker segment at pos and advances
// past it.
func (d *jpegDecoder) segment(m byte) ([]byte, error) {
	if d.pos+2 > len(d.data) {
		return nil, jpegErr(ErrTruncated, "data ends in a %s segment", markerName(m))
	}
	n := int(binary.BigEndian.Uint16(d.data[d.pos:]))
	if n < 2 {
		return nil, jpegErr(ErrCorrupt, "bad length %d of a %s segment", n, markerName(m))
	}
	if d.pos+n > len(d.data) {
		return nil, jpegErr(ErrTruncated, "data ends in a %s segment", markerName(m))
	}
	s := d.data[d.pos+2 : d.pos+n]
	d.pos += n
	return s, nil
}

func (d *jpegDecoder) decode() error {
	if len(d.data) < 2 || d.data[0] != 0xff || d.data[1] != 0xd8 {
		return jpegErr(ErrNotImage, "missing SOI marker")
	}
	d.pos = 2
	for {
		m, ok := d.nextMarker()
		if !ok {
			// Even when only EOI is missing, Pillow reports the file as
			// truncated.
			return jpegErr(ErrTruncated, "data ends before the EOI marker")
		}
		switch {
		case m == 0xd9: // EOI
			if d.scans == 0 {
				return jpegErr(ErrCorrupt, "no image data before EOI")
			}
			return nil
		case m == 0x01 || (m >= 0xd0 && m <= 0xd8): // TEM, RSTn, SOI: no payload
			if m == 0xd8 {
				return jpegErr(ErrCorrupt, "second SOI marker")
			}
			continue
		}
		seg, err := d.segment(m)
		if err != nil {
			return err
		}
		switch {
		case m == 0xc4:
			err = d.defineHuffman(seg)
		case m == 0xdb:
			err = d.defineQuant(seg)
		case m == 0xdd:
			if len(seg) < 2 {
				return jpegErr(ErrCorrupt, "bad DRI segment")
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case m == 0xe0:
			if len(seg) >= 14 && bytes.HasPrefix(seg, []byte("JFIF\x00")) {
				d.jfif = true
			}
		case m == 0xee:
			if len(seg) >= 12 && bytes.HasPrefix(seg, []byte("Adobe")) {
				d.adobe, d.adobeXform = true, seg[11]
			}
		case m == 0xcc:
			return jpegErr(ErrUnsupported, "arithmetic coding (DAC) is not supported")
		case isSOF(m):
			if d.frameSeen {
				return jpegErr(ErrCorrupt, "more than one frame header")
			}
			if err = d.frame(m, seg); err == nil {
				err = d.allocate()
			}
		case m == 0xda:
			err = d.scan(seg)
		}
		if err != nil {
			return err
		}
	}
}

// frame parses a frame header (T.81 B.2.2) into d, checking it the way
// libjpeg does.
func (d *jpegDecoder) frame(m byte, s []byte) error {
	switch m {
	case 0xc0, 0xc1:
	case 0xc2:
		d.progressive = true
	case 0xc3, 0xc7, 0xcb, 0xcf:
		return jpegErr(ErrUnsupported, "lossless JPEG (%s) is not supported", markerName(m))
	case 0xc5, 0xc6, 0xcd, 0xce:
		return jpegErr(ErrUnsupported, "hierarchical JPEG (%s) is not supported", markerName(m))
	default:
		return jpegErr(ErrUnsupported, "arithmetic-coded JPEG (%s) is not supported", markerName(m))
	}
	if len(s) < 6 {
		return jpegErr(ErrCorrupt, "short frame header")
	}
	if s[0] != 8 {
		return jpegErr(ErrUnsupported, "%d-bit samples (only 8-bit JPEG is supported, as in Pillow)", s[0])
	}
	d.h = int(binary.BigEndian.Uint16(s[1:]))
	d.w = int(binary.BigEndian.Uint16(s[3:]))
	nc := int(s[5])
	if d.w == 0 || d.h == 0 {
		return jpegErr(ErrCorrupt, "frame declares size %dx%d (DNL is not supported)", d.w, d.h)
	}
	if nc != 1 && nc != 3 && nc != 4 {
		return jpegErr(ErrUnsupported, "%d-component JPEG (1, 3 or 4 are supported)", nc)
	}
	if len(s) != 6+3*nc {
		return jpegErr(ErrCorrupt, "frame header length does not match %d components", nc)
	}
	d.frameSeen = true
	d.comps = make([]jpegComponent, nc)
	d.hmax, d.vmax = 1, 1
	for i := range d.comps {
		c := &d.comps[i]
		c.id, c.h, c.v, c.tq = s[6+3*i], int(s[7+3*i]>>4), int(s[7+3*i]&15), s[8+3*i]
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return jpegErr(ErrCorrupt, "bad sampling factors %dx%d", c.h, c.v)
		}
		if c.tq > 3 {
			return jpegErr(ErrCorrupt, "bad quantisation table number %d", c.tq)
		}
		for j := 0; j < i; j++ {
			if d.comps[j].id == c.id {
				return jpegErr(ErrCorrupt, "duplicate component id %d", c.id)
			}
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	blocks := 0
	for i := range d.comps {
		c := &d.comps[i]
		if d.hmax%c.h != 0 || d.vmax%c.v != 0 {
			return jpegErr(ErrUnsupported, "fractional sampling ratio %d/%d × %d/%d", d.hmax, c.h, d.vmax, c.v)
		}
		blocks += c.h * c.v
	}
	if nc > 1 && blocks > jpegMaxBlocksInMCU {
		return jpegErr(ErrCorrupt, "MCU of %d blocks (at most %d)", blocks, jpegMaxBlocksInMCU)
	}
	d.mcusX = (d.w + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.h + 8*d.vmax - 1) / (8 * d.vmax)
	for i := range d.comps {
		c := &d.comps[i]
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
		c.stride = 8 * c.bw
		c.cw = (d.w*c.h + d.hmax - 1) / d.hmax
		c.ch = (d.h*c.v + d.vmax - 1) / d.vmax
	}
	return nil
}

// allocate checks the limits and makes the sample (and, for progressive
// frames, coefficient) buffers.
func (d *jpegDecoder) allocate() error {
	px := int64(d.w) * int64(d.h)
	if px > int64(d.maxPixels) {
		return jpegErr(ErrTooLarge, "frame declares %dx%d = %d pixels, limit %d", d.w, d.h, px, d.maxPixels)
	}
	// Buffers are padded to whole MCUs; for very thin images that padding
	// dominates, so it is bounded too: at most 16 bytes per allowed pixel.
	var need int64
	for i := range d.comps {
		c := &d.comps[i]
		n := int64(c.bw) * int64(c.bh) * 64
		need += n
		if d.progressive {
			need += 2 * n
		}
	}
	if need > 16*int64(d.maxPixels) {
		return jpegErr(ErrTooLarge, "%dx%d frame needs %d bytes of padded buffers (limit %d from the pixel limit)",
			d.w, d.h, need, 16*int64(d.maxPixels))
	}
	for i := range d.comps {
		c := &d.comps[i]
		c.plane = make([]uint8, c.bw*c.bh*64)
		if d.progressive {
			c.coefs = make([]int16, c.bw*c.bh*64)
		}
	}
	return nil
}

func (d *jpegDecoder) defineQuant(s []byte) error {
	for len(s) > 0 {
		pq, tq := s[0]>>4, s[0]&15
		if tq > 3 || pq > 1 {
			return jpegErr(ErrCorrupt, "bad DQT table %d precision %d", tq, pq)
		}
		s = s[1:]
		n := 64 << pq
		if len(s) < n {
			return jpegErr(ErrCorrupt, "short DQT segment")
		}
		for k := 0; k < 64; k++ {
			v := int32(s[k])
			if pq == 1 {
				// libjpeg keeps multipliers in 16-bit signed integers.
				v = int32(int16(binary.BigEndian.Uint16(s[2*k:])))
			}
			d.qt[tq][zigzag[k]] = v
		}
		d.qtDefined[tq] = true
		s = s[n:]
	}
	return nil
}

func (d *jpegDecoder) defineHuffman(s []byte) error {
	for len(s) > 0 {
		if len(s) < 17 {
			return jpegErr(ErrCorrupt, "short DHT segment")
		}
		tc, th := s[0]>>4, s[0]&15
		if tc > 1 || th > 3 {
			return jpegErr(ErrCorrupt, "bad DHT table class %d number %d", tc, th)
		}
		counts := s[1:17]
		total := 0
		for _, c := range counts {
			total += int(c)
		}
		if total > 256 || len(s) < 17+total {
			return jpegErr(ErrCorrupt, "bad DHT segment (%d symbols)", total)
		}
		t := &d.dcTab[th]
		if tc == 1 {
			t = &d.acTab[th]
		}
		if err := t.build(counts, s[17:17+total], tc == 0); err != nil {
			return err
		}
		s = s[17+total:]
	}
	return nil
}

// scan parses a scan header (T.81 B.2.3) and decodes the scan's entropy data.
func (d *jpegDecoder) scan(s []byte) error {
	if !d.frameSeen {
		return jpegErr(ErrCorrupt, "scan before the frame header")
	}
	if len(s) < 1 {
		return jpegErr(ErrCorrupt, "short scan header")
	}
	ns := int(s[0])
	if ns < 1 || ns > jpegMaxComps || len(s) != 4+2*ns {
		return jpegErr(ErrCorrupt, "bad scan header (%d components)", ns)
	}
	var sc [jpegMaxComps]*jpegComponent
	for i := 0; i < ns; i++ {
		id, tables := s[1+2*i], s[2+2*i]
		var c *jpegComponent
		for j := range d.comps {
			if d.comps[j].id == id {
				c = &d.comps[j]
			}
		}
		if c == nil {
			return jpegErr(ErrCorrupt, "scan names unknown component %d", id)
		}
		for j := 0; j < i; j++ {
			if sc[j] == c {
				return jpegErr(ErrCorrupt, "scan names component %d twice", id)
			}
		}
		c.td, c.ta = tables>>4, tables&15
		if c.td > 3 || c.ta > 3 {
			return jpegErr(ErrCorrupt, "bad Huffman table selector")
		}
		sc[i] = c
	}
	ss, se, ah, al := s[1+2*ns], s[2+2*ns], s[3+2*ns]>>4, s[3+2*ns]&15
	comps := sc[:ns]
	if ns > 1 {
		blocks := 0
		for _, c := range comps {
			blocks += c.h * c.v
		}
		if blocks > jpegMaxBlocksInMCU {
			return jpegErr(ErrCorrupt, "MCU of %d blocks (at most %d)", blocks, jpegMaxBlocksInMCU)
		}
	}
	if d.progressive {
		// jdphuff.c's validity checks.
		bad := ss > se || se > 63 || al > 13 || (ah != 0 && ah != al+1)
		if ss == 0 {
			bad = bad || se != 0
		} else {
			bad = bad || ns != 1
		}
		if bad {
			return jpegErr(ErrCorrupt, "bad progressive scan parameters Ss=%d Se=%d Ah=%d Al=%d", ss, se, ah, al)
		}
	} else {
		ss, se, ah, al = 0, 63, 0, 0 // ignored by sequential decoders
	}
	for _, c := range comps {
		if c.qt == nil {
			// libjpeg latches each component's table when the component
			// first appears in a scan.
			if !d.qtDefined[c.tq] {
				return jpegErr(ErrCorrupt, "quantisation table %d not defined", c.tq)
			}
			q := d.qt[c.tq]
			c.qt = &q
		}
		needDC := ss == 0 && ah == 0
		needAC := se > 0
		if (needDC && !d.dcTab[c.td].defined) || (needAC && !d.acTab[c.ta].defined) {
			return jpegErr(ErrCorrupt, "scan uses an undefined Huffman table")
		}
		c.pred = 0
	}
	d.scans++
	d.br = bitReader{data: d.data, pos: d.pos}
	d.eobrun = 0
	d.insufficient = false
	err := d.scanData(comps, ss, se, ah, al)
	d.pos = d.br.pos
	return err
}

// scanData decodes the MCUs of one scan.
func (d *jpegDecoder) scanData(comps []*jpegComponent, ss, se, ah, al uint8) error {
	// A non-interleaved scan covers the component's own blocks, not the
	// padded MCU grid (T.81 A.2.2).
	mx, my := d.mcusX, d.mcusY
	if len(comps) == 1 {
		c := comps[0]
		mx, my = (c.cw+7)/8, (c.ch+7)/8
	}
	total := mx * my
	left := d.restart
	// A sequential first scan carrying every component is the whole image
	// (as in libjpeg's single-pass mode): convert rows as they complete.
	stream := !d.progressive && d.scans == 1 && len(comps) == len(d.comps)
	rowsPerMCU := 8 * d.vmax // output rows per MCU row
	if len(comps) == 1 {
		rowsPerMCU = 8 * d.vmax / comps[0].v
	}
	for m := 0; m < total; m++ {
		if d.restart > 0 && left == 0 {
			found, err := d.restartMarker()
			if err != nil {
				return err
			}
			for _, c := range comps {
				c.pred = 0
			}
			d.eobrun = 0
			// libjpeg keeps the out-of-data state when the restart marker
			// is missing (the next interval is then empty too).
			d.insufficient = d.insufficient && !found
			left = d.restart
		}
		left--
		mcuX, mcuY := m%mx, m/mx
		if mcuX == 0 && d.br.eof && d.br.overrun() {
			return jpegErr(ErrTruncated, "data ends inside a scan")
		}
		for _, c := range comps {
			if len(comps) == 1 {
				if err := d.block(c, mcuX, mcuY, ss, se, ah, al); err != nil {
					return err
				}
				continue
			}
			for by := 0; by < c.v; by++ {
				for bx := 0; bx < c.h; bx++ {
					if err := d.block(c, mcuX*c.h+bx, mcuY*c.v+by, ss, se, ah, al); err != nil {
						return err
					}
				}
			}
		}
		if d.br.overrun() {
			d.insufficient = true
		}
		if stream && mcuX == mx-1 {
			d.emitRows(min(d.h, rowsPerMCU*mcuY)) // one MCU row behind: the upsampling context is decoded
		}
	}
	if d.br.eof && d.br.overrun() {
		return jpegErr(ErrTruncated, "data ends inside a scan")
	}
	// Leave pos at the marker that follows the scan.
	d.br.reset()
	return nil
}

// block decodes one block at block coordinates (bx, by) of c.
//
// Once the scan has run out of data in the current restart interval
// (d.insufficient), blocks are not decoded: as in libjpeg, a sequential block
// keeps zero coefficients (it comes out as mid-grey) and a progressive one
// keeps what earlier scans gave it.
func (d *jpegDecoder) block(c *jpegComponent, bx, by int, ss, se, ah, al uint8) error {
	if !d.progressive {
		dst := c.plane[by*8*c.stride+bx*8:]
		if d.insufficient {
			idctFlat(0, dst, c.stride)
			return nil
		}
		d.blk = [64]int32{}
		if d.br.decodeBlockSeq(&d.blk, &d.dcTab[c.td], &d.acTab[c.ta], &c.pred) {
			idctISLOW(&d.blk, c.qt, dst, c.stride)
		} else {
			idctFlat(d.blk[0]*c.qt[0], dst, c.stride)
		}
		return nil
	}
	if d.insufficient {
		return nil
	}
	i := (by*c.bw + bx) * 64
	blk := c.coefs[i : i+64 : i+64]
	switch {
	case ss == 0 && ah == 0:
		return d.br.decodeDCFirst(blk, &d.dcTab[c.td], &c.pred, al)
	case ss == 0:
		d.br.decodeDCRefine(blk, al)
		return nil
	case ah == 0:
		return d.br.decodeACFirst(blk, &d.acTab[c.ta], ss, se, al, &d.eobrun)
	default:
		return d.br.decodeACRefine(blk, &d.acTab[c.ta], ss, se, al, &d.eobrun)
	}
}

// restartMarker consumes the restart marker expected between two restart
// intervals. Like libjpeg, a missing or out-of-sequence marker is not fatal:
// a following RSTn is consumed, any other marker is left for the scan loop
// and the interval decodes as zeros.
//
// (libjpeg's resynchronisation after damaged restart sequences, which can
// skip data up to a later marker, is simplified to this.)
func (d *jpegDecoder) restartMarker() (found bool, err error) {
	d.br.reset()
	p := d.br.pos
	for p < len(d.data) && d.data[p] == 0xff && p+1 < len(d.data) && d.data[p+1] == 0xff {
		p++
	}
	if p+1 >= len(d.data) {
		d.br.eof = true
		return false, jpegErr(ErrTruncated, "data ends inside a scan")
	}
	if d.data[p] == 0xff && d.data[p+1] >= 0xd0 && d.data[p+1] <= 0xd7 {
		d.br.pos = p + 2
		return true, nil
	}
	return false, nil
}

// output upsamples and colour-converts the decoded planes.
func (d *jpegDecoder) output() *RGB {
	if d.progressive {
		var blk [64]int32
		for ci := range d.comps {
			c := &d.comps[ci]
			if c.qt == nil {
				continue // never scanned: filled below
			}
			for by := 0; by < c.bh; by++ {
				for bx := 0; bx < c.bw; bx++ {
					i := (by*c.bw + bx) * 64
					for k, v := range c.coefs[i : i+64] {
						blk[k] = int32(v)
					}
					idctISLOW(&blk, c.qt, c.plane[by*8*c.stride+bx*8:], c.stride)
				}
			}
			c.coefs = nil
		}
	}
	for i := range d.comps {
		if c := &d.comps[i]; c.qt == nil {
			// A component no scan carried: libjpeg's zeroed coefficients
			// (and zeroed multipliers) give mid-grey.
			for j := range c.plane {
				c.plane[j] = 128
			}
		}
	}
	d.emitRows(d.h)
	return d.out
}

// emitRows converts output rows d.outDone..y1-1 into d.out (allocated, with
// the upsamplers, on the first call). A single-scan sequential image is
// converted one MCU row behind the decoding, while its samples are still in
// cache; other images at the end.
func (d *jpegDecoder) emitRows(y1 int) {
	w := d.w
	nc := len(d.comps)
	if d.out == nil {
		// Each output row takes one full-resolution row of every
		// component: straight from its plane, or upsampled into a buffer.
		d.ups = make([]*upsampler, nc)
		d.bufs = make([][]uint8, nc)
		for i := range d.comps {
			c := &d.comps[i]
			hs, vs := d.hmax/c.h, d.vmax/c.v
			if hs != 1 || vs != 1 {
				d.ups[i] = newUpsampler(c.plane, c.stride, c.cw, c.ch, hs, vs)
				d.bufs[i] = make([]uint8, w)
			}
		}
		d.out = NewRGB(w, d.h)
	}
	var rows [jpegMaxComps][]uint8
	transform := d.colorTransform()
	for y := d.outDone; y < y1; y++ {
		for i := range d.comps {
			if d.ups[i] != nil {
				d.ups[i].row(d.bufs[i], y)
				rows[i] = d.bufs[i]
			} else {
				c := &d.comps[i]
				rows[i] = c.plane[y*c.stride : y*c.stride+w]
			}
		}
		dst := d.out.Pix[3*y*w : 3*(y+1)*w]
		switch {
		case nc == 1:
			for x, v := range rows[0][:w] {
				dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
			}
		case nc == 3 && transform:
			yr, cb, cr := rows[0][:w], rows[1][:w], rows[2][:w]
			for x := range yr {
				p := dst[3*x : 3*x+3 : 3*x+3]
				p[0], p[1], p[2] = jpegYCCToRGB(yr[x], cb[x], cr[x])
			}
		case nc == 3:
			r, g, b := rows[0][:w], rows[1][:w], rows[2][:w]
			for x := range r {
				dst[3*x], dst[3*x+1], dst[3*x+2] = r[x], g[x], b[x]
			}
		default:
			p0, p1, p2, p3 := rows[0][:w], rows[1][:w], rows[2][:w], rows[3][:w]
			for x := range p0 {
				c, m, yy, k := p0[x], p1[x], p2[x], p3[x]
				if transform {
					// libjpeg's ycck_cmyk_convert: CMY = 255 − RGB of YCC.
					r, g, b := jpegYCCToRGB(c, m, yy)
					c, m, yy = 255-r, 255-g, 255-b
				}
				// Pillow reads CMYK JPEGs as "CMYK;I" (inverted).
				dst[3*x], dst[3*x+1], dst[3*x+2] = cmykToRGB(255-c, 255-m, 255-yy, 255-k)
			}
		}
	}
	d.outDone = max(d.outDone, y1)
}

// colorTransform reports whether libjpeg would treat a 3-component frame as
// YCbCr (else RGB) or a 4-component one as YCCK (else CMYK)
// (jdapimin.c default_decompress_parms).
func (d *jpegDecoder) colorTransform() bool {
	if len(d.comps) == 3 {
		switch {
		case d.jfif:
			return true
		case d.adobe:
			return d.adobeXform != 0
		}
		return !(d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B')
	}
	return d.adobe && d.adobeXform != 0
}
