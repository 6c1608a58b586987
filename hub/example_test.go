package hub_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/blipcuda/blipcuda/hub"
)

// Pull a BLIP checkpoint the way `blipcuda pull` does: safetensors from the
// bot's pull-request revision when it has them, else pytorch_model.bin on main.
func Example() {
	ctx := context.Background()
	c, err := hub.FromEnv(hub.WithProgress(hub.AutoReporter(os.Stderr, false)))
	if err != nil {
		log.Fatal(err)
	}
	repo, rev, weights := "Salesforce/blip-itm-base-coco", "refs/pr/5", "model.safetensors"
	ok, err := c.FileExists(ctx, repo, rev, weights)
	if err != nil {
		log.Fatal(err)
	}
	if !ok {
		rev, weights = "main", "pytorch_model.bin"
	}
	dir, err := c.Snapshot(ctx, repo, rev, []string{"config.json", "vocab.txt", weights})
	var nc *hub.NotCachedError
	switch {
	case errors.As(err, &nc):
		log.Fatal(err) // says to run `blipcuda pull` with network access
	case errors.Is(err, hub.ErrUnauthorized):
		log.Fatal(err) // says to set HF_TOKEN
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(dir)
}
