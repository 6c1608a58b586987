package blipcuda_test

import (
	"context"
	"fmt"
	"log"

	"github.com/blipcuda/blipcuda"
)

// Match ranks captions for an image with both heads. The model here is the
// tiny random checkpoint the tests use; with a real one, load "base-coco".
func Example() {
	ctx := context.Background()
	m, err := blipcuda.Load(ctx, "testdata/models/tiny-base") // or "base-coco", "Salesforce/blip-itm-large-coco"
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	img, err := m.LoadImage("testdata/models/images/scene.png")
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.Match(ctx, []*blipcuda.Image{img}, []string{
		"a woman and her dog sitting on a beach",
		"a red bus driving down a city street",
	})
	if err != nil {
		log.Fatal(err)
	}
	for j, text := range s.Texts {
		fmt.Printf("%-40s P(match)=%.4f ITC=%+.4f\n", text, s.ITMProb[0][j], s.ITC[0][j])
	}
	// Output:
	// a woman and her dog sitting on a beach   P(match)=0.0903 ITC=-0.0185
	// a red bus driving down a city street     P(match)=0.1334 ITC=-0.0572
}

// EncodeImages and EncodeTexts give the 256-d ITC embeddings, for a vector
// store; their dot product is the ITC score.
func ExampleModel_EncodeTexts() {
	ctx := context.Background()
	m, err := blipcuda.Load(ctx, "testdata/models/tiny-base", blipcuda.WithProtocol(blipcuda.ProtocolHF))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	enc, err := m.EncodeTexts(ctx, []string{"Two cats sleeping on a couch!"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(enc[0].Embedding), enc[0].Tokens)
	// Output:
	// 256 [101 2048 8870 5777 2006 1037 6411 999 102]
}
