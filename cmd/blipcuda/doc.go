// Command blipcuda scores how well texts describe images with the BLIP
// image-text matching models (Salesforce/blip-itm-{base,large}-{coco,flickr}),
// giving the numbers of transformers' BlipForImageTextRetrieval.
//
// Usage:
//
//	blipcuda COMMAND [flags] [arguments]
//
// The commands are:
//
//	match    score texts against images: ITM P(match) and ITC cosine
//	         (table, JSON or CSV; --plot draws a PNG heat map)
//	embed    write ITC embeddings of images and texts, and optionally the
//	         raw image features: JSON, .npy or .safetensors
//	models   list the four models and whether each is in the local cache
//	pull     download models into the Hugging Face cache
//	convert  convert pytorch_model.bin to model.safetensors (float32,
//	         float16, bfloat16)
//	version  print the version
//
// For example:
//
//	blipcuda match photos/ --text "a dog on a beach" --text "a red bus"
//	blipcuda match cat.jpg --texts captions.txt --format json > scores.json
//	blipcuda embed photos/ --texts captions.txt -o embeddings/
//
// Flags may follow the arguments; "--" ends them. Results go to stdout,
// progress and messages to stderr (-v more, -q errors only). Outputs are
// written atomically. Models come from, and are downloaded on first use
// into, the Hugging Face cache shared with transformers, configured by
// HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE and HF_TOKEN;
// BLIPCUDA_MODEL sets the default model and BLIPCUDA_HUB_RETRIES the
// download retries; NO_COLOR turns colour off.
//
// Exit status: 0 success, 1 failure, 2 usage error (bad flags or
// arguments, unknown model name, empty --text), 130 interrupted.
//
// README.md in this directory is the full reference: every flag, the JSON
// documents of match and embed (stable, versioned by schema_version), the
// .npy and safetensors layouts, and the exit codes. `blipcuda COMMAND
// --help` prints a command's flags and environment variables.
package main
