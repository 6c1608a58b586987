package index

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/blipcuda/blipcuda"
)

// FormatVersion is the version of the on-disk format this package writes;
// it reads this version and older ones.
const FormatVersion = 1

// Extension is the conventional suffix of an index directory.
const Extension = ".blipidx"

// Files of an index directory.
const (
	dbName    = "index.db"
	newDBName = "index.db.new" // a new index's database until it is complete
	quantName = "embeddings.i8"
	boundName = "embeddings.i8b"
	fullName  = "embeddings.f32"
	featName  = "features.f16"
	lockName  = "index.lock"
)

// Errors callers can test for with errors.Is.
var (
	// ErrNotIndex reports a path that is not an index (or is damaged
	// beyond reading).
	ErrNotIndex = errors.New("index: not a blipcuda index")
	// ErrNewerFormat reports an index written by a newer blipcuda.
	ErrNewerFormat = errors.New("index: written by a newer version of blipcuda")
	// ErrTruncated reports a vector file shorter than the records need.
	ErrTruncated = errors.New("index: truncated")
	// ErrModel reports an index built with another model.
	ErrModel = errors.New("index: built with another model")
	// ErrLocked reports an index another process holds.
	ErrLocked = errors.New("index: in use by another process")
	// ErrReadOnly reports a write to an index opened read-only.
	ErrReadOnly = errors.New("index: opened read-only")
	// ErrClosed reports use of a closed index.
	ErrClosed = errors.New("index: closed")
	// ErrNoModel reports an index that has not recorded its model yet (it
	// was created and no batch was committed).
	ErrNoModel = errors.New("index: no model recorded yet")
)

// Model identifies the model an index was built with, and the shapes it
// stores.
type Model struct {
	// Name is the model as given (family name, Hub id or directory), used
	// to load it again.
	Name string `json:"name"`
	// ID is what identifies it across machines: the Hub repository, or the
	// checkpoint directory's base name.
	ID string `json:"id"`
	// ConfigHash is blipcuda.Info.ConfigHash: the architecture.
	ConfigHash string `json:"config_hash"`
	// Dim is the ITC embedding size.
	Dim int `json:"dim"`
	// Tokens and Width are the raw features' shape.
	Tokens int `json:"tokens"`
	Width  int `json:"width"`
}

// ModelOf describes a loaded model for an index.
func ModelOf(m *blipcuda.Model, name string) Model {
	info := m.Info()
	id := info.Repo
	if id == "" {
		id = filepath.Base(filepath.Clean(name))
	}
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		if abs, err := filepath.Abs(name); err == nil {
			name = abs // a checkpoint directory, found again from anywhere
		}
	}
	return Model{Name: name, ID: id, ConfigHash: info.ConfigHash(), Dim: info.Config.ImageTextHiddenSize,
		Tokens: info.Config.NumImageTokens(), Width: info.Config.Vision.HiddenSize}
}

// Check reports whether embeddings of m can be compared with this index's
// (model is the one recorded), as an ErrModel naming both.
func (model Model) Check(m Model) error {
	if model.ID != m.ID || model.ConfigHash != m.ConfigHash || model.Dim != m.Dim {
		return fmt.Errorf("%w: it was built with %s (config %s), and this is %s (config %s): use --model %s, or build another index",
			ErrModel, model.ID, model.ConfigHash, m.ID, m.ConfigHash, model.Name)
	}
	return nil
}

// Entry is the record of one indexed image.
type Entry struct {
	// Path is the image's path as stored: relative to the directory
	// holding the index when the image lies below it, else absolute.
	Path string `json:"-"`
	// Size and ModTime are the file's when it was indexed.
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	// SHA256 is the hex SHA-256 of the file's content.
	SHA256 string `json:"sha256"`
	// Slot is the row of the image's vectors in the vector files.
	Slot int `json:"slot"`
}

// Item is an image to add: its record (Slot is assigned by Add) and its
// vectors.
type Item struct {
	Entry
	// Embedding is the ITC embedding (Model.Dim values, unit norm).
	Embedding []float32
	// Features are the raw features (Tokens×Width values); required when
	// the index stores features, ignored otherwise.
	Features []float32
}

// Options configure Open.
type Options struct {
	// Write opens the index for Add and Remove; only one process may do so
	// at a time.
	Write bool
	// Create makes the index when it does not exist (with Write).
	Create bool
	// Features makes a new index store raw features (with Create).
	Features bool
	// Wait is how long to wait for another process's lock before failing
	// with ErrLocked (default 1 s).
	Wait time.Duration
}

// Index is an open index. It is safe for concurrent use.
type Index struct {
	dir  string
	root string // the directory holding the index
	opts Options

	mu       sync.RWMutex
	lock     *os.File // the writer's lock (Write), held until Close
	gen      int      // the generation of the database the state reflects
	model    Model
	hasModel bool
	features bool
	slots    int              // rows in use (free ones included)
	free     map[int]struct{} // free rows below slots
	count    int              // records
	quant    *vecFile         // int8 embeddings
	bound    *vecFile         // per row: scale, error bound (float32)
	full     *vecFile
	feat     *vecFile
	closed   bool
}

// Bucket and key names of index.db.
var (
	bMeta  = []byte("meta")
	bFiles = []byte("files")
	bSlots = []byte("slots")
	bFree  = []byte("free")

	kFormat   = []byte("format")
	kModel    = []byte("model")
	kFeatures = []byte("features")
	kSlots    = []byte("slots")
	kCount    = []byte("count")
	kCreated  = []byte("created")
	kGen      = []byte("generation")
)

// Open opens the index directory dir (see Options).
func Open(ctx context.Context, dir string, opts Options) (_ *Index, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Wait <= 0 {
		opts.Wait = time.Second
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	ix := &Index{dir: dir, root: filepath.Dir(abs), opts: opts, free: map[int]struct{}{}}
	dbPath := filepath.Join(dir, dbName)
	created := false
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && opts.Write && opts.Create:
		if err := os.Mkdir(dir, 0o777); err != nil {
			return nil, fmt.Errorf("index %s: %w", dir, err)
		}
		created = true
	case err != nil:
		return nil, fmt.Errorf("index %s: %w", dir, unwrapPath(err))
	case !st.IsDir():
		return nil, fmt.Errorf("%w: %s is a file (an index is a directory holding %s)", ErrNotIndex, dir, dbName)
	default:
		if _, err := os.Stat(dbPath); err != nil {
			if errors.Is(err, fs.ErrNotExist) && dirEmpty(dir) {
				if opts.Write && opts.Create {
					break
				}
				if _, lerr := os.Stat(filepath.Join(dir, lockName)); lerr != nil {
					return nil, fmt.Errorf("%w: %s is an empty directory", ErrNotIndex, dir)
				}
				// A run that made the directory (and its lock file) is
				// making its database, or was stopped before it was in
				// place: nothing has been stored.
				return nil, fmt.Errorf("index %s has no %s yet (a run creating it is in progress, or was stopped before it stored anything): %w",
					dir, dbName, fs.ErrNotExist)
			}
			return nil, fmt.Errorf("%w: %s has no %s", ErrNotIndex, dir, dbName)
		}
	}
	defer func() {
		if err != nil {
			ix.closeFiles()
			if created {
				os.RemoveAll(dir)
			}
		}
	}()
	if opts.Write {
		if ix.lock, err = lockFile(ctx, filepath.Join(dir, lockName), opts.Wait); err != nil {
			if errors.Is(err, errLockTimeout) {
				return nil, fmt.Errorf("%w: %s is being written by another process (another `blipcuda index` run?); waited %s",
					ErrLocked, dir, opts.Wait)
			}
			return nil, fmt.Errorf("index %s: %w", dir, err)
		}
		if _, serr := os.Stat(dbPath); errors.Is(serr, fs.ErrNotExist) {
			err = createDB(dir, opts.Features, max(opts.Wait, writeWait))
		}
		if err == nil {
			err = ix.update(func(tx *bolt.Tx) error { return ix.initTx(tx, opts.Features) })
		}
	} else {
		err = ix.refresh()
	}
	if err != nil {
		return nil, err
	}
	if err := ix.openFiles(); err != nil {
		return nil, err
	}
	return ix, nil
}

// The database is open only during an operation: shared (flock) for reads,
// exclusive for writes, so that readers in other processes and the one
// writer interleave. Between operations nothing is held but the writer's
// lock file.

// openDB opens index.db for one operation.
func (ix *Index) openDB(write bool) (*bolt.DB, error) {
	wait := ix.opts.Wait
	if write {
		wait = max(wait, writeWait) // readers hold it for milliseconds
	}
	db, err := openBolt(filepath.Join(ix.dir, dbName), &bolt.Options{Timeout: wait, ReadOnly: !write})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: %s stayed locked for %s", ErrLocked, ix.dir, dbName, wait)
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("index %s: %w", ix.dir, unwrapPath(err))
	case errors.Is(err, ErrNotIndex):
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s: %s: %v", ErrNotIndex, ix.dir, dbName, err)
}

// writeWait is how long a write waits for readers to leave the database.
const writeWait = 30 * time.Second

// refresh brings the state (counts, free list, model, maps) up to date with
// the database. The caller holds ix.mu exclusively (or is Open).
func (ix *Index) refresh() error {
	db, err := ix.openDB(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return guarded(ix.dir, func() error { return db.View(ix.load) })
}

// read runs fn in a read transaction on a state that matches it: under the
// shared lock when the state is current, after a refresh under the
// exclusive one when another process has committed since.
func (ix *Index) read(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		stale := false
		run := func() error {
			db, err := ix.openDB(false)
			if err != nil {
				return err
			}
			defer db.Close()
			return guarded(ix.dir, func() error {
				return db.View(func(tx *bolt.Tx) error {
					if generation(tx) != ix.gen && attempt < 3 {
						stale = true
						return nil
					}
					if attempt >= 3 { // writes keep coming: read under the exclusive lock
						if err := ix.load(tx); err != nil {
							return err
						}
						if err := ix.openFiles(); err != nil {
							return err
						}
					}
					return fn(tx)
				})
			})
		}
		var err error
		if attempt < 3 {
			ix.mu.RLock()
			if ix.closed {
				ix.mu.RUnlock()
				return ErrClosed
			}
			err = run()
			ix.mu.RUnlock()
		} else {
			ix.mu.Lock()
			if ix.closed {
				ix.mu.Unlock()
				return ErrClosed
			}
			err = run()
			ix.mu.Unlock()
		}
		if err != nil || !stale {
			return err
		}
		ix.mu.Lock()
		if !ix.closed {
			err = ix.refresh()
			if err == nil {
				err = ix.openFiles()
			}
		}
		ix.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// generation returns the database's commit count.
func generation(tx *bolt.Tx) int {
	if meta := tx.Bucket(bMeta); meta != nil {
		n, _ := strconv.Atoi(string(meta.Get(kGen)))
		return n
	}
	return 0
}

// update runs fn in a write transaction on the database, opened for it
// with the exclusive lock, after checking the state against it, and counts
// the commit. The caller holds ix.mu exclusively.
func (ix *Index) update(fn func(*bolt.Tx) error) error {
	db, err := ix.openDB(true)
	if err != nil {
		return err
	}
	defer db.Close()
	return guarded(ix.dir, func() error {
		return db.Update(func(tx *bolt.Tx) error {
			if err := ix.load(tx); err != nil && tx.Bucket(bMeta) != nil {
				return err
			}
			if err := fn(tx); err != nil {
				return err
			}
			ix.gen = generation(tx) + 1
			return tx.Bucket(bMeta).Put(kGen, []byte(strconv.Itoa(ix.gen)))
		})
	})
}

// guarded runs fn, turning a panic or a memory fault in bbolt on a damaged
// file into ErrNotIndex (bbolt's deferred rollback releases its locks).
func guarded(dir string, fn func() error) (err error) {
	defer guard(dir, &err)()
	return fn()
}

func guard(dir string, err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			*err = fmt.Errorf("%w: %s: damaged %s (%v)", ErrNotIndex, dir, dbName, r)
		}
	}
}

// openBolt opens the database, turning a panic on a damaged file into an
// error.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer guard(filepath.Dir(path), &err)()
	return bolt.Open(path, 0o666, opts)
}

// dirEmpty reports whether dir holds nothing but what a run that died
// before its database was in place leaves: the lock file and the database
// being made (newDBName).
func dirEmpty(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Name() != lockName && e.Name() != newDBName {
			return false
		}
	}
	return true
}

// createDB makes the database of a new index atomically: its buckets and
// metadata are committed in newDBName, which is then renamed to dbName, so
// a run killed at any moment leaves either no database or a complete one.
// The caller holds the writer's lock.
func createDB(dir string, features bool, wait time.Duration) error {
	tmp := filepath.Join(dir, newDBName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("index %s: %w", dir, err)
	}
	db, err := openBolt(tmp, &bolt.Options{Timeout: wait})
	if err != nil {
		return fmt.Errorf("index %s: creating %s: %w", dir, dbName, err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return createBuckets(tx, features) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, dbName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("index %s: creating %s: %w", dir, dbName, err)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// initTx makes the buckets of a new index, or loads an existing one.
func (ix *Index) initTx(tx *bolt.Tx, features bool) error {
	if tx.Bucket(bMeta) == nil {
		if err := createBuckets(tx, features); err != nil {
			return err
		}
	}
	return ix.load(tx)
}

// createBuckets writes an empty index's buckets and metadata.
func createBuckets(tx *bolt.Tx, features bool) error {
	meta, err := tx.CreateBucket(bMeta)
	if err != nil {
		return err
	}
	for _, b := range [][]byte{bFiles, bSlots, bFree} {
		if _, err := tx.CreateBucket(b); err != nil {
			return err
		}
	}
	for k, v := range map[string]string{
		string(kFormat): strconv.Itoa(FormatVersion), string(kFeatures): strconv.FormatBool(features),
		string(kSlots): "0", string(kCount): "0", string(kCreated): time.Now().UTC().Format(time.RFC3339),
	} {
		if err := meta.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

// load reads the metadata and the free list.
func (ix *Index) load(tx *bolt.Tx) error {
	if st, err := os.Stat(filepath.Join(ix.dir, dbName)); err != nil || st.Size() < tx.Size() {
		return fmt.Errorf("%w: %s: %s is shorter than its own pages say (truncated)", ErrNotIndex, ix.dir, dbName)
	}
	meta := tx.Bucket(bMeta)
	if meta == nil || tx.Bucket(bFiles) == nil || tx.Bucket(bSlots) == nil || tx.Bucket(bFree) == nil {
		return fmt.Errorf("%w: %s: %s is a bbolt database without an index's buckets", ErrNotIndex, ix.dir, dbName)
	}
	format, err := metaInt(meta, kFormat)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotIndex, ix.dir, err)
	}
	if format > FormatVersion {
		return fmt.Errorf("%w: %s has format version %d, and this blipcuda reads up to %d: upgrade blipcuda",
			ErrNewerFormat, ix.dir, format, FormatVersion)
	}
	if format < 1 {
		return fmt.Errorf("%w: %s: format version %d", ErrNotIndex, ix.dir, format)
	}
	ix.features = string(meta.Get(kFeatures)) == "true"
	ix.gen = generation(tx)
	if ix.slots, err = metaInt(meta, kSlots); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotIndex, ix.dir, err)
	}
	if ix.count, err = metaInt(meta, kCount); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotIndex, ix.dir, err)
	}
	if v := meta.Get(kModel); v != nil {
		if err := json.Unmarshal(v, &ix.model); err != nil {
			return fmt.Errorf("%w: %s: model record: %v", ErrNotIndex, ix.dir, err)
		}
		ix.hasModel = true
	}
	clear(ix.free)
	err = tx.Bucket(bFree).ForEach(func(k, _ []byte) error {
		s, err := slotOf(k)
		if err == nil && s >= ix.slots {
			err = fmt.Errorf("free slot %d beyond the %d in use", s, ix.slots)
		}
		ix.free[s] = struct{}{}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotIndex, ix.dir, err)
	}
	if ix.count+len(ix.free) != ix.slots {
		return fmt.Errorf("%w: %s: %d records and %d free slots, but %d slots", ErrNotIndex, ix.dir, ix.count, len(ix.free), ix.slots)
	}
	return nil
}

func metaInt(b *bolt.Bucket, k []byte) (int, error) {
	v := b.Get(k)
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("meta %s = %q is not a count", k, v)
	}
	return n, nil
}

func slotKey(s int) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(s))
	return k[:]
}

func slotOf(k []byte) (int, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("slot key of %d bytes", len(k))
	}
	return int(binary.BigEndian.Uint64(k)), nil
}

// rowSizes returns the row sizes of the vector files, in elements.
func (ix *Index) rowSizes() (dim, feat int) {
	return ix.model.Dim, ix.model.Tokens * ix.model.Width
}

// openFiles opens (or, writing, creates) and maps the vector files, or maps
// them again when they have grown. They may be longer than the slots in use
// (a batch written and not committed), never shorter.
func (ix *Index) openFiles() error {
	if !ix.hasModel {
		if ix.slots > 0 {
			return fmt.Errorf("%w: %s: %d slots but no model", ErrNotIndex, ix.dir, ix.slots)
		}
		return nil
	}
	dim, feat := ix.rowSizes()
	open := func(v **vecFile, name string, elem, row int) error {
		if *v != nil {
			return (*v).remap() // grown by a writer since
		}
		var err error
		*v, err = openVec(filepath.Join(ix.dir, name), elem, row, ix.opts.Write)
		return err
	}
	if err := open(&ix.quant, quantName, 1, dim); err != nil {
		return err
	}
	if err := open(&ix.bound, boundName, 4, 2); err != nil {
		return err
	}
	if err := open(&ix.full, fullName, 4, dim); err != nil {
		return err
	}
	if ix.features {
		if err := open(&ix.feat, featName, 2, feat); err != nil {
			return err
		}
	}
	for _, f := range ix.files() {
		if f != nil && f.rows() < ix.slots {
			return fmt.Errorf("%w: %s: %s holds %d rows, and the index records %d", ErrTruncated, ix.dir,
				filepath.Base(f.path), f.rows(), ix.slots)
		}
	}
	return nil
}

// files returns the vector files, nil where absent.
func (ix *Index) files() []*vecFile { return []*vecFile{ix.quant, ix.bound, ix.full, ix.feat} }

func (ix *Index) closeFiles() {
	for _, f := range ix.files() {
		if f != nil {
			f.close()
		}
	}
	ix.quant, ix.bound, ix.full, ix.feat = nil, nil, nil, nil
	if ix.lock != nil {
		ix.lock.Close() // releases the flock
		ix.lock = nil
	}
}

// Close releases the index and its lock.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	var errs []error
	for _, f := range ix.files() {
		if f != nil {
			errs = append(errs, f.close())
		}
	}
	if ix.lock != nil {
		errs = append(errs, ix.lock.Close())
	}
	return errors.Join(errs...)
}

// Dir returns the index's directory as given to Open.
func (ix *Index) Dir() string { return ix.dir }

// Model returns the recorded model; ok is false for a new index that has
// not recorded one yet.
func (ix *Index) Model() (m Model, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.model, ix.hasModel
}

// HasFeatures reports whether the index stores raw features.
func (ix *Index) HasFeatures() bool { return ix.features }

// Len returns the number of images in the index, as of the last operation
// (Open, Search, Lookup, …): a reader sees another process's commits at its
// next operation.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.count
}

// SetModel records the model of a new index (in its own transaction), or
// checks it against the recorded one.
func (ix *Index) SetModel(ctx context.Context, m Model) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.usable(true, ctx); err != nil {
		return err
	}
	if ix.hasModel {
		return ix.model.Check(m)
	}
	if m.Dim <= 0 || m.Tokens <= 0 || m.Width <= 0 {
		return fmt.Errorf("index %s: model %s with shapes dim %d, features %d×%d", ix.dir, m.Name, m.Dim, m.Tokens, m.Width)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := ix.update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kModel, b) }); err != nil {
		return fmt.Errorf("index %s: recording the model: %w", ix.dir, err)
	}
	ix.model, ix.hasModel = m, true
	return ix.openFiles()
}

func (ix *Index) usable(write bool, ctx context.Context) error {
	if ix.closed {
		return ErrClosed
	}
	if write && !ix.opts.Write {
		return fmt.Errorf("%w: %s", ErrReadOnly, ix.dir)
	}
	return ctx.Err()
}

// Key returns the stored form of a file path: relative to the directory
// holding the index when the file lies below it (slash-separated), else
// absolute.
func (ix *Index) Key(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(ix.root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(rel), nil
	}
	return abs, nil
}

// maxPath bounds a stored path (longer keys mean a damaged database).
const maxPath = 64 << 10

// Resolve returns the file path of a stored path.
func (ix *Index) Resolve(key string) string {
	if filepath.IsAbs(key) {
		return key
	}
	return filepath.Join(ix.root, filepath.FromSlash(key))
}

// Lookup returns the record of a stored path.
func (ix *Index) Lookup(key string) (Entry, bool, error) {
	var e Entry
	var ok bool
	err := ix.read(context.Background(), func(tx *bolt.Tx) error {
		v := tx.Bucket(bFiles).Get([]byte(key))
		if v == nil {
			return nil
		}
		ok = true
		return decodeEntry(key, v, &e)
	})
	return e, ok, err
}

func decodeEntry(key string, v []byte, e *Entry) error {
	if len(key) > maxPath || v == nil {
		return fmt.Errorf("%w: damaged record %.80q", ErrNotIndex, key)
	}
	if err := json.Unmarshal(v, e); err != nil {
		return fmt.Errorf("%w: record of %.200q: %v", ErrNotIndex, key, err)
	}
	e.Path = key
	return nil
}

// Entries calls fn for every record, in path order.
//
// The database is held (shared) while fn runs: a writer in another process
// waits for the end of the listing.
func (ix *Index) Entries(ctx context.Context, fn func(Entry) error) error {
	return ix.read(ctx, func(tx *bolt.Tx) error {
		n := 0
		return tx.Bucket(bFiles).ForEach(func(k, v []byte) error {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			var e Entry
			if err := decodeEntry(string(k), v, &e); err != nil {
				return err
			}
			return fn(e)
		})
	})
}

// Add stores a batch of images in one transaction: all of them or, on any
// error (a full disk included), none, the index staying as it was. An
// item whose path is already indexed replaces it.
func (ix *Index) Add(ctx context.Context, items []Item) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.usable(true, ctx); err != nil {
		return err
	}
	if !ix.hasModel {
		return fmt.Errorf("%w: %s", ErrNoModel, ix.dir)
	}
	dim, feat := ix.rowSizes()
	seen := map[string]bool{}
	for _, it := range items {
		if len(it.Embedding) != dim {
			return fmt.Errorf("index %s: image %s: embedding of %d values, want %d", ix.dir, it.Path, len(it.Embedding), dim)
		}
		if ix.features && len(it.Features) != feat {
			return fmt.Errorf("index %s: image %s: %d feature values, want %d", ix.dir, it.Path, len(it.Features), feat)
		}
		if it.Path == "" || len(it.Path) > maxPath || seen[it.Path] {
			return fmt.Errorf("index %s: empty, too long or repeated path %.200q in a batch", ix.dir, it.Path)
		}
		seen[it.Path] = true
	}
	// Slots nobody references: free ones first (lowest first), then past
	// the end.
	slots := make([]int, len(items))
	next := ix.slots
	free := sortedSlots(ix.free)
	for i := range items {
		if i < len(free) {
			slots[i] = free[i]
		} else {
			slots[i] = next
			next++
		}
	}
	if err := ix.writeVectors(items, slots); err != nil {
		return fmt.Errorf("index %s: %w (the batch was not recorded; the index is as before it)", ix.dir, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var freed []int
	added := 0
	err := ix.update(func(tx *bolt.Tx) error {
		files, slotB, freeB := tx.Bucket(bFiles), tx.Bucket(bSlots), tx.Bucket(bFree)
		freed, added = freed[:0], 0
		for i, it := range items {
			if old := files.Get([]byte(it.Path)); old != nil {
				var e Entry
				if err := decodeEntry(it.Path, old, &e); err != nil {
					return err
				}
				freed = append(freed, e.Slot)
				if err := slotB.Delete(slotKey(e.Slot)); err != nil {
					return err
				}
				if err := freeB.Put(slotKey(e.Slot), nil); err != nil {
					return err
				}
			} else {
				added++
			}
			e := it.Entry
			e.Slot = slots[i]
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := files.Put([]byte(it.Path), v); err != nil {
				return err
			}
			if err := slotB.Put(slotKey(e.Slot), []byte(it.Path)); err != nil {
				return err
			}
			if err := freeB.Delete(slotKey(e.Slot)); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		if err := meta.Put(kSlots, []byte(strconv.Itoa(next))); err != nil {
			return err
		}
		return meta.Put(kCount, []byte(strconv.Itoa(ix.count+added)))
	})
	if err != nil {
		return fmt.Errorf("index %s: committing a batch of %d images: %w (the index is as before the batch)", ix.dir, len(items), err)
	}
	for _, s := range slots {
		delete(ix.free, s)
	}
	for _, s := range freed {
		ix.free[s] = struct{}{}
	}
	ix.slots, ix.count = next, ix.count+added
	return ix.remap()
}

// writeVectors writes the items' vectors into their slots and syncs the
// files.
func (ix *Index) writeVectors(items []Item, slots []int) error {
	dim, feat := ix.rowSizes()
	quant, bound := make([]int8, dim), make([]float32, 2)
	var fh []uint16
	if ix.features {
		fh = make([]uint16, feat)
	}
	for i, it := range items {
		blipcuda.QuantizeRows(quant, bound, it.Embedding, dim)
		if err := ix.quant.writeInt8(slots[i], quant); err != nil {
			return err
		}
		if err := ix.bound.writeFloat(slots[i], bound); err != nil {
			return err
		}
		if err := ix.full.writeFloat(slots[i], it.Embedding); err != nil {
			return err
		}
		if ix.features {
			blipcuda.EncodeHalf(fh, it.Features)
			if err := ix.feat.writeHalf(slots[i], fh); err != nil {
				return err
			}
		}
	}
	for _, f := range ix.files() {
		if f != nil {
			if err := f.sync(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (ix *Index) remap() error {
	for _, f := range ix.files() {
		if f != nil {
			if err := f.remap(); err != nil {
				return fmt.Errorf("index %s: %w", ix.dir, err)
			}
		}
	}
	return nil
}

// Touch updates the size, mtime and hash of existing records whose
// content did not change (same SHA-256), keeping their vectors, in one
// transaction. Paths not in the index are an error.
func (ix *Index) Touch(ctx context.Context, entries []Entry) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.usable(true, ctx); err != nil {
		return err
	}
	err := ix.update(func(tx *bolt.Tx) error {
		files := tx.Bucket(bFiles)
		for _, e := range entries {
			v := files.Get([]byte(e.Path))
			if v == nil {
				return fmt.Errorf("%s is not in the index", e.Path)
			}
			var old Entry
			if err := decodeEntry(e.Path, v, &old); err != nil {
				return err
			}
			e.Slot = old.Slot
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := files.Put([]byte(e.Path), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index %s: updating %d records: %w", ix.dir, len(entries), err)
	}
	return nil
}

// Remove drops the records of the stored paths (absent ones are ignored)
// in one transaction, and returns how many were removed. Their slots are
// reused by later additions.
func (ix *Index) Remove(ctx context.Context, keys []string) (int, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.usable(true, ctx); err != nil {
		return 0, err
	}
	var freed []int
	err := ix.update(func(tx *bolt.Tx) error {
		files, slotB, freeB := tx.Bucket(bFiles), tx.Bucket(bSlots), tx.Bucket(bFree)
		freed = freed[:0]
		for _, k := range keys {
			v := files.Get([]byte(k))
			if v == nil {
				continue
			}
			var e Entry
			if err := decodeEntry(k, v, &e); err != nil {
				return err
			}
			if err := files.Delete([]byte(k)); err != nil {
				return err
			}
			if err := slotB.Delete(slotKey(e.Slot)); err != nil {
				return err
			}
			if err := freeB.Put(slotKey(e.Slot), nil); err != nil {
				return err
			}
			freed = append(freed, e.Slot)
		}
		return tx.Bucket(bMeta).Put(kCount, []byte(strconv.Itoa(ix.count-len(freed))))
	})
	if err != nil {
		return 0, fmt.Errorf("index %s: removing %d records: %w", ix.dir, len(keys), err)
	}
	for _, s := range freed {
		ix.free[s] = struct{}{}
	}
	ix.count -= len(freed)
	return len(freed), nil
}

// Result is one image found by Search.
type Result struct {
	Entry
	// ITC is the cosine of the query and the image's embedding (exact:
	// from the float32 embeddings).
	ITC float32
}

// Search returns, for each query (a unit-norm ITC text embedding), the k
// images of the index with the highest ITC cosine, best first
// (blipcuda.TopK over the memory-mapped embeddings); all of them when the
// index holds k or fewer.
func (ix *Index) Search(ctx context.Context, queries [][]float32, k int) ([][]Result, error) {
	out := make([][]Result, len(queries))
	err := ix.read(ctx, func(tx *bolt.Tx) error {
		if !ix.hasModel || ix.count == 0 {
			for i := range out {
				out[i] = []Result{}
			}
			return nil
		}
		dim := ix.model.Dim
		e := blipcuda.EmbeddingMatrix{Dim: dim, Quant: ix.quant.int8s()[:ix.slots*dim], Bounds: ix.bound.floats()[:ix.slots*2],
			Full: ix.full.floats()[:ix.slots*dim]}
		if len(ix.free) > 0 {
			e.Skip = func(r int) bool { _, ok := ix.free[r]; return ok }
		}
		hits, err := blipcuda.TopK(ctx, e, queries, k)
		if err != nil {
			return fmt.Errorf("index %s: %w", ix.dir, err)
		}
		files, slotB := tx.Bucket(bFiles), tx.Bucket(bSlots)
		for q, hs := range hits {
			out[q] = make([]Result, len(hs))
			for i, h := range hs {
				key := slotB.Get(slotKey(h.Row))
				if key == nil {
					return fmt.Errorf("%w: %s: slot %d has no record", ErrNotIndex, ix.dir, h.Row)
				}
				var e Entry
				if err := decodeEntry(string(key), files.Get(key), &e); err != nil {
					return err
				}
				out[q][i] = Result{Entry: e, ITC: h.ITC}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Embedding returns a copy of the float32 embedding of a record (as
// returned by Lookup, Entries or Search). It fails when the record has
// been removed or replaced since.
func (ix *Index) Embedding(e Entry) ([]float32, error) {
	var out []float32
	err := ix.read(context.Background(), func(tx *bolt.Tx) error {
		if err := ix.rowOK(tx, e); err != nil {
			return err
		}
		dim := ix.model.Dim
		out = append([]float32(nil), ix.full.floats()[e.Slot*dim:(e.Slot+1)*dim]...)
		return nil
	})
	return out, err
}

// Features returns the raw features of a record, converted to float32;
// nil when the index stores none. Like Embedding, it fails when the record
// has been removed or replaced since it was read.
func (ix *Index) Features(e Entry) ([]float32, error) {
	var out []float32
	err := ix.read(context.Background(), func(tx *bolt.Tx) error {
		if err := ix.rowOK(tx, e); err != nil || !ix.features {
			return err
		}
		_, n := ix.rowSizes()
		out = make([]float32, n)
		blipcuda.DecodeHalf(out, ix.feat.halves()[e.Slot*n:(e.Slot+1)*n])
		return nil
	})
	return out, err
}

// rowOK checks that e's slot still holds e.
func (ix *Index) rowOK(tx *bolt.Tx, e Entry) error {
	if !ix.hasModel || e.Slot < 0 || e.Slot >= ix.slots || string(tx.Bucket(bSlots).Get(slotKey(e.Slot))) != e.Path {
		return fmt.Errorf("index %s: %s: the record is no longer in slot %d (removed or replaced since it was read)", ix.dir, e.Path, e.Slot)
	}
	return nil
}

// Stats describes an index.
type Stats struct {
	Images, Slots, FreeSlots int
	Features                 bool
	Bytes                    int64 // on disk, all files
}

// Stats returns the index's counts and size on disk.
func (ix *Index) Stats() Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := Stats{Images: ix.count, Slots: ix.slots, FreeSlots: len(ix.free), Features: ix.features}
	for _, n := range []string{dbName, quantName, boundName, fullName, featName} {
		if st, err := os.Stat(filepath.Join(ix.dir, n)); err == nil {
			s.Bytes += st.Size()
		}
	}
	return s
}

// sortedSlots returns the set's slots in ascending order.
func sortedSlots(set map[int]struct{}) []int {
	out := make([]int, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
