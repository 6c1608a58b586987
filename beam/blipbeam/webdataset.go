package blipbeam

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/blipcuda/blipcuda/imageproc"
)

// Image members of a WebDataset sample, in order of preference.
var imageExts = []string{"jpg", "jpeg", "png", "webp", "gif", "bmp"}

func init() {
	register.DoFn4x1[context.Context, fileio.ReadableFile, func(Pair), func(Failure), error](&wdsReadFn{})
	register.Emitter1[Pair]()
	register.DoFn3x1[context.Context, int, func(*PairScore) bool, error](&wdsWriteFn{})
	register.Iter1[PairScore]()
}

// ReadWebDataset reads WebDataset tar shards as img2dataset writes them
// (glob: local or any Beam filesystem; .tar, or .tar.gz decompressed by
// extension): each sample is the members sharing a key (the member name up
// to the first dot of its base name), and becomes a Pair of its image
// (KEY.jpg, .jpeg, .png, .webp, .gif or .bmp: ImageBytes, with Image set to
// SHARD#MEMBER for messages), its caption (KEY.txt) and its metadata
// (KEY.json, kept as Meta). A sample without an image or a caption, or with
// a member larger than cfg.MaxBytes, is a Failure; a tar that cannot be
// read fails the bundle.
func ReadWebDataset(s beam.Scope, glob string, cfg Config) (pairs, failures beam.PCollection) {
	s = s.Scope("blipbeam.ReadWebDataset")
	files := fileio.ReadMatches(s, fileio.MatchFiles(s, glob), fileio.ReadAutoCompression())
	return beam.ParDo2(s, &wdsReadFn{Config: cfg}, files)
}

type wdsReadFn struct {
	Config Config `json:"config"`
}

// sample is the members of one WebDataset key.
type sample struct {
	key              string
	image, imageName string
	members          map[string][]byte
	bad              string // why the sample is refused
}

func (f *wdsReadFn) ProcessElement(ctx context.Context, file fileio.ReadableFile, emit func(Pair), fail func(Failure)) error {
	shard := file.Metadata.Path
	r, err := file.Open(ctx)
	if err != nil {
		return fmt.Errorf("blipbeam: webdataset %s: %w", shard, err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	var cur *sample
	flush := func() {
		if cur != nil {
			f.emit(shard, cur, emit, fail)
		}
		cur = nil
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("blipbeam: webdataset %s: %w", shard, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		key, ext, ok := splitMember(h.Name)
		if !ok {
			continue
		}
		if cur == nil || cur.key != key {
			flush()
			cur = &sample{key: key, members: map[string][]byte{}}
		}
		if h.Size > f.Config.maxBytes() {
			cur.bad = fmt.Sprintf("webdataset %s: member %s has %d bytes, more than %d", shard, h.Name, h.Size, f.Config.maxBytes())
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("blipbeam: webdataset %s: %s: %w", shard, h.Name, err)
		}
		cur.members[ext] = data
		if slices.Contains(imageExts, ext) && (cur.image == "" || slices.Index(imageExts, ext) < slices.Index(imageExts, cur.image)) {
			cur.image, cur.imageName = ext, h.Name
		}
	}
	flush()
	return nil
}

// emit turns a complete sample into a Pair, or a Failure.
func (f *wdsReadFn) emit(shard string, sm *sample, emit func(Pair), fail func(Failure)) {
	caption, hasCaption := sm.members["txt"]
	switch {
	case sm.bad != "":
		fail(Failure{Ref: shard, Key: sm.key, Caption: string(caption), Reason: sm.bad})
		return
	case sm.image == "":
		fail(Failure{Ref: shard, Key: sm.key, Caption: string(caption), Reason: fmt.Sprintf("webdataset %s: sample %s has no image (%s)", shard, sm.key, strings.Join(imageExts, ", "))})
		return
	case !hasCaption:
		fail(Failure{Ref: shard + "#" + sm.imageName, Key: sm.key, Reason: fmt.Sprintf("webdataset %s: sample %s has no caption (%s.txt)", shard, sm.key, sm.key)})
		return
	}
	emit(Pair{Key: sm.key, Image: shard + "#" + sm.imageName, ImageBytes: sm.members[sm.image],
		Caption: string(caption), Meta: string(sm.members["json"])})
}

// splitMember splits a tar member name into WebDataset key and extension
// (lower-cased): "dir/000001.jpg" → ("dir/000001", "jpg").
func splitMember(name string) (key, ext string, ok bool) {
	dir, base := path.Split(name)
	i := strings.IndexByte(base, '.')
	if i <= 0 || i == len(base)-1 {
		return "", "", false
	}
	return dir + base[:i], strings.ToLower(base[i+1:]), true
}

// WriteWebDataset writes scored pairs as WebDataset tar shards
// PREFIX-SSSSS-of-NNNNN.tar, as img2dataset lays them out: per sample
// KEY.jpg (or the image's own format), KEY.txt (the caption) and KEY.json
// (the input's metadata with itm_prob, itm_logit, itc added). A sample's
// shard follows from its key and samples are sorted by key, so a retried
// write produces the same shard. Pairs read from references (not bytes)
// are read again.
func WriteWebDataset(s beam.Scope, prefix string, shards int, cfg Config, scores beam.PCollection) {
	checkShards("WriteWebDataset", shards)
	s = s.Scope("blipbeam.WriteWebDataset")
	keyed := beam.ParDo(s, &shardKeyFn{Shards: shards}, scores)
	beam.ParDo0(s, &wdsWriteFn{Prefix: prefix, Shards: shards, Config: cfg}, beam.GroupByKey(s, keyed))
}

type wdsWriteFn struct {
	Prefix string `json:"prefix"`
	Shards int    `json:"shards"`
	Config Config `json:"config"`
}

func (f *wdsWriteFn) ProcessElement(ctx context.Context, shard int, iter func(*PairScore) bool) error {
	var all []PairScore
	var p PairScore
	for iter(&p) {
		all = append(all, p)
	}
	slices.SortFunc(all, func(a, b PairScore) int { return cmpStrings(sampleKey(a), sampleKey(b), a.Caption, b.Caption) })
	return writeFile(ctx, ShardName(f.Prefix, shard, f.Shards, ".tar"), func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, p := range all {
			if err := f.writeSample(ctx, tw, p); err != nil {
				return err
			}
		}
		return tw.Close()
	})
}

func (f *wdsWriteFn) writeSample(ctx context.Context, tw *tar.Writer, p PairScore) error {
	key := sampleKey(p)
	data := p.ImageBytes
	if data == nil {
		b, err := readRef(ctx, p.Image, f.Config.maxBytes())
		if err != nil {
			return fmt.Errorf("sample %s: %w", key, err)
		}
		data = b.data
	}
	meta := map[string]any{}
	if p.Meta != "" {
		if err := json.Unmarshal([]byte(p.Meta), &meta); err != nil {
			meta = map[string]any{"meta": p.Meta}
		}
	}
	if _, ok := meta["key"]; !ok {
		meta["key"] = key
	}
	if _, ok := meta["caption"]; !ok {
		meta["caption"] = p.Caption
	}
	meta["itm_prob"], meta["itm_logit"], meta["itc"] = p.ITMProb, p.ITMLogit, p.ITC
	js, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		ext  string
		data []byte
	}{{imageExt(data), data}, {"txt", []byte(p.Caption)}, {"json", js}} {
		h := &tar.Header{Name: key + "." + m.ext, Mode: 0o644, Size: int64(len(m.data)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(m.data); err != nil {
			return err
		}
	}
	return nil
}

// sampleKey is a pair's WebDataset key: its own, or one derived from its
// image and caption.
func sampleKey(p PairScore) string {
	if p.Key != "" {
		return p.Key
	}
	return newBlob([]byte(p.Image + "\x00" + p.Caption)).sha256[:16]
}

// imageExt is the file extension WebDataset readers expect for an image's
// format (imageproc.Format), "jpg" for JPEG and for what no magic bytes
// name.
func imageExt(data []byte) string {
	switch f := imageproc.Format(data); f {
	case "", "jpeg":
		return "jpg"
	default:
		return f
	}
}

// checkShards refuses a shard count that is not positive (a construction
// error, reported as Beam's constructors do).
func checkShards(what string, n int) {
	if n <= 0 {
		panic(fmt.Sprintf("blipbeam.%s: %d shards: want a positive number", what, n))
	}
}
