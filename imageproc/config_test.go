package imageproc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blipConfig is the preprocessor_config.json of the Salesforce BLIP uploads
// (blip-itm.md §4.1).
const blipConfig = `{
  "do_normalize": true,
  "do_pad": true,
  "do_rescale": true,
  "do_resize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_processor_type": "BlipImageProcessor",
  "image_std": [0.26862954, 0.26130258, 0.27577711],
  "processor_class": "BlipProcessor",
  "resample": 3,
  "rescale_factor": 0.00392156862745098,
  "size": {"height": 384, "width": 384},
  "size_divisor": 32
}`

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "preprocessor_config.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigBLIP(t *testing.T) {
	c, err := LoadConfig(writeTemp(t, blipConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c != DefaultConfig() {
		t.Errorf("got %+v, want DefaultConfig %+v", c, DefaultConfig())
	}
	if c.RescaleFactor != 1.0/255 {
		t.Errorf("rescale_factor %v is not 1/255", c.RescaleFactor)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseConfigForms(t *testing.T) {
	cases := []struct {
		json string
		want func(*Config)
	}{
		{`{}`, func(*Config) {}},
		{`{"size": 224}`, func(c *Config) { c.Height, c.Width = 224, 224 }},
		{`{"size": [200, 100]}`, func(c *Config) { c.Height, c.Width = 200, 100 }},
		{`{"size": {"height": 10, "width": 20}}`, func(c *Config) { c.Height, c.Width = 10, 20 }},
		{`{"size": null, "resample": null}`, func(*Config) {}},
		{`{"image_mean": 0.5, "image_std": [1, 2, 3]}`, func(c *Config) { c.ImageMean = [3]float64{0.5, 0.5, 0.5}; c.ImageStd = [3]float64{1, 2, 3} }},
		{`{"do_convert_rgb": false, "do_resize": false, "resample": 2}`, func(c *Config) { c.DoConvertRGB, c.DoResize, c.Resample = false, false, 2 }},
		{`{"do_normalize": false, "image_std": [0, 0, 0]}`, func(c *Config) { c.DoNormalize = false; c.ImageStd = [3]float64{} }},
		{`{"rescale_factor": 1}`, func(c *Config) { c.RescaleFactor = 1 }},
	}
	for _, tc := range cases {
		got, err := ParseConfig([]byte(tc.json), "p.json")
		if err != nil {
			t.Errorf("%s: %v", tc.json, err)
			continue
		}
		want := DefaultConfig()
		tc.want(&want)
		if got != want {
			t.Errorf("%s: got %+v, want %+v", tc.json, got, want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ json, field, text string }{
		{`[1, 2]`, "", "not a JSON object"},
		{`{"size": {"shortest_edge": 384}}`, "size", "shortest_edge"},
		{`{"size": {"height": 384}}`, "size", "height"},
		{`{"size": 0}`, "size", "1..16384"},
		{`{"size": {"height": -5, "width": 10}}`, "size", "1..16384"},
		{`{"size": 100000}`, "size", "1..16384"},
		{`{"size": 38.5}`, "size", "integer"},
		{`{"size": [1, 2, 3]}`, "size", "[height, width]"},
		{`{"size": "384"}`, "size", "integer"},
		{`{"resample": 2}`, "resample", "only 3 (PIL BICUBIC)"},
		{`{"resample": "bicubic"}`, "resample", "integer"},
		{`{"image_std": [0.2, 0, 0.2]}`, "image_std", "non-zero"},
		{`{"image_std": [1e-50, 1, 1]}`, "image_std", "non-zero"},
		{`{"image_std": 0}`, "image_std", "non-zero"},
		{`{"image_mean": [0.5, 0.5]}`, "image_mean", "3 values"},
		{`{"image_mean": [0.5, 0.5, 0.5, 0.5]}`, "image_mean", "3 values"},
		{`{"image_mean": [1e300, 0, 0]}`, "image_mean", "not finite"},
		{`{"image_mean": "x"}`, "image_mean", "number"},
		{`{"rescale_factor": 0}`, "rescale_factor", "positive"},
		{`{"rescale_factor": -1}`, "rescale_factor", "positive"},
		{`{"rescale_factor": "1/255"}`, "rescale_factor", "number"},
		{`{"do_resize": "yes"}`, "do_resize", "true or false"},
	}
	for _, tc := range cases {
		_, err := ParseConfig([]byte(tc.json), "some/dir/preprocessor_config.json")
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", tc.json, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "some/dir/preprocessor_config.json") || !strings.Contains(msg, tc.text) ||
			(tc.field != "" && !strings.Contains(msg, `"`+tc.field+`"`)) {
			t.Errorf("%s: message %q should name the file, field %q and say %q", tc.json, msg, tc.field, tc.text)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadConfig(writeTemp(t, "{not json")); !errors.Is(err, ErrConfig) {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestPreprocessRejectsBadInput(t *testing.T) {
	c := DefaultConfig()
	if _, err := c.Preprocess(&RGB{}); err == nil {
		t.Error("empty image accepted")
	}
	if _, err := c.Preprocess(&RGB{W: 2, H: 2, Pix: make([]uint8, 11)}); err == nil {
		t.Error("inconsistent image accepted")
	}
	c.ImageStd[1] = 0
	if _, err := c.Preprocess(NewRGB(2, 2)); !errors.Is(err, ErrConfig) {
		t.Errorf("std 0: %v", err)
	}
}
