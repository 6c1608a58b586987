// Package heatmap draws an images × texts score matrix, such as the
// P(match) or ITC cosine scores of blipcuda.Model.Match, as a PNG heat
// map for people to look at instead of reading a table.
//
// Each image is a column headed by its thumbnail (aspect kept) and its
// file's base name (elided in the middle with "…" when long); each text
// is a row labelled on the left, wrapped to a few lines and elided with
// "…" beyond. Cells are coloured with the viridis colour map (see
// Viridis), explained by a colour bar with round tick values on the
// right. In each column the best-scoring text is outlined, matching the
// per-image ranking of blipcuda match (Options.Highlight changes this);
// NaN scores are hatched grey and listed in the legend. Text is drawn
// anti-aliased with the Go fonts; glyphs they lack (CJK, for one) show
// as boxes.
//
//	img, err := heatmap.Render(heatmap.FromFloat32(s.ITMProb), thumbs, s.Images, s.Texts,
//		heatmap.Options{Title: "BLIP base-coco", Metric: "P(match)", Min: 0, Max: 1, ShowValues: true})
//	if err == nil {
//		err = heatmap.WritePNG("scores.png", img)
//	}
//
// testdata/example.png is a sample; `go test ./heatmap -run ExamplePNG -update`
// regenerates it.
package heatmap
