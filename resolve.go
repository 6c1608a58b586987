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
	"github.com/blipcuda/blipcuda/internal/bounded"
	"github.com/blipcuda/blipcuda/model"
)

// ErrNotCached reports a model that is known but not in the local cache
// (and downloading was not allowed).
var ErrNotCached = errors.New("blipcuda: model not downloaded")

// Checkpoint locates a model's files: Dir holds config.json, the tokenizer
// files and preprocessor_config.json; Weights is the weights file, which may
// live in another snapshot of the same repository (the Hub keeps
// model.safetensors on refs/pr/N revisions for these models).
type Checkpoint struct {
	Repo    string // Hub repository, "" for a plain directory
	Dir     string
	Weights string
}

// RepoFor maps a family name or Hub id to the Hub repository id. Any other
// "org/name" is passed through, so other BLIP ITM repositories work too.
func RepoFor(name string) (string, bool) {
	if v, ok := model.LookupVariant(name); ok {
		return v.HubID, true
	}
	if strings.Count(name, "/") == 1 && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "/") &&
		!strings.HasSuffix(name, "/") {
		return name, true
	}
	return "", false
}

// safetensorsRevisions lists, per repository, the revisions known to hold a
// model.safetensors conversion (SFconvertbot pull requests). main is always
// tried first, in case one was merged.
var safetensorsRevisions = map[string][]string{
	"Salesforce/blip-itm-base-coco":    {"refs/pr/5"},
	"Salesforce/blip-itm-large-flickr": {"refs/pr/4"},
}

// Files of a checkpoint taken from main. The first two are required (one
// of the vocabulary files too); the rest are fetched when present.
var (
	requiredFiles = []string{"config.json"}
	vocabFiles    = []string{"tokenizer.json", "vocab.txt"}
	optionalFiles = []string{"preprocessor_config.json", "tokenizer_config.json", "special_tokens_map.json"}
)

// dirCheckpoint validates a local checkpoint directory.
func dirCheckpoint(dir string) (Checkpoint, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return Checkpoint{}, err
	}
	if !st.IsDir() {
		return Checkpoint{}, fmt.Errorf("%w: %s is a file, not a checkpoint directory", ErrBadCheckpoint, dir)
	}
	if st, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: directory %s has no config.json", ErrBadCheckpoint, dir)
	} else if !st.Mode().IsRegular() {
		return Checkpoint{}, fmt.Errorf("%w: %s is %s, not a regular file", ErrBadCheckpoint, filepath.Join(dir, "config.json"), bounded.Kind(st.Mode()))
	}
	cp := Checkpoint{Dir: dir}
	for _, f := range []string{model.SafetensorsFile, model.PyTorchFile} {
		p := filepath.Join(dir, f)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !st.Mode().IsRegular() {
			// Say what is there rather than that nothing is.
			return Checkpoint{}, fmt.Errorf("%w: %s is %s, not a weights file (%w)", ErrBadCheckpoint, p, bounded.Kind(st.Mode()), model.ErrWeights)
		}
		cp.Weights = p
		break
	}
	if cp.Weights == "" {
		return Checkpoint{}, fmt.Errorf("%w: %s has neither %s nor %s (%w)", ErrBadCheckpoint, dir, model.SafetensorsFile, model.PyTorchFile, model.ErrWeights)
	}
	return cp, nil
}

// Locate finds a model without network access: a directory as is, a family
// name or Hub id in the local Hugging Face cache.
func Locate(ctx context.Context, c *hub.Client, name string) (Checkpoint, error) {
	if name == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty model name (want %s, a Hub id or a directory)", ErrUnknownModel, model.VariantNames())
	}
	if _, err := os.Stat(name); err == nil {
		return dirCheckpoint(name)
	}
	repo, ok := RepoFor(name)
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w: %q is not a model name (%s), a Hub id or a directory",
			ErrUnknownModel, name, model.VariantNames())
	}
	if cp, ok := CachedCheckpoint(ctx, c, repo); ok {
		return cp, nil
	}
	hint := fmt.Sprintf("Load with blipcuda.WithDownload(true) to download it, or run `blipcuda pull %s`, "+
		"or pass a checkpoint directory", name)
	if c.Offline() {
		v := hub.OfflineVariable(os.Getenv)
		if v == "" {
			v = "offline mode"
		}
		hint = v + " is set, so nothing is downloaded: unset it and run `blipcuda pull " + name + "`, or pass a checkpoint directory"
	}
	return Checkpoint{}, fmt.Errorf("%w: %s (%s) is not in the Hugging Face cache at %s; %s",
		ErrNotCached, name, repo, c.CacheDir(), hint)
}

// CachedCheckpoint finds a complete checkpoint of repo in the local cache: a
// snapshot holding config.json and a vocabulary (tokenizer.json or
// vocab.txt), preferring the one main points to, and weights from the same
// snapshot or another one of the repository, preferring model.safetensors.
func CachedCheckpoint(ctx context.Context, c *hub.Client, repo string) (Checkpoint, bool) {
	repos, err := c.Scan(ctx)
	if err != nil {
		return Checkpoint{}, false
	}
	for _, r := range repos {
		if r.Repo != repo {
			continue
		}
		has := func(commit, f string) bool {
			for _, x := range r.Snapshots[commit] {
				if x == f {
					return true
				}
			}
			return false
		}
		commits := make([]string, 0, len(r.Snapshots))
		for commit := range r.Snapshots {
			commits = append(commits, commit)
		}
		// main first, then other referenced commits, then the rest; ties by name.
		rank := func(commit string) int {
			if r.Refs["main"] == commit {
				return 0
			}
			for _, c := range r.Refs {
				if c == commit {
					return 1
				}
			}
			return 2
		}
		sort.Slice(commits, func(i, j int) bool {
			if a, b := rank(commits[i]), rank(commits[j]); a != b {
				return a < b
			}
			return commits[i] < commits[j]
		})
		var cp Checkpoint
		for _, commit := range commits {
			if has(commit, "config.json") && (has(commit, "tokenizer.json") || has(commit, "vocab.txt")) {
				cp = Checkpoint{Repo: repo, Dir: filepath.Join(r.Dir, "snapshots", commit)}
				break
			}
		}
		if cp.Dir == "" {
			return Checkpoint{}, false
		}
		for _, f := range []string{model.SafetensorsFile, model.PyTorchFile} {
			// The config's own snapshot first.
			if p := filepath.Join(cp.Dir, f); fileExists(p) {
				cp.Weights = p
				return cp, true
			}
			for _, commit := range commits {
				if has(commit, f) {
					cp.Weights = filepath.Join(r.Dir, "snapshots", commit, f)
					return cp, true
				}
			}
		}
		return Checkpoint{}, false
	}
	return Checkpoint{}, false
}

// Pull downloads a model into the local Hugging Face cache (or finds it
// there): config, preprocessor and tokenizer files from main, and the
// weights as model.safetensors where a known revision has them (main, then
// the SFconvertbot refs/pr/N revision), pytorch_model.bin from main
// otherwise. Weights already in the cache at one of those revisions (from
// an earlier pull, or downloaded by transformers) are used as they are,
// not downloaded again. A refs/pr/N snapshot that holds the weights gets
// the small files too, as the Hub has them at that revision, so that
// transformers loads it offline with from_pretrained(repo,
// revision="refs/pr/N"). A directory is returned as is.
func Pull(ctx context.Context, c *hub.Client, name string) (Checkpoint, error) {
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		return dirCheckpoint(name)
	}
	repo, ok := RepoFor(name)
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w: %q is not a model name (%s), a Hub id or a directory",
			ErrUnknownModel, name, model.VariantNames())
	}
	dir, err := pullSmallFiles(ctx, c, repo, hub.DefaultRevision)
	if err != nil {
		return Checkpoint{}, err
	}
	cp := Checkpoint{Repo: repo, Dir: dir}
	revisions := append([]string{hub.DefaultRevision}, safetensorsRevisions[repo]...)
	withWeights := func(rev, path string) (Checkpoint, error) {
		if rev != hub.DefaultRevision {
			if _, err := pullSmallFiles(ctx, c, repo, rev); err != nil {
				return Checkpoint{}, err
			}
		}
		cp.Weights = path
		return cp, nil
	}
	for _, f := range []string{model.SafetensorsFile, model.PyTorchFile} {
		for _, rev := range revisions {
			if snap, err := c.CachedSnapshot(repo, rev, f); err == nil {
				return withWeights(rev, filepath.Join(snap, f))
			}
		}
	}
	for _, rev := range revisions {
		ok, err := c.FileExists(ctx, repo, rev, model.SafetensorsFile)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("blipcuda: pulling %s: %w", repo, err)
		}
		if ok {
			p, err := c.Download(ctx, repo, rev, model.SafetensorsFile)
			if err != nil {
				return Checkpoint{}, fmt.Errorf("blipcuda: pulling %s: %w", repo, err)
			}
			return withWeights(rev, p)
		}
	}
	p, err := c.Download(ctx, repo, hub.DefaultRevision, model.PyTorchFile)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("blipcuda: pulling %s: %w", repo, err)
	}
	cp.Weights = p
	return cp, nil
}

// pullSmallFiles downloads the config, vocabulary, tokenizer and
// preprocessor files of repo at revision (those that exist there) and
// returns the snapshot directory.
func pullSmallFiles(ctx context.Context, c *hub.Client, repo, revision string) (string, error) {
	dir, err := c.Snapshot(ctx, repo, revision, requiredFiles)
	if err != nil {
		return "", fmt.Errorf("blipcuda: pulling %s: %w", repo, err)
	}
	vocab := false
	for _, f := range append(append([]string{}, vocabFiles...), optionalFiles...) {
		if _, err := c.Download(ctx, repo, revision, f); err != nil {
			if errors.Is(err, hub.ErrEntryNotFound) {
				continue
			}
			return "", fmt.Errorf("blipcuda: pulling %s: %w", repo, err)
		}
		if f == "tokenizer.json" || f == "vocab.txt" {
			vocab = true
		}
	}
	if !vocab {
		return "", fmt.Errorf("blipcuda: pulling %s: the repository has neither tokenizer.json nor vocab.txt at %s", repo, revision)
	}
	return dir, nil
}
