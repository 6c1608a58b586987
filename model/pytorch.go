package model

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"strings"
	"unsafe"

	"github.com/blipcuda/blipcuda/internal/bounded"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// LoadPyTorch reads a pytorch_model.bin checkpoint (the zip format torch.save
// has written since PyTorch 1.6: data.pkl plus one record per storage) and
// checks its tensors against cfg.
//
// The pickle is untrusted input. Only the globals a tensor state dict needs
// are resolved — collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
// the Float/Half/BFloat16/Long storage classes — and any other global is
// refused with an error naming it. Nothing is ever executed. Everything the
// file declares is bounded by what a state dict of cfg needs before it is
// allocated: the zip directory's entries, data.pkl's size and its stack,
// marks and memo, each storage's elements (at most the configuration's
// parameters, agreeing with its record's declared size and compression),
// and the tensor views (checked arithmetic). Only the slice of a storage a
// tensor uses is read; NaN and infinite weights are refused.
func LoadPyTorch(file string, cfg Config) (w *Weights, err error) {
	defer recoverParse(file, "PyTorch checkpoint", &w, &err)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, st, err := bounded.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	defer f.Close()
	if n, err := zipEntries(f, st.Size()); err == nil && n > zipEntryLimit(cfg) {
		return nil, fmt.Errorf("%w: %s: the zip directory declares %d entries, more than the %d a state dict of this configuration needs",
			ErrWeights, file, n, zipEntryLimit(cfg))
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a PyTorch zip checkpoint (torch.save's legacy format is not supported): %v",
			ErrWeights, file, err)
	}
	return loadPyTorchZip(file, zr, cfg)
}

// parsePanic is a panic recovered while parsing a weights file. Its message
// never carries the runtime's text (a slice bound, a makeslice size), which
// would mean nothing to the user; the fuzz targets treat it as a failure,
// since every malformed input should be refused by a check first.
type parsePanic struct {
	what  string
	value any
}

func (p *parsePanic) Error() string {
	return fmt.Sprintf("malformed %s: its structure is inconsistent", p.what)
}

// recoverParse turns a panic while parsing file into an ErrWeights error.
func recoverParse(file, what string, w **Weights, err *error) {
	if r := recover(); r != nil {
		*w, *err = nil, fmt.Errorf("%w: %s: %w", ErrWeights, file, &parsePanic{what: what, value: r})
	}
}

// checkRecord refuses a zip entry whose declared sizes are impossible for
// its compression: a stored entry must be as long as it says, a deflated
// one cannot expand more than deflate can (1032:1), and no other method
// is read. name names the entry in errors.
func checkRecord(f *zip.File) error {
	switch f.Method {
	case zip.Store:
		if f.CompressedSize64 != f.UncompressedSize64 {
			return fmt.Errorf("record %s is stored uncompressed but declares %d bytes in %d", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	case zip.Deflate:
		if f.UncompressedSize64/1032 > f.CompressedSize64 {
			return fmt.Errorf("record %s declares %d bytes deflated into %d, more than deflate can expand", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return fmt.Errorf("record %s uses zip compression method %d (torch.save stores records uncompressed)", f.Name, f.Method)
	}
	return nil
}

// headerLimit bounds the metadata of a weights file by what the tensors of
// cfg need: a safetensors header or a pickled state dict takes about 150
// bytes per tensor (a few more are ignored buffers such as position_ids).
func headerLimit(cfg Config) int64 {
	return 64<<10 + 2048*int64(len(cfg.Params()))
}

// zipEntryLimit bounds the entries of a checkpoint's zip directory: a
// record per tensor plus data.pkl, version, byteorder and the like.
func zipEntryLimit(cfg Config) uint64 {
	return 64 + 2*uint64(len(cfg.Params()))
}

// zipEntries reads the number of entries the end of central directory
// record of a zip archive declares (the zip64 one when present), so that
// a directory of millions of entries is refused before archive/zip
// allocates one record for each.
func zipEntries(r io.ReaderAt, size int64) (uint64, error) {
	const eocdLen, maxComment = 22, 65535
	n := min(size, eocdLen+maxComment)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return 0, err
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < eocdLen {
		return 0, zip.ErrFormat
	}
	count := uint64(binary.LittleEndian.Uint16(buf[i+10:]))
	if count != 0xffff {
		return count, nil
	}
	// Zip64: the locator (20 bytes) precedes the record and gives the
	// offset of the zip64 end of central directory record.
	at := size - n + int64(i) - 20
	if at < 0 {
		return 0, zip.ErrFormat
	}
	loc := make([]byte, 20)
	if _, err := r.ReadAt(loc, at); err != nil || binary.LittleEndian.Uint32(loc) != 0x07064b50 {
		return 0, zip.ErrFormat
	}
	rec := make([]byte, 56)
	off := binary.LittleEndian.Uint64(loc[8:])
	if off > uint64(size) {
		return 0, zip.ErrFormat
	}
	if _, err := r.ReadAt(rec, int64(off)); err != nil || binary.LittleEndian.Uint32(rec) != 0x06064b50 {
		return 0, zip.ErrFormat
	}
	return binary.LittleEndian.Uint64(rec[32:]), nil
}

// loadPyTorchZip reads the state dict of an opened PyTorch archive.
func loadPyTorchZip(file string, zr *zip.Reader, cfg Config) (w *Weights, err error) {
	defer recoverParse(file, "PyTorch checkpoint", &w, &err)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if n := uint64(len(zr.File)); n > zipEntryLimit(cfg) {
		return nil, fmt.Errorf("%w: %s: the zip directory holds %d entries, more than the %d a state dict of this configuration needs",
			ErrWeights, file, n, zipEntryLimit(cfg))
	}
	var pkl *zip.File
	records := map[string]*zip.File{}
	var recordBytes uint64
	for _, f := range zr.File {
		dir, base := path.Split(f.Name)
		switch {
		case base == "data.pkl" && strings.Count(f.Name, "/") == 1:
			if pkl != nil {
				return nil, fmt.Errorf("%w: %s: more than one data.pkl", ErrWeights, file)
			}
			pkl = f
		case strings.HasSuffix(dir, "/data/") && strings.Count(f.Name, "/") == 2:
			records[base] = f
			recordBytes += min(f.UncompressedSize64, 1<<62-recordBytes) // saturates at 2^62
		case base == "constants.pkl":
			return nil, fmt.Errorf("%w: %s: a TorchScript archive, not a state dict", ErrWeights, file)
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("%w: %s: no data.pkl in the archive", ErrWeights, file)
	}
	limit := headerLimit(cfg)
	if err := checkRecord(pkl); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrWeights, file, err)
	}
	if pkl.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w: %s: data.pkl is %d bytes, more than the %d a state dict of this configuration needs",
			ErrWeights, file, pkl.UncompressedSize64, limit)
	}
	rc, err := pkl.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrWeights, file, err)
	}
	pklBytes, err := bounded.ReadAll("data.pkl", rc, limit)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrWeights, file, err)
	}
	if err := scanPickle(pklBytes); err != nil {
		return nil, fmt.Errorf("%w: %s: data.pkl: %v", ErrWeights, file, err)
	}

	maxNumel := cfg.NumParams()
	u := pickle.NewUnpickler(bytes.NewReader(pklBytes))
	u.FindClass = findClass
	u.PersistentLoad = func(id any) (any, error) { return persistentLoad(id, records, maxNumel) }
	obj, err := func() (obj any, err error) {
		// gopickle indexes its tables with bytes from the file: scanPickle
		// refuses what would make it panic, and this is the last line.
		defer func() {
			if r := recover(); r != nil {
				err = &parsePanic{what: "pickle", value: r}
			}
		}()
		return u.Load()
	}()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: data.pkl: %w", ErrWeights, file, err)
	}

	entries, err := stateDictEntries(obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrWeights, file, err)
	}
	// Deflated records are read from their start up to the slice a tensor
	// uses: bound the bytes inflated in all to twice the parameters' size.
	budget := &inflateBudget{left: 2*4*maxNumel + 64<<20}
	raw := make(map[string]rawTensor, len(entries))
	for name, v := range entries {
		t, ok := v.(*ptTensor)
		if !ok {
			return nil, fmt.Errorf("%w: %s: entry %s is a %T, not a tensor", ErrWeights, file, bounded.Quote(name), v)
		}
		if err := t.checkContiguous(); err != nil {
			return nil, fmt.Errorf("%w: %s: tensor %s: %v", ErrWeights, file, bounded.Quote(name), err)
		}
		tt := t
		raw[name] = rawTensor{shape: tt.size, dtype: tt.storage.dtype, data: func() ([]float32, error) {
			return tt.read(budget)
		}}
	}
	// The zip directory declares the tensor data: compare it with the
	// configuration before any tensor is read.
	if len(raw) > 0 {
		if err := checkHolds(file, cfg, int64(recordBytes)); err != nil {
			return nil, err
		}
	}
	return check(file, cfg, raw)
}

// inflateBudget counts the bytes left to inflate from deflated records.
type inflateBudget struct{ left int64 }

// stateDictEntries returns the name → value pairs of an unpickled state
// dict (an OrderedDict, or a plain dict).
func stateDictEntries(obj any) (map[string]any, error) {
	out := map[string]any{}
	switch d := obj.(type) {
	case *types.OrderedDict:
		for k, e := range d.Map {
			s, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("state dict key %v is not a string", k)
			}
			out[s] = e.Value
		}
	case *types.Dict:
		for _, e := range *d {
			s, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("state dict key %v is not a string", e.Key)
			}
			out[s] = e.Value
		}
	default:
		return nil, fmt.Errorf("data.pkl holds a %T, not a state dict", obj)
	}
	return out, nil
}

// ptStorageClass is a torch.<Type>Storage global.
type ptStorageClass struct {
	dtype    string // safetensors spelling
	elemSize int
}

var storageClasses = map[string]ptStorageClass{
	"FloatStorage":    {"F32", 4},
	"HalfStorage":     {"F16", 2},
	"BFloat16Storage": {"BF16", 2},
	"LongStorage":     {"I64", 8},
}

// findClass resolves the globals a state dict may reference and refuses the
// rest.
func findClass(module, name string) (any, error) {
	switch {
	case module == "torch._utils" && name == "_rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case module == "torch":
		if c, ok := storageClasses[name]; ok {
			return c, nil
		}
	}
	return nil, fmt.Errorf("forbidden global %s.%s: a checkpoint may hold only tensors", module, name)
}

// ptStorage is a storage record of the archive, read lazily.
type ptStorage struct {
	ptStorageClass
	key   string
	numel int
	rec   *zip.File
}

// persistentLoad resolves a storage reference of the pickle against the
// archive's records. A storage may hold at most maxNumel elements (all the
// parameters of the configuration), and its record must declare exactly
// its size.
func persistentLoad(id any, records map[string]*zip.File, maxNumel int64) (any, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() != 5 {
		return nil, fmt.Errorf("unexpected persistent id %v", id)
	}
	if kind, _ := t.Get(0).(string); kind != "storage" {
		return nil, fmt.Errorf("unexpected persistent id kind %v", t.Get(0))
	}
	cls, ok := t.Get(1).(ptStorageClass)
	if !ok {
		return nil, fmt.Errorf("unexpected storage type %v", t.Get(1))
	}
	key, ok1 := t.Get(2).(string)
	numel, ok2 := t.Get(4).(int)
	if !ok1 || !ok2 || numel < 0 {
		return nil, fmt.Errorf("malformed storage reference")
	}
	if int64(numel) > maxNumel {
		return nil, fmt.Errorf("storage %s holds %d elements, more than the %d parameters of the whole configuration",
			bounded.Quote(key), numel, maxNumel)
	}
	rec, ok := records[key]
	if !ok {
		return nil, fmt.Errorf("storage %s has no record in the archive", bounded.Quote(key))
	}
	if err := checkRecord(rec); err != nil {
		return nil, err
	}
	if want := uint64(numel) * uint64(cls.elemSize); rec.UncompressedSize64 != want {
		return nil, fmt.Errorf("storage %q: record holds %d bytes, the pickle says %d elements of %d bytes",
			key, rec.UncompressedSize64, numel, cls.elemSize)
	}
	return &ptStorage{ptStorageClass: cls, key: key, numel: numel, rec: rec}, nil
}

// read returns the tensor's values as float32, reading only the slice of
// its storage it uses: in place from a stored record, or by inflating the
// record up to the slice's end (charged to budget) from a deflated one.
func (t *ptTensor) read(budget *inflateBudget) ([]float32, error) {
	s := t.storage
	if s.dtype == "I64" {
		return nil, fmt.Errorf("storage %s holds int64 values, not floats", bounded.Quote(s.key))
	}
	// checkContiguous bounded offset+numel by the storage's numel, itself
	// bounded by the configuration's parameters: no product overflows.
	n, es := int64(t.numel()), int64(s.elemSize)
	off, want := int64(t.offset)*es, n*es
	var out []float32
	var b []byte
	if s.dtype == "F32" && nativeLittleEndian {
		out = make([]float32, n)
		if n > 0 {
			b = unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), want)
		}
	} else {
		b = make([]byte, want)
	}
	if err := s.readAt(b, off, budget); err != nil {
		return nil, fmt.Errorf("storage %s: %w", bounded.Quote(s.key), err)
	}
	if out != nil {
		return out, nil
	}
	return bytesToF32(b, s.dtype)
}

// readAt fills b with the record's bytes from off.
func (s *ptStorage) readAt(b []byte, off int64, budget *inflateBudget) error {
	if s.rec.Method == zip.Store {
		raw, err := s.rec.OpenRaw()
		if err != nil {
			return err
		}
		if ra, ok := raw.(io.ReaderAt); ok {
			_, err := ra.ReadAt(b, off)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if budget.left -= off + int64(len(b)); budget.left < 0 {
		return fmt.Errorf("deflated records would need more than twice the model's size inflated to read")
	}
	rc, err := s.rec.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, off); err != nil {
		return err
	}
	_, err = io.ReadFull(rc, b)
	return err
}

// ptTensor is the result of torch._utils._rebuild_tensor_v2.
type ptTensor struct {
	storage *ptStorage
	offset  int
	size    []int
	stride  []int
}

func (t *ptTensor) numel() int {
	n := 1
	for _, d := range t.size {
		n *= d
	}
	return n
}

// checkContiguous requires a row-major layout that lies inside its storage.
func (t *ptTensor) checkContiguous() error {
	if len(t.size) > 8 {
		return fmt.Errorf("rank %d: no parameter has more than 4 dimensions", len(t.size))
	}
	if len(t.size) != len(t.stride) {
		return fmt.Errorf("size %v and stride %v differ in rank", t.size, t.stride)
	}
	want := 1
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] < 0 || t.size[i] > maxDim*maxDim {
			return fmt.Errorf("bad size %v", t.size)
		}
		if t.size[i] != 1 && t.stride[i] != want {
			return fmt.Errorf("not contiguous (size %v, stride %v)", t.size, t.stride)
		}
		// Checked before multiplying: want·size stays ≤ maxDim².
		if t.size[i] != 0 && want > maxDim*maxDim/t.size[i] {
			return fmt.Errorf("size %v too large", t.size)
		}
		want *= t.size[i]
	}
	if t.offset < 0 || t.offset > t.storage.numel-want { // no overflow: both operands are bounded
		return fmt.Errorf("offset %d + %d elements exceeds its storage of %d", t.offset, want, t.storage.numel)
	}
	return nil
}

// rebuildTensor implements torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{}

// Call builds a ptTensor from the pickled arguments.
func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments", len(args))
	}
	st, ok := args[0].(*ptStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage is a %T", args[0])
	}
	off, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: offset is a %T", args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	return &ptTensor{storage: st, offset: off, size: size, stride: stride}, nil
}

func intTuple(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%T is not a tuple", v)
	}
	out := make([]int, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok {
			return nil, fmt.Errorf("element %d is a %T", i, t.Get(i))
		}
		out[i] = n
	}
	return out, nil
}
