// Package blipbeam runs blipcuda's BLIP image-text matching inside Apache
// Beam pipelines (the Go SDK), so that embedding a collection of millions
// of images, or filtering a web-scale image-text dataset by ITM score (as
// BLIP's CapFilt does), runs on many machines: locally on the Prism runner,
// on Dataflow with GPU workers, on Flink or Spark through the portable
// runner.
//
// Transforms:
//
//   - EmbedImages: image references (local paths, gs://, s3://…: any
//     filesystem registered with Beam's filesystem package) → Embedding
//     (the 256-d ITC embedding), and Failure for images that cannot be read.
//   - ScorePairs: Pair (image reference or bytes, caption) → PairScore
//     (itm_prob, itm_logit, itc), pairs grouped by image inside a bundle so
//     that each image is encoded once and its cross-attention keys and
//     values serve all its captions; Failure for bad images and captions.
//
// The model is loaded once per worker process (DoFn Setup takes a
// reference to a process-wide handle, Teardown drops it, the last one
// closes the model), inputs are batched inside bundles, and a failure of
// one element's data goes to the dead-letter output with its reason
// instead of failing the job; any other error (the device, the
// filesystem while writing) fails the bundle, which the runner retries.
//
// Readers and writers: ReadWebDataset and WriteWebDataset (tar shards as
// img2dataset writes them), ReadPairsParquet, WriteScoresParquet and
// WriteEmbeddingsParquet, WriteIndexShards (shards of the blipcuda index
// format, combined by `blipcuda index merge`), WriteFailures (JSON lines).
// Every sharded writer places a record by a hash of its key and sorts each
// shard, so a retried bundle writes the same shard again; files appear
// complete or not at all.
package blipbeam
