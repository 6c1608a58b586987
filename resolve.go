package blipcuda

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blipcuda/blipcuda/hub"
	"github.com/blipcuda/blipcuda/model"
)

// ErrNotCached reports a model that is known but not in the local cache.
var ErrNotCached = errors.New("blipcuda: model not downloaded")

// RepoFor maps a family name or Hub id to the Hub repository id. Any other
// "org/name" is passed through, so other BLIP ITM repositories work too.
func RepoFor(name string) (string, bool) {
	if v, ok := model.LookupVariant(name); ok {
		return v.HubID, true
	}
	if strings.Count(name, "/") == 1 && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "/") {
		return name, true
	}
	return "", false
}

// resolve turns a model name into a checkpoint directory: an existing
// directory as is; a family name or Hub id through the local Hugging Face
// cache (HF_HUB_CACHE, HF_HOME), without network access.
func resolve(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty model name (want %s, a Hub id or a directory)", ErrUnknownModel, model.VariantNames())
	}
	if st, err := os.Stat(name); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("%w: %s is a file, not a checkpoint directory", ErrUnknownModel, name)
		}
		if !fileExists(filepath.Join(name, "config.json")) {
			return "", fmt.Errorf("%w: directory %s has no config.json", ErrUnknownModel, name)
		}
		return name, nil
	}
	repo, ok := RepoFor(name)
	if !ok {
		return "", fmt.Errorf("%w: %q is not a model name (%s), a Hub id or a directory",
			ErrUnknownModel, name, model.VariantNames())
	}
	c, err := hub.FromEnv()
	if err != nil {
		return "", fmt.Errorf("blipcuda: %w", err)
	}
	if dir, ok := CachedCheckpoint(ctx, c, repo); ok {
		return dir, nil
	}
	return "", fmt.Errorf("%w: %s (%s) is not in the Hugging Face cache at %s; download it with `blipcuda pull %s`, or pass a checkpoint directory",
		ErrNotCached, name, repo, c.CacheDir(), name)
}

// CachedCheckpoint finds a complete checkpoint of repo in the local cache:
// a snapshot holding config.json, weights (model.safetensors or
// pytorch_model.bin) and a vocabulary (tokenizer.json or vocab.txt).
// Snapshots with safetensors are preferred, then those a ref names.
func CachedCheckpoint(ctx context.Context, c *hub.Client, repo string) (string, bool) {
	repos, err := c.Scan(ctx)
	if err != nil {
		return "", false
	}
	for _, r := range repos {
		if r.Repo != repo {
			continue
		}
		referenced := map[string]bool{}
		for _, commit := range r.Refs {
			referenced[commit] = true
		}
		type cand struct {
			commit   string
			st, refd bool
		}
		var cands []cand
		for commit, files := range r.Snapshots {
			has := map[string]bool{}
			for _, f := range files {
				has[f] = true
			}
			weights := has[model.SafetensorsFile] || has[model.PyTorchFile]
			vocab := has["tokenizer.json"] || has["vocab.txt"]
			if has["config.json"] && weights && vocab {
				cands = append(cands, cand{commit, has[model.SafetensorsFile], referenced[commit]})
			}
		}
		sort.Slice(cands, func(i, j int) bool {
			a, b := cands[i], cands[j]
			if a.st != b.st {
				return a.st
			}
			if a.refd != b.refd {
				return a.refd
			}
			return a.commit < b.commit
		})
		if len(cands) > 0 {
			return filepath.Join(r.Dir, "snapshots", cands[0].commit), true
		}
	}
	return "", false
}
