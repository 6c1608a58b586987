package model

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"unsafe"

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
// refused with an error naming it. Nothing is ever executed. Storage sizes
// are checked against the archive before anything is allocated.
func LoadPyTorch(file string, cfg Config) (w *Weights, err error) {
	defer func() {
		if r := recover(); r != nil {
			w, err = nil, fmt.Errorf("%w: %s: malformed PyTorch checkpoint: %v", ErrWeights, file, r)
		}
	}()
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a PyTorch zip checkpoint (torch.save's legacy format is not supported): %v",
			ErrWeights, file, err)
	}
	return loadPyTorchZip(file, zr, cfg)
}

// loadPyTorchZip reads the state dict of an opened PyTorch archive.
func loadPyTorchZip(file string, zr *zip.Reader, cfg Config) (w *Weights, err error) {
	defer func() {
		if r := recover(); r != nil {
			w, err = nil, fmt.Errorf("%w: %s: malformed PyTorch checkpoint: %v", ErrWeights, file, r)
		}
	}()
	var pkl *zip.File
	records := map[string]*zip.File{}
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
		case base == "constants.pkl":
			return nil, fmt.Errorf("%w: %s: a TorchScript archive, not a state dict", ErrWeights, file)
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("%w: %s: no data.pkl in the archive", ErrWeights, file)
	}
	if pkl.UncompressedSize64 > 64<<20 {
		return nil, fmt.Errorf("%w: %s: data.pkl is %d bytes, too large for a state dict", ErrWeights, file, pkl.UncompressedSize64)
	}
	rc, err := pkl.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrWeights, file, err)
	}
	pklBytes, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: data.pkl: %v", ErrWeights, file, err)
	}
	if err := scanPickle(pklBytes); err != nil {
		return nil, fmt.Errorf("%w: %s: data.pkl: %v", ErrWeights, file, err)
	}

	u := pickle.NewUnpickler(bytes.NewReader(pklBytes))
	u.FindClass = findClass
	u.PersistentLoad = func(id any) (any, error) { return persistentLoad(id, records) }
	obj, err := func() (obj any, err error) {
		// gopickle indexes its tables with bytes from the file: turn its
		// panics on malformed pickles into errors.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("malformed pickle: %v", r)
			}
		}()
		return u.Load()
	}()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: data.pkl: %v", ErrWeights, file, err)
	}

	entries, err := stateDictEntries(obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrWeights, file, err)
	}
	cache := map[string][]float32{}
	raw := make(map[string]rawTensor, len(entries))
	for name, v := range entries {
		t, ok := v.(*ptTensor)
		if !ok {
			return nil, fmt.Errorf("%w: %s: entry %q is a %T, not a tensor", ErrWeights, file, name, v)
		}
		if err := t.checkContiguous(); err != nil {
			return nil, fmt.Errorf("%w: %s: tensor %s: %v", ErrWeights, file, name, err)
		}
		tt := t
		raw[name] = rawTensor{shape: tt.size, dtype: tt.storage.dtype, data: func() ([]float32, error) {
			all, ok := cache[tt.storage.key]
			if !ok {
				var err error
				all, err = tt.storage.read()
				if err != nil {
					return nil, err
				}
				cache[tt.storage.key] = all
			}
			n := tt.numel()
			return all[tt.offset : tt.offset+n : tt.offset+n], nil
		}}
	}
	return check(file, cfg, raw)
}

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

func persistentLoad(id any, records map[string]*zip.File) (any, error) {
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
		return nil, fmt.Errorf("malformed storage reference %v", id)
	}
	rec, ok := records[key]
	if !ok {
		return nil, fmt.Errorf("storage %q has no record in the archive", key)
	}
	if want := uint64(numel) * uint64(cls.elemSize); rec.UncompressedSize64 != want {
		return nil, fmt.Errorf("storage %q: record holds %d bytes, the pickle says %d elements of %d bytes",
			key, rec.UncompressedSize64, numel, cls.elemSize)
	}
	return &ptStorage{ptStorageClass: cls, key: key, numel: numel, rec: rec}, nil
}

// read returns the storage's values as float32.
func (s *ptStorage) read() ([]float32, error) {
	if s.dtype == "I64" {
		return nil, fmt.Errorf("storage %q holds int64 values, not floats", s.key)
	}
	rc, err := s.rec.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if s.dtype == "F32" && nativeLittleEndian {
		out := make([]float32, s.numel)
		if s.numel == 0 {
			return out, nil
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*s.numel)
		if _, err := io.ReadFull(rc, b); err != nil {
			return nil, fmt.Errorf("storage %q: %w", s.key, err)
		}
		return out, nil
	}
	b := make([]byte, s.numel*s.elemSize)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("storage %q: %w", s.key, err)
	}
	return bytesToF32(b, s.dtype)
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
		want *= t.size[i]
		if want > maxDim*maxDim {
			return fmt.Errorf("size %v too large", t.size)
		}
	}
	if t.offset < 0 || t.offset+want > t.storage.numel {
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
