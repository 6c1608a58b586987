package model

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

// ErrWeights reports a checkpoint that does not hold the tensors the
// configuration requires: missing, unexpected, of the wrong shape or dtype,
// or unreadable.
var ErrWeights = errors.New("model: bad checkpoint")

// HostTensor is a float32 tensor in host memory: a view of a mapped file or
// a Go slice.
type HostTensor struct {
	Shape []int
	Data  []float32
}

// Weights holds a checkpoint's tensors in host memory, checked against a
// configuration. Close releases file mappings; tensors must not be used
// after it.
type Weights struct {
	// Source describes where the tensors came from (a file path, "random",
	// "zeros").
	Source string
	// StoredDType is the type the checkpoint stores its parameters in:
	// "float32", "float16", "bfloat16", "mixed", or "" for weights not
	// read from a file. They are held as float32 whatever it is.
	StoredDType string
	tensors     map[string]HostTensor
	closers     []func() error
}

// Tensor returns the named tensor.
func (w *Weights) Tensor(name string) (HostTensor, bool) {
	t, ok := w.tensors[name]
	return t, ok
}

// Names returns the tensor names in sorted order.
func (w *Weights) Names() []string {
	names := make([]string, 0, len(w.tensors))
	for n := range w.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close releases the memory mappings behind the tensors.
func (w *Weights) Close() error {
	var errs []error
	for _, c := range w.closers {
		errs = append(errs, c())
	}
	w.closers = nil
	w.tensors = nil
	return errors.Join(errs...)
}

// Weight file names in a checkpoint directory, in order of preference.
const (
	SafetensorsFile = "model.safetensors"
	PyTorchFile     = "pytorch_model.bin"
)

// OpenWeights loads the weights of the checkpoint directory dir:
// model.safetensors when present, else pytorch_model.bin.
func OpenWeights(dir string, cfg Config) (*Weights, error) {
	st := filepath.Join(dir, SafetensorsFile)
	if _, err := os.Stat(st); err == nil {
		// A directory or FIFO of that name is refused by name.
		return LoadSafetensors(st, cfg)
	}
	pt := filepath.Join(dir, PyTorchFile)
	if _, err := os.Stat(pt); err == nil {
		return LoadPyTorch(pt, cfg)
	}
	return nil, fmt.Errorf("%w: %s has neither %s nor %s", ErrWeights, dir, SafetensorsFile, PyTorchFile)
}

// OpenWeightsFile loads a weights file by its kind: .safetensors files as
// safetensors, anything else as a PyTorch checkpoint.
func OpenWeightsFile(path string, cfg Config) (*Weights, error) {
	if strings.HasSuffix(path, ".safetensors") {
		return LoadSafetensors(path, cfg)
	}
	return LoadPyTorch(path, cfg)
}

// rawTensor is a tensor as read from a file, before checking.
type rawTensor struct {
	shape []int
	dtype string // safetensors spelling: F32, F16, BF16, I64, ...
	// data returns the tensor as float32. It is only called for float
	// dtypes and may convert.
	data func() ([]float32, error)
}

// check builds Weights from the tensors of a file, requiring exactly the
// parameters of cfg (plus ignorable ones).
func check(path string, cfg Config, raw map[string]rawTensor) (*Weights, error) {
	w := &Weights{Source: path, tensors: make(map[string]HostTensor, len(raw))}
	params := cfg.Params()
	want := make(map[string]bool, len(params))
	var missing []string
	for _, p := range params {
		want[p.Name] = true
		r, ok := raw[p.Name]
		if !ok {
			missing = append(missing, p.Name)
			continue
		}
		if !slices.Equal(r.shape, p.Shape) {
			return nil, fmt.Errorf("%w: %s: tensor %s has shape %v, the config requires %v",
				ErrWeights, path, p.Name, r.shape, p.Shape)
		}
		switch r.dtype {
		case "F32", "F16", "BF16":
		default:
			return nil, fmt.Errorf("%w: %s: tensor %s has dtype %s, want F32, F16 or BF16",
				ErrWeights, path, p.Name, r.dtype)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s: %d tensors missing, e.g. %s",
			ErrWeights, path, len(missing), strings.Join(first(missing, 3), ", "))
	}
	var unexpected []string
	for name := range raw {
		if !want[name] && !isIgnored(name) {
			unexpected = append(unexpected, name)
		}
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		for i, n := range unexpected {
			unexpected[i] = bounded.Quote(n)
		}
		return nil, fmt.Errorf("%w: %s: %d unexpected tensors, e.g. %s",
			ErrWeights, path, len(unexpected), strings.Join(first(unexpected, 3), ", "))
	}
	for _, p := range params {
		data, err := raw[p.Name].data()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: tensor %s: %v", ErrWeights, path, p.Name, err)
		}
		if len(data) != p.Len() {
			return nil, fmt.Errorf("%w: %s: tensor %s has %d values, want %d",
				ErrWeights, path, p.Name, len(data), p.Len())
		}
		if i := nonFinite(data); i >= 0 {
			return nil, fmt.Errorf("%w: %s: tensor %s holds %v at index %d: the checkpoint is corrupt (NaN or infinite weights give meaningless scores)",
				ErrWeights, path, p.Name, data[i], i)
		}
		w.tensors[p.Name] = HostTensor{Shape: p.Shape, Data: data}
		dt := map[string]string{"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[raw[p.Name].dtype]
		switch w.StoredDType {
		case "":
			w.StoredDType = dt
		case dt:
		default:
			w.StoredDType = "mixed"
		}
	}
	return w, nil
}

// nonFinite returns the index of the first NaN or infinite value of d, or
// -1: one pass, done once at load.
func nonFinite(d []float32) int {
	for i, v := range d {
		// v-v is NaN exactly when v is NaN or ±Inf.
		if v-v != 0 {
			return i
		}
	}
	return -1
}

// checkHolds compares the configuration with the bytes of tensor data a
// weights file declares, before anything proportional to the configuration
// is built: every parameter takes at least 2 bytes (float16).
func checkHolds(path string, cfg Config, dataBytes int64) error {
	n := cfg.NumParams()
	if dataBytes < 2*n {
		return fmt.Errorf("%w: %s: config.json describes %d parameters (at least %s at 16 bits), but the file holds %s of tensor data",
			ErrWeights, path, n, byteSize(2*n), byteSize(dataBytes))
	}
	return nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// RandomWeights returns weights drawn from a fixed-seed generator, shaped as
// transformers initialises BLIP: linear and embedding weights normal with
// std 0.02, LayerNorm weights one; unlike transformers, biases are also
// normal with std 0.02 (not zero), so that tests exercise them. The same seed
// always gives the same weights. Useful for tests, benchmarks and
// inspecting the architecture without a download.
func RandomWeights(cfg Config, seed uint64) *Weights {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	w := &Weights{Source: fmt.Sprintf("random(seed=%d)", seed), tensors: map[string]HostTensor{}}
	for _, p := range cfg.Params() {
		d := make([]float32, p.Len())
		switch {
		case strings.HasSuffix(p.Name, "LayerNorm.weight"), strings.Contains(p.Name, "layer_norm") && strings.HasSuffix(p.Name, ".weight"),
			p.Name == "vision_model.post_layernorm.weight":
			for i := range d {
				d[i] = 1
			}
		default:
			// Weights, embeddings and biases alike: small non-zero biases
			// exercise the bias paths.
			for i := range d {
				d[i] = float32(r.NormFloat64() * 0.02)
			}
		}
		w.tensors[p.Name] = HostTensor{Shape: p.Shape, Data: d}
	}
	return w
}

// ZeroWeights returns weights that are all zero: the architecture alone, for
// inspecting shapes and memory without a checkpoint.
func ZeroWeights(cfg Config) *Weights {
	w := &Weights{Source: "zeros", tensors: map[string]HostTensor{}}
	for _, p := range cfg.Params() {
		w.tensors[p.Name] = HostTensor{Shape: p.Shape, Data: make([]float32, p.Len())}
	}
	return w
}
