package eval

import (
	"strings"
)

// Split is a known evaluation split an annotation file was recognised as.
type Split struct {
	// Name is e.g. "COCO 5k Karpathy test".
	Name string
	// Dataset is "coco" or "flickr30k".
	Dataset string
	// Why says what it was recognised by.
	Why string
	// K is BLIP's k_test for the dataset (configs/retrieval_*.yaml).
	K int
}

// RecogniseSplit tells the Karpathy test splits BLIP is judged on by their
// image count and paths: COCO 5k (5,000 images, all under val2014/, as in
// coco_karpathy_test.json) and Flickr30k 1k (1,000 images, all under
// flickr30k-images/, as in flickr30k_test.json).
func RecogniseSplit(c *Collection) (Split, bool) {
	all := func(prefix string) bool {
		for _, e := range c.Entries {
			if !strings.HasPrefix(e.Image, prefix) {
				return false
			}
		}
		return true
	}
	switch {
	case len(c.Entries) == 5000 && all("val2014/"):
		return Split{Name: "COCO 5k Karpathy test", Dataset: "coco", Why: "5,000 images under val2014/", K: 256}, true
	case len(c.Entries) == 1000 && all("flickr30k-images/"):
		return Split{Name: "Flickr30k 1k Karpathy test", Dataset: "flickr30k", Why: "1,000 images under flickr30k-images/", K: 128}, true
	}
	return Split{}, false
}

// Published are the figures the BLIP paper reports for an architecture on
// a split.
type Published struct {
	// Model names the paper's row, e.g. "BLIP ViT-B (129M images)".
	Model string
	// TR and IR are image→text and text→image recall@1, 5, 10, in percent.
	TR, IR [3]float64
	// Source is where the figures are printed.
	Source string
}

// PublishedSource is the paper the published figures come from.
const PublishedSource = "BLIP (Li et al. 2022, arXiv:2201.12086), Table 5: fine-tuned image-text retrieval"

// published are Table 5's rows for the architectures of the four Hub
// checkpoints: ViT-B/16 pre-trained on 129M images, and ViT-L/16.
var published = map[string]map[int]Published{
	"coco": {
		768:  {Model: "BLIP ViT-B (129M images)", TR: [3]float64{81.9, 95.4, 97.8}, IR: [3]float64{64.3, 85.7, 91.5}, Source: PublishedSource},
		1024: {Model: "BLIP ViT-L (129M images)", TR: [3]float64{82.4, 95.4, 97.9}, IR: [3]float64{65.1, 86.3, 91.8}, Source: PublishedSource},
	},
	"flickr30k": {
		768:  {Model: "BLIP ViT-B (129M images)", TR: [3]float64{97.3, 99.9, 100.0}, IR: [3]float64{87.3, 97.6, 98.9}, Source: PublishedSource},
		1024: {Model: "BLIP ViT-L (129M images)", TR: [3]float64{97.4, 99.8, 99.9}, IR: [3]float64{87.6, 97.7, 99.0}, Source: PublishedSource},
	},
}

// PublishedFor returns the paper's figures for a dataset ("coco",
// "flickr30k") and a vision width (768 for ViT-B/16, 1024 for ViT-L/16).
// The Hub model cards do not say which row of the table each checkpoint
// reproduces: these are the paper's figures for the architecture, not a
// statement about a checkpoint.
func PublishedFor(dataset string, visionWidth int) (Published, bool) {
	p, ok := published[dataset][visionWidth]
	return p, ok
}
