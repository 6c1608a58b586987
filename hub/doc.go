// Package hub downloads files from the Hugging Face Hub into the cache layout
// that Python's huggingface_hub uses, so that a model fetched by either tool is
// seen by both.
//
// # Protocol
//
// A file is resolved with a HEAD request to
//
//	{endpoint}/{repo}/resolve/{revision}/{filename}
//
// (the revision path-escaped, so refs/pr/5 is sent as refs%2Fpr%2F5). Relative
// redirects (renamed repositories) are followed; an absolute redirect to
// another host (the CDN for large files) is not. The response headers give the
// commit (X-Repo-Commit), the blob name (X-Linked-Etag, else ETag, without
// quotes and W/), the size (X-Linked-Size, else Content-Length when the answer
// is not a redirect) and the download location (Location, else the request
// URL). The file is then fetched with GET from that location. The token
// (Authorization: Bearer) is only ever sent to the endpoint's own scheme, host
// and port, never to a redirect target on another host.
//
// # Cache layout
//
//	{cache}/
//	├── .locks/models--{org}--{name}/{etag}.lock
//	└── models--{org}--{name}/
//	    ├── blobs/{etag}                 the bytes
//	    ├── blobs/{etag}.incomplete      a download in progress (resumed with Range)
//	    ├── refs/{revision}              the commit a branch, tag or refs/pr/N points at
//	    ├── snapshots/{commit}/{file}    relative symlink → ../../blobs/{etag}
//	    └── .no_exist/{commit}/{file}    empty: the Hub said the file does not exist
//
// A blob is only renamed to its final name after its size (and, for LFS files
// whose etag is a sha256, its sha256) has been checked, and a snapshot link is
// only created once its blob is complete.
//
// Two programs (this one, huggingface_hub, or both) downloading the same blob
// into one cache take turns on the lock file, an flock(2) like Python's
// filelock. Where huggingface_hub ≥ 1.18 writes a process-unique
// blobs/{etag}.{uuid}.incomplete and never resumes across runs, this package
// writes the shared blobs/{etag}.incomplete of earlier huggingface_hub
// versions, under the lock, so that an interrupted download resumes. Only
// model repositories are handled (no datasets/ or spaces/), Xet-backed files
// are fetched over plain HTTP (as huggingface_hub does without hf_xet), and
// where symbolic links cannot be made the blob is copied into the snapshot.
//
// # Environment
//
// [FromEnv] honours HF_ENDPOINT, HF_HOME, HF_HUB_CACHE (and the legacy
// HUGGINGFACE_HUB_CACHE), XDG_CACHE_HOME, HF_TOKEN (and the legacy
// HUGGING_FACE_HUB_TOKEN), HF_TOKEN_PATH, HF_HUB_DISABLE_IMPLICIT_TOKEN,
// HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE), HF_HUB_ETAG_TIMEOUT and
// HF_HUB_DOWNLOAD_TIMEOUT with the meaning huggingface_hub gives them.
// [NewClient] reads no environment variable.
package hub
