package imageproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/blipcuda/blipcuda/internal/bounded"
)

// ResampleBicubic is PIL's Image.Resampling.BICUBIC, the only resample
// filter this package implements.
const ResampleBicubic = 3

// MaxSize is the largest accepted output height or width.
const MaxSize = 16384

// ErrConfig is wrapped by every error about an invalid preprocessor
// configuration.
var ErrConfig = errors.New("invalid image preprocessor config")

// CLIP normalisation constants (transformers' OPENAI_CLIP_MEAN / _STD), the
// BlipImageProcessor defaults.
var (
	clipMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// Config is a BLIP checkpoint's preprocessor_config.json as used by
// transformers' BlipImageProcessor. Keys the processor ignores (do_pad,
// size_divisor, image_processor_type, processor_class, ...) are ignored here
// too.
type Config struct {
	// DoResize resizes to Height×Width (aspect ratio not preserved).
	DoResize bool
	// Height and Width are the output size ("size": {"height", "width"}).
	Height, Width int
	// Resample is the PIL filter number; only ResampleBicubic (3) is
	// implemented.
	Resample int
	// DoRescale multiplies by RescaleFactor (in float64, then cast to float32).
	DoRescale     bool
	RescaleFactor float64
	// DoNormalize computes (x − mean)/std per channel in float32.
	DoNormalize bool
	ImageMean   [3]float64
	ImageStd    [3]float64
	// DoConvertRGB is transformers' do_convert_rgb. Go decoding always
	// yields RGB (see Config.Load), so it has no effect here; it is kept so
	// that a loaded config round-trips.
	DoConvertRGB bool
}

// DefaultConfig returns BlipImageProcessor's defaults, which equal the
// published BLIP checkpoints' preprocessor_config.json: 384×384 bicubic,
// rescale by 1/255, CLIP mean and std.
func DefaultConfig() Config {
	return Config{
		DoResize:      true,
		Height:        384,
		Width:         384,
		Resample:      ResampleBicubic,
		DoRescale:     true,
		RescaleFactor: 1.0 / 255,
		DoNormalize:   true,
		ImageMean:     clipMean,
		ImageStd:      clipStd,
		DoConvertRGB:  true,
	}
}

// LoadConfig reads a preprocessor_config.json. Missing keys take
// BlipImageProcessor's defaults (DefaultConfig). Errors name the file and
// the field and wrap ErrConfig (or the os error when the file cannot be read).
func LoadConfig(path string) (Config, error) {
	data, err := bounded.ReadFile(path, bounded.ConfigLimit)
	if err != nil {
		return Config{}, fmt.Errorf("imageproc: reading preprocessor config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses the JSON of a preprocessor_config.json; name is used in
// error messages (normally the file path). See LoadConfig.
func ParseConfig(data []byte, name string) (Config, error) {
	c := DefaultConfig()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("imageproc: %s: %w: not a JSON object: %w", name, ErrConfig, err)
	}
	fieldErr := func(field string, format string, args ...any) error {
		return fmt.Errorf("imageproc: %s: field %q: %w: %s", name, field, ErrConfig, fmt.Sprintf(format, args...))
	}
	get := func(key string) (json.RawMessage, bool) {
		v, ok := raw[key]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, false
		}
		return v, true
	}
	boolField := func(key string, dst *bool) error {
		if v, ok := get(key); ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return fieldErr(key, "want true or false, got %s", v)
			}
		}
		return nil
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{
		{"do_resize", &c.DoResize}, {"do_rescale", &c.DoRescale},
		{"do_normalize", &c.DoNormalize}, {"do_convert_rgb", &c.DoConvertRGB},
	} {
		if err := boolField(f.key, f.dst); err != nil {
			return Config{}, err
		}
	}
	if v, ok := get("size"); ok {
		h, w, err := parseSize(v)
		if err != nil {
			return Config{}, fieldErr("size", "%v", err)
		}
		c.Height, c.Width = h, w
	}
	if v, ok := get("resample"); ok {
		var f float64
		if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1e6 {
			return Config{}, fieldErr("resample", "want an integer PIL filter number, got %s", v)
		}
		c.Resample = int(f)
	}
	if v, ok := get("rescale_factor"); ok {
		if err := json.Unmarshal(v, &c.RescaleFactor); err != nil {
			return Config{}, fieldErr("rescale_factor", "want a number, got %s", v)
		}
	}
	for _, f := range []struct {
		key string
		dst *[3]float64
	}{{"image_mean", &c.ImageMean}, {"image_std", &c.ImageStd}} {
		if v, ok := get(f.key); ok {
			vals, err := parseTriple(v)
			if err != nil {
				return Config{}, fieldErr(f.key, "%v", err)
			}
			*f.dst = vals
		}
	}
	if err := c.validate(name); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parseSize accepts the forms BlipImageProcessor accepts: {"height": H,
// "width": W}, a plain integer N (N×N, as BlipImageProcessor's constructor
// turns it into a square) and a [H, W] pair. {"shortest_edge": N} and the
// other aspect-preserving forms are refused: BlipImageProcessor.resize
// raises for them too.
func parseSize(v json.RawMessage) (int, int, error) {
	toInt := func(r json.RawMessage) (int, error) {
		var f float64
		if err := json.Unmarshal(r, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
			return 0, fmt.Errorf("want an integer, got %s", r)
		}
		return int(f), nil
	}
	switch t := bytes.TrimSpace(v); {
	case len(t) > 0 && t[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(t, &m); err != nil {
			return 0, 0, fmt.Errorf("malformed object: %v", err)
		}
		hv, okH := m["height"]
		wv, okW := m["width"]
		if !okH || !okW {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			return 0, 0, fmt.Errorf("BlipImageProcessor needs {\"height\", \"width\"}; got keys %q "+
				"(aspect-preserving forms such as shortest_edge are not supported by BLIP)", keys)
		}
		h, err := toInt(hv)
		if err != nil {
			return 0, 0, fmt.Errorf("height: %v", err)
		}
		w, err := toInt(wv)
		if err != nil {
			return 0, 0, fmt.Errorf("width: %v", err)
		}
		return h, w, nil
	case len(t) > 0 && t[0] == '[':
		var a []json.RawMessage
		if err := json.Unmarshal(t, &a); err != nil || len(a) != 2 {
			return 0, 0, fmt.Errorf("want [height, width], got %s", t)
		}
		h, err := toInt(a[0])
		if err != nil {
			return 0, 0, fmt.Errorf("height: %v", err)
		}
		w, err := toInt(a[1])
		if err != nil {
			return 0, 0, fmt.Errorf("width: %v", err)
		}
		return h, w, nil
	default:
		n, err := toInt(t)
		if err != nil {
			return 0, 0, err
		}
		return n, n, nil
	}
}

// parseTriple accepts three numbers or one number (broadcast, as
// transformers does).
func parseTriple(v json.RawMessage) ([3]float64, error) {
	var one float64
	if err := json.Unmarshal(v, &one); err == nil {
		return [3]float64{one, one, one}, nil
	}
	var list []float64
	if err := json.Unmarshal(v, &list); err != nil {
		return [3]float64{}, fmt.Errorf("want a number or a list of 3 numbers, got %s", v)
	}
	if len(list) != 3 {
		return [3]float64{}, fmt.Errorf("want 3 values (one per RGB channel), got %d", len(list))
	}
	return [3]float64{list[0], list[1], list[2]}, nil
}

// Validate checks that the configuration can be applied: a positive output
// size of at most MaxSize per side, the bicubic filter, a finite positive
// rescale factor, finite means and finite non-zero standard deviations.
// Settings that are switched off are not checked.
func (c Config) Validate() error { return c.validate("config") }

func (c Config) validate(name string) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("imageproc: %s: field %q: %w: %s", name, field, ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.DoResize {
		if c.Height <= 0 || c.Width <= 0 || c.Height > MaxSize || c.Width > MaxSize {
			return bad("size", "height and width must be in 1..%d, got %dx%d", MaxSize, c.Height, c.Width)
		}
		if c.Resample != ResampleBicubic {
			return bad("resample", "only 3 (PIL BICUBIC) is supported, got %d", c.Resample)
		}
	}
	if c.DoRescale && (!finite32(c.RescaleFactor) || c.RescaleFactor <= 0) {
		return bad("rescale_factor", "must be a finite positive number, got %v", c.RescaleFactor)
	}
	if c.DoNormalize {
		for i := 0; i < 3; i++ {
			m, s := c.ImageMean[i], c.ImageStd[i]
			if !finite32(m) {
				return bad("image_mean", "value %d is not finite (in float32): %v", i, m)
			}
			if !finite32(s) || float32(s) == 0 {
				return bad("image_std", "value %d must be finite and non-zero (also in float32), got %v", i, s)
			}
		}
	}
	return nil
}

// finite32 reports whether v is finite in float64 and in float32.
func finite32(v float64) bool {
	f := float64(float32(v))
	return !math.IsNaN(v) && !math.IsInf(v, 0) && !math.IsInf(f, 0)
}
