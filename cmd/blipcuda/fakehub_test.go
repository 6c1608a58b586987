package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blipcuda/blipcuda/hub/hubtest"
)

// newFakeHub starts a fake Hub (see package hubtest) whose stalled
// transfers hang for up to a minute, until the client goes.
func newFakeHub(t *testing.T) *hubtest.Hub {
	t.Helper()
	fh := hubtest.New(t)
	fh.SetStallTimeout(60 * time.Second)
	return fh
}

// commitID makes a 40-hex commit id from a label.
func commitID(label string) string { return hubtest.CommitID(label) }

// addCommit adds a commit holding the named files of dir (weights are LFS
// files) and points revisions at it.
func addCommit(t *testing.T, fh *hubtest.Hub, repo, commit, dir string, files []string, revisions ...string) {
	t.Helper()
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		lfs := strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".bin")
		fh.AddFile(repo, commit, name, b, lfs, revisions...)
	}
}

// cdnRanges returns the Range headers of the GETs the CDN received since
// the start or fh.Reset.
func cdnRanges(fh *hubtest.Hub) []string {
	ranges := []string{}
	for _, r := range fh.Requests() {
		if r.Host == hubtest.HostCDN && r.Method == "GET" {
			ranges = append(ranges, r.Range)
		}
	}
	return ranges
}

// Files of the tiny checkpoints as the Hub holds them.
var (
	baseMainFiles  = []string{"config.json", "preprocessor_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"}
	largeMainFiles = []string{"config.json", "preprocessor_config.json", "vocab.txt", "pytorch_model.bin"}
)

// serveTinyModels serves tiny-base as Salesforce/blip-itm-base-coco, as
// the real repository is laid out: config and tokenizer on main, and
// model.safetensors only on the SFconvertbot revision refs/pr/5; and
// tiny-large as Salesforce/blip-itm-large-flickr with pytorch_model.bin on
// main and no refs/pr/4 (so that the safetensors probe gets
// RevisionNotFound).
func serveTinyModels(t *testing.T, fh *hubtest.Hub) {
	addCommit(t, fh, "Salesforce/blip-itm-base-coco", commitID("base main"), tinyBase, baseMainFiles, "main")
	addCommit(t, fh, "Salesforce/blip-itm-base-coco", commitID("base pr5"), tinyBase,
		append(append([]string{}, baseMainFiles...), "model.safetensors"), "refs/pr/5")
	addCommit(t, fh, "Salesforce/blip-itm-large-flickr", commitID("large main"), tinyLarge, largeMainFiles, "main")
}
