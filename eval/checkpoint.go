package eval

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"
)

// The checkpoint file lets an interrupted evaluation resume. It is an
// append-only log: a header naming the run (a fingerprint of the
// annotations, images root, model, protocol, device, precision and k),
// then records, each [kind u8][length u64][payload][crc32 u32] (little
// endian, the CRC of the payload):
//
//	recImages  the images kept (u32 count, u32 entry indices) and their
//	           ITC embeddings (u32 dim, float32 rows)
//	recTexts   the texts' ITC embeddings (u32 count, u32 dim, float32
//	           rows) and the number cut to the protocol's length (u32)
//	recITM     one image's ITM match logits: u32 image, u32 n, n × u32
//	           text, n × float32 logit
//
// A record cut short by an interruption (or damaged) ends the log there:
// it and anything after it are dropped and the file is truncated before
// appending. Image features (1.8 MB per image for the base models) are not
// stored: images whose ITM work remains are encoded again on resume.
const checkpointMagic = "blipcuda eval checkpoint v1\n"

const (
	recImages byte = 1
	recTexts  byte = 2
	recITM    byte = 3
)

// maxRecord bounds a record's length when reading (a damaged length field
// must not allocate without bound).
const maxRecord = 1 << 34

// syncEvery is how often appended records are flushed and synced.
const syncEvery = 10 * time.Second

// checkpointState is what a checkpoint file held.
type checkpointState struct {
	kept      []int       // entry indices of the images evaluated
	imgEmb    [][]float32 // per kept image
	txtEmb    [][]float32
	truncated int
	itm       map[int]itmResult // by kept image index
}

// itmResult is one image's ITM match logits for its candidate texts.
type itmResult struct {
	texts  []int32 // ascending
	logits []float32
}

// checkpoint appends records to the file.
type checkpoint struct {
	path     string
	records  int // appended or read back
	f        *os.File
	w        *bufio.Writer
	lastSync time.Time
}

// openCheckpoint opens path for the run named by fingerprint. A file for
// the same run is read back (its state returned) and appended to; a file
// for another run, or one that is not a checkpoint, is replaced, and
// replaced says why.
func openCheckpoint(path, fingerprint string) (cp *checkpoint, st *checkpointState, replaced string, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, "", fmt.Errorf("checkpoint %s: %w", path, unwrapPath(err))
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	var end int64
	if info.Size() > 0 {
		st, end, replaced = readCheckpoint(f, fingerprint)
	}
	if st == nil {
		// New, or not ours: start over with a header.
		if err := f.Truncate(0); err != nil {
			return nil, nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
		}
		hdr := checkpointHeader(fingerprint)
		if _, err := f.WriteAt(hdr, 0); err != nil {
			return nil, nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
		}
		end = int64(len(hdr))
		st = &checkpointState{itm: map[int]itmResult{}}
	}
	if err := f.Truncate(end); err != nil {
		return nil, nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return nil, nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return nil, nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	cp = &checkpoint{path: path, f: f, w: bufio.NewWriterSize(f, 1<<20), lastSync: time.Now()}
	if st.kept != nil {
		cp.records++
	}
	return cp, st, replaced, nil
}

func checkpointHeader(fingerprint string) []byte {
	var b bytes.Buffer
	b.WriteString(checkpointMagic)
	binary.Write(&b, binary.LittleEndian, uint32(len(fingerprint)))
	b.WriteString(fingerprint)
	return b.Bytes()
}

// readCheckpoint reads a checkpoint for fingerprint. It returns nil and
// the reason when the file is not one, or is another run's; otherwise the
// state and the offset where the valid records end.
func readCheckpoint(f *os.File, fingerprint string) (*checkpointState, int64, string) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, math.MaxInt64), 1<<20)
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != checkpointMagic {
		return nil, 0, "it is not a blipcuda eval checkpoint"
	}
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<20 {
		return nil, 0, "its header is damaged"
	}
	fp := make([]byte, n)
	if _, err := io.ReadFull(r, fp); err != nil {
		return nil, 0, "its header is damaged"
	}
	if string(fp) != fingerprint {
		return nil, 0, "it belongs to another run (different annotations, images, model, protocol, device, precision or k)"
	}
	st := &checkpointState{itm: map[int]itmResult{}}
	off := int64(len(checkpointMagic)) + 4 + int64(n)
	for {
		kind, payload, ok := readRecord(r)
		if !ok || st.apply(kind, payload) != nil {
			return st, off, ""
		}
		off += 1 + 8 + int64(len(payload)) + 4
	}
}

func readRecord(r io.Reader) (byte, []byte, bool) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, false
	}
	n := binary.LittleEndian.Uint64(hdr[1:])
	if n > maxRecord {
		return 0, nil, false
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, false
	}
	var crc [4]byte
	if _, err := io.ReadFull(r, crc[:]); err != nil || binary.LittleEndian.Uint32(crc[:]) != crc32.ChecksumIEEE(payload) {
		return 0, nil, false
	}
	return hdr[0], payload, true
}

// apply adds a record to the state; an error means it does not fit (the
// log ends before it).
func (st *checkpointState) apply(kind byte, p []byte) error {
	d := decoder{b: p}
	switch kind {
	case recImages:
		if st.kept != nil {
			return errors.New("images twice")
		}
		n := d.u32()
		kept := make([]int, n)
		for i := range kept {
			kept[i] = int(d.u32())
		}
		emb := d.rows(int(n), int(d.u32()))
		if d.err != nil {
			return d.err
		}
		st.kept, st.imgEmb = kept, emb
	case recTexts:
		if st.kept == nil || st.txtEmb != nil {
			return errors.New("texts out of order")
		}
		n := d.u32()
		emb := d.rows(int(n), int(d.u32()))
		tr := d.u32()
		if d.err != nil {
			return d.err
		}
		st.txtEmb, st.truncated = emb, int(tr)
	case recITM:
		if st.txtEmb == nil {
			return errors.New("ITM before embeddings")
		}
		img := int(d.u32())
		n := int(d.u32())
		res := itmResult{texts: make([]int32, 0, min(n, len(p)/8)), logits: make([]float32, 0, min(n, len(p)/8))}
		for range n {
			res.texts = append(res.texts, int32(d.u32()))
		}
		for range n {
			res.logits = append(res.logits, d.f32())
		}
		if d.err != nil || img >= len(st.kept) {
			return errors.New("bad ITM record")
		}
		st.itm[img] = res
	default:
		return fmt.Errorf("unknown record %d", kind)
	}
	if len(d.b) != 0 {
		return errors.New("record too long")
	}
	return nil
}

// decoder reads little-endian values from a payload.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.err = io.ErrUnexpectedEOF
		d.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) f32() float32 { return math.Float32frombits(d.u32()) }

func (d *decoder) rows(n, dim int) [][]float32 {
	if d.err != nil || n*dim*4 > len(d.b) || dim <= 0 {
		d.err = io.ErrUnexpectedEOF
		return nil
	}
	out := make([][]float32, n)
	for i := range out {
		row := make([]float32, dim)
		for k := range row {
			row[k] = d.f32()
		}
		out[i] = row
	}
	return out
}

// encoder builds a payload.
type encoder struct{ b []byte }

func (e *encoder) u32(v uint32)  { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) f32(v float32) { e.u32(math.Float32bits(v)) }

// rows writes the number of rows, then matrix.
func (e *encoder) rows(rows [][]float32) {
	e.u32(uint32(len(rows)))
	e.matrix(rows)
}

// matrix writes the width of the rows, then their values.
func (e *encoder) matrix(rows [][]float32) {
	dim := 0
	if len(rows) > 0 {
		dim = len(rows[0])
	}
	e.u32(uint32(dim))
	for _, r := range rows {
		for _, v := range r {
			e.f32(v)
		}
	}
}

// append writes a record; it is synced at the latest syncEvery later, or
// by sync.
func (c *checkpoint) append(kind byte, payload []byte) error {
	c.records++
	var hdr [9]byte
	hdr[0] = kind
	binary.LittleEndian.PutUint64(hdr[1:], uint64(len(payload)))
	var crc [4]byte
	binary.LittleEndian.PutUint32(crc[:], crc32.ChecksumIEEE(payload))
	for _, b := range [][]byte{hdr[:], payload, crc[:]} {
		if _, err := c.w.Write(b); err != nil {
			return fmt.Errorf("checkpoint %s: %w", c.path, err)
		}
	}
	if time.Since(c.lastSync) >= syncEvery {
		return c.sync()
	}
	return nil
}

func (c *checkpoint) sync() error {
	c.lastSync = time.Now()
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", c.path, err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", c.path, err)
	}
	return nil
}

func (c *checkpoint) appendImages(kept []int, emb [][]float32) error {
	var e encoder
	e.u32(uint32(len(kept)))
	for _, i := range kept {
		e.u32(uint32(i))
	}
	e.matrix(emb) // as many rows as kept
	if err := c.append(recImages, e.b); err != nil {
		return err
	}
	return c.sync()
}

func (c *checkpoint) appendTexts(emb [][]float32, truncated int) error {
	var e encoder
	e.rows(emb)
	e.u32(uint32(truncated))
	if err := c.append(recTexts, e.b); err != nil {
		return err
	}
	return c.sync()
}

func (c *checkpoint) appendITM(img int, r itmResult) error {
	var e encoder
	e.b = make([]byte, 0, 8+8*len(r.texts))
	e.u32(uint32(img))
	e.u32(uint32(len(r.texts)))
	for _, t := range r.texts {
		e.u32(uint32(t))
	}
	for _, v := range r.logits {
		e.f32(v)
	}
	return c.append(recITM, e.b)
}

// close syncs what was appended and closes the file; a file that holds
// no progress (a run that failed before its first record) is removed.
func (c *checkpoint) close() error {
	err := c.sync()
	err = errors.Join(err, c.f.Close())
	if c.records == 0 {
		os.Remove(c.path)
	}
	return err
}
