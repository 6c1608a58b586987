// Package index stores the ITC embeddings (and optionally the raw
// features) of a collection of images, for retrieval with blipcuda: ITC
// top-k over every image, then the ITM head re-ranks the k best.
//
// An index is a directory, NAME.blipidx, holding:
//
//	index.db         a bbolt database (go.etcd.io/bbolt): the format version,
//	                 the model, and one record per image (path, size, mtime,
//	                 SHA-256, slot), each batch of images one transaction
//	embeddings.i8    slot-major N×dim int8 embeddings, memory-mapped for the
//	                 ITC pass (blipcuda.QuantizeRows)
//	embeddings.i8b   per slot two little-endian float32: the row's scale and
//	                 a bound on its quantisation error
//	embeddings.f32   the same embeddings in float32 (little-endian), for the
//	                 exact scores of the candidates
//	features.f16     with features: slot-major N×tokens×width float16 raw
//	                 features, for re-ranking without re-encoding
//
// A batch is made durable in two steps: its vectors are written into
// slots no committed record points to (free slots, or past the end) and
// synced, then one bbolt transaction records the images, frees the slots
// of images they replace and advances the slot count. A crash (SIGKILL
// included) before the commit leaves the vectors unreferenced, to be
// overwritten by the next run; after it, the batch is complete. The index
// is never unreadable and never holds a record whose vectors are
// incomplete.
//
// One process writes an index at a time: a writer holds an exclusive flock
// on index.lock from Open to Close, and a second writer waits up to
// Options.Wait, then fails with ErrLocked. Readers in other processes work
// beside it: the database is opened for each operation only, shared by
// readers and exclusive for a commit, so a reader sees every batch once it
// is committed (its state is reloaded when the database's generation
// counter moved) and a commit waits for the readers of the moment. A writer
// only writes vectors into slots that no committed record uses, which
// readers skip. Within a process an Index is safe for concurrent use:
// searches share a read lock, Add and Remove take the write lock.
package index
