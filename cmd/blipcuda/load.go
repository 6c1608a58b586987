package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blipcuda/blipcuda"
	"github.com/blipcuda/blipcuda/hub"
	"github.com/blipcuda/blipcuda/model"
)

// modelFlags are the flags that choose and configure the model.
type modelFlags struct {
	model     string
	protocol  string
	device    string
	precision string
	threads   int
	noGraphs  bool
}

func defaultModel() string {
	if m := strings.TrimSpace(os.Getenv("BLIPCUDA_MODEL")); m != "" {
		return m
	}
	return "base-coco"
}

func (m *modelFlags) register(fs *flagSet) {
	fs.str(&m.model, "model", "m", defaultModel(), "NAME|HUB-ID|DIR",
		"the model: "+model.VariantNames()+", a Hub id (org/name) or a checkpoint directory; downloaded on first use")
	fs.str(&m.protocol, "protocol", "", "blip", "blip|hf",
		"text preparation: blip (BLIP's caption cleaning and [ENC] token, as the models were trained and evaluated) or hf (exactly transformers)")
	fs.str(&m.device, "device", "", "auto", "auto|cpu|cuda", "where the model runs")
	fs.str(&m.precision, "precision", "", "float32", "float32|float16|bfloat16",
		"compute precision (float16 and bfloat16 need a GPU backend)")
	fs.integer(&m.threads, "threads", "", 0, "N", "CPU worker threads (default: all cores)")
	fs.boolean(&m.noGraphs, "no-graphs", "", "on the GPU, launch every kernel instead of replaying captured CUDA graphs")
}

// validate checks the flag values without touching the network or the
// model files; what is wrong here is a usage error.
func (m *modelFlags) validate() error {
	switch m.protocol {
	case "blip", "hf":
	default:
		return usagef("--protocol %q: want blip or hf", m.protocol)
	}
	switch m.device {
	case "auto", "cpu", "cuda":
	default:
		return usagef("--device %q: want auto, cpu or cuda", m.device)
	}
	switch strings.ToLower(m.precision) {
	case "float32", "fp32", "f32":
		m.precision = "float32"
	case "float16", "fp16", "f16", "half":
		m.precision = "float16"
	case "bfloat16", "bf16":
		m.precision = "bfloat16"
	default:
		return usagef("--precision %q: want float32 (fp32), float16 (fp16) or bfloat16 (bf16)", m.precision)
	}
	if m.threads < 0 {
		return usagef("--threads %d: want a positive number (or 0 for all cores)", m.threads)
	}
	return checkModelName(m.model)
}

// checkModelName refuses a name that is neither an existing path, a family
// name nor a Hub id.
func checkModelName(name string) error {
	if name == "" {
		return usagef("empty model name: want %s, a Hub id (org/name) or a checkpoint directory", model.VariantNames())
	}
	if _, err := os.Stat(name); err == nil {
		return nil
	}
	if _, ok := blipcuda.RepoFor(name); !ok {
		return usagef("unknown model %q: want %s, a Hub id (org/name) or an existing checkpoint directory",
			name, model.VariantNames())
	}
	// models/x, where models/ is a directory here, is a path that does not
	// exist rather than a Hub id to look for.
	if dir, _, ok := strings.Cut(filepath.ToSlash(name), "/"); ok && !strings.HasPrefix(name, "Salesforce/") {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return usagef("--model %s: no such directory (%s/ is a local directory, so this is taken as a path, "+
				"not a Hub id; name a Hub id whose organisation is not a directory here)", name, dir)
		}
	}
	return nil
}

// hubClient returns a Hub client configured from the environment, logging
// to the command's logger and showing download progress on stderr.
func (a *app) hubClient() (*hub.Client, error) {
	opts := []hub.Option{hub.WithLogger(a.log), hub.WithUserAgent("blipcuda/" + versionString())}
	if v := strings.TrimSpace(os.Getenv("BLIPCUDA_HUB_RETRIES")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, usagef("BLIPCUDA_HUB_RETRIES=%q: want a whole number ≥ 0", v)
		}
		opts = append(opts, hub.WithRetries(n))
	}
	if r := hub.AutoReporter(a.stderrFile, a.quiet); r != nil {
		opts = append(opts, hub.WithProgress(r))
	}
	c, err := hub.FromEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("configuring the Hugging Face Hub client: %w", err)
	}
	return c, nil
}

// loadModel loads the model the flags name, downloading it on first use
// unless HF_HUB_OFFLINE is set.
func (a *app) loadModel(ctx context.Context, mf *modelFlags, extra ...blipcuda.Option) (*blipcuda.Model, error) {
	c, err := a.hubClient()
	if err != nil {
		return nil, err
	}
	if _, err := blipcuda.Locate(ctx, c, mf.model); errors.Is(err, blipcuda.ErrNotCached) {
		repo, _ := blipcuda.RepoFor(mf.model)
		if c.Offline() {
			v := hub.OfflineVariable(os.Getenv)
			return nil, fmt.Errorf("%w: %s (%s) is not in the Hugging Face cache at %s, and %s is set so it "+
				"cannot be downloaded: run `blipcuda pull %s` with network access (or unset %s), "+
				"or pass a checkpoint directory with --model", blipcuda.ErrNotCached, mf.model, repo, c.CacheDir(), v, mf.model, v)
		}
		a.log.Info("downloading the model on first use", "model", mf.model, "repo", repo, "cache", c.CacheDir())
	}
	start := time.Now()
	opts := []blipcuda.Option{
		blipcuda.WithHub(c), blipcuda.WithDownload(!c.Offline()),
		blipcuda.WithProtocol(blipcuda.Protocol(mf.protocol)),
		blipcuda.WithDevice(mf.device), blipcuda.WithPrecision(mf.precision),
		blipcuda.WithThreads(mf.threads),
	}
	if mf.noGraphs {
		opts = append(opts, blipcuda.WithoutGraphs())
	}
	opts = append(opts, extra...)
	m, err := blipcuda.Load(ctx, mf.model, opts...)
	if err != nil {
		if errors.Is(err, hub.ErrRepoNotFound) && !strings.HasPrefix(mf.model, "Salesforce/") {
			return nil, fmt.Errorf("%w (if --model %s was meant as a local directory: it does not exist)", err, mf.model)
		}
		return nil, err
	}
	info := m.Info()
	if info.StoredPrecision != "" && info.StoredPrecision != info.Precision {
		a.log.Info(fmt.Sprintf("the checkpoint stores %s weights; running in %s (--precision)", info.StoredPrecision, info.Precision))
	}
	if mf.device == "auto" && info.Device != "cuda" {
		// Say once, briefly, that the GPU is not used; why (no driver, no
		// device, ...) under --verbose.
		a.log.Info("running on the CPU (no usable CUDA GPU; --verbose says why)")
		a.log.Debug("why not CUDA", "note", info.DeviceNote)
	}
	a.log.Debug("model loaded", "model", mf.model, "dir", info.Dir, "weights", info.Weights,
		"device", info.Device, "precision", info.Precision, "protocol", string(info.Protocol),
		"took", time.Since(start).Round(time.Millisecond))
	return m, nil
}
