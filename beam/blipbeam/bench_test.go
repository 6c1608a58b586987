package blipbeam

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/blipcuda/blipcuda"
)

// The engine's overhead: the embed pipeline on Prism (files listed, read,
// decoded, encoded, written as index shards) against the library on the
// same 200 images (LoadImage + EncodeImages, what `blipcuda embed` does),
// tiny checkpoint on the CPU.

const benchImages = 200

func BenchmarkEmbedLibrary200(b *testing.B) {
	f := newFixture(b, benchImages)
	m, err := blipcuda.Load(context.Background(), tinyModel, blipcuda.WithDevice("cpu"), blipcuda.WithImageBatch(testModel.ImageBatch))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ResetTimer()
	for b.Loop() {
		var imgs []*blipcuda.Image
		for _, p := range f.images {
			img, err := m.LoadImage(p)
			if err != nil {
				b.Fatal(err)
			}
			imgs = append(imgs, img)
		}
		if _, err := m.EncodeImages(context.Background(), imgs, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchImages*b.N)/b.Elapsed().Seconds(), "images/s")
}

func BenchmarkEmbedPrism200(b *testing.B) {
	f := newFixture(b, benchImages)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		job := EmbedJob{Images: []string{filepath.Join(f.dir, "images", "*")}, Model: testModel, Config: Config{Batch: 64},
			Index: filepath.Join(f.dir, "out", "index"), Shards: 4}
		if err := run(b, job.Build); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchImages*b.N)/b.Elapsed().Seconds(), "images/s")
}
