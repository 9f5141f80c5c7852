package data

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// cifarKind describes one of the two CIFAR binary distributions. Each record
// is labelBytes label bytes followed by 3072 pixel bytes stored as the 1024
// red, 1024 green and 1024 blue values of a 32×32 image, i.e. already CHW.
type cifarKind struct {
	archive    string // name of the official .tar.gz
	folder     string // folder the archive extracts to
	train      []string
	test       []string
	meta       string // class names, one per line
	labelBytes int
	labelOff   int // offset of the label used (CIFAR-100: fine label)
	coarse     int // classes of the coarse label byte, 0 if absent
}

const cifarPixels = 3 * 32 * 32

var cifarKinds = map[string]*cifarKind{
	"cifar10": {
		archive: "cifar-10-binary.tar.gz", folder: "cifar-10-batches-bin",
		train: []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
		test:  []string{"test_batch.bin"}, meta: "batches.meta.txt",
		labelBytes: 1,
	},
	"cifar100": {
		archive: "cifar-100-binary.tar.gz", folder: "cifar-100-binary",
		train: []string{"train.bin"}, test: []string{"test.bin"}, meta: "fine_label_names.txt",
		labelBytes: 2, labelOff: 1, coarse: 20,
	},
}

func (k *cifarKind) record() int { return k.labelBytes + cifarPixels }

// cifarCount returns the number of records in a batch file of the given size.
func cifarCount(size int64, k *cifarKind, name string) (int, error) {
	rec := int64(k.record())
	if size <= 0 || size%rec != 0 {
		return 0, fmt.Errorf("%w: %s: size %d is not a positive multiple of the %d-byte record", ErrCorrupt, name, size, rec)
	}
	return int(size / rec), nil
}

// decodeCIFARInto validates the records of one batch file and scatters them
// into labels and pix, which must hold exactly len(b)/record samples.
func decodeCIFARInto(b []byte, k *cifarKind, name string, labels []int32, pix []uint8, classes int) error {
	rec := k.record()
	n := len(b) / rec
	if n*rec != len(b) || len(labels) != n || len(pix) != n*cifarPixels {
		return fmt.Errorf("%w: %s: size %d is not a multiple of the %d-byte record", ErrCorrupt, name, len(b), rec)
	}
	for i := range n {
		r := b[i*rec : (i+1)*rec]
		if k.coarse > 0 && int(r[0]) >= k.coarse {
			return fmt.Errorf("%w: %s: coarse label %d of record %d is outside [0, %d)", ErrCorrupt, name, r[0], i, k.coarse)
		}
		v := r[k.labelOff]
		if int(v) >= classes {
			return fmt.Errorf("%w: %s: label %d of record %d is outside [0, %d)", ErrCorrupt, name, v, i, classes)
		}
		labels[i] = int32(v)
		copy(pix[i*cifarPixels:(i+1)*cifarPixels], r[k.labelBytes:])
	}
	return nil
}

// decodeCIFAR decodes one whole batch file held in memory.
func decodeCIFAR(b []byte, k *cifarKind, name string, classes int) ([]int32, []uint8, error) {
	n, err := cifarCount(int64(len(b)), k, name)
	if err != nil {
		return nil, nil, err
	}
	labels, pix := make([]int32, n), make([]uint8, n*cifarPixels)
	if err := decodeCIFARInto(b, k, name, labels, pix, classes); err != nil {
		return nil, nil, err
	}
	return labels, pix, nil
}

// parseClassNames reads one class name per line, ignoring blank lines.
func parseClassNames(b []byte, classes int, name string) ([]string, error) {
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	if len(names) != classes {
		return nil, fmt.Errorf("%w: %s: %d class names, want %d", ErrCorrupt, name, len(names), classes)
	}
	return names, nil
}

func loadCIFAR(spec DatasetSpec, dirs []string, train bool) (*Dataset, error) {
	k := cifarKinds[spec.Name]
	files := k.test
	if train {
		files = k.train
	}
	var tried []string
	for _, d := range dirs {
		// The extracted folder wins over the archive because it skips
		// decompressing 160 MB; a folder named by the user directly counts too.
		for _, f := range []string{filepath.Join(d, k.folder), d} {
			if hasAll(f, files) {
				return cifarFromFolder(spec, k, f, files)
			}
		}
		a := filepath.Join(d, k.archive)
		if isFile(a) {
			return cifarFromArchive(spec, k, a, files)
		}
		tried = append(tried, d)
	}
	return nil, fmt.Errorf("%w: %s: neither %s nor %s/ with %s is in %q (run 'tnn download --dataset %s --data_path DIR' or place the files there)",
		ErrNotFound, spec.Name, k.archive, k.folder, strings.Join(files, ", "), tried, spec.Name)
}

func hasAll(dir string, files []string) bool {
	for _, f := range files {
		if !isFile(filepath.Join(dir, f)) {
			return false
		}
	}
	return true
}

func cifarFromFolder(spec DatasetSpec, k *cifarKind, dir string, files []string) (*Dataset, error) {
	n := 0
	for _, f := range files {
		p := filepath.Join(dir, f)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotFound, p, err)
		}
		m, err := cifarCount(fi.Size(), k, p)
		if err != nil {
			return nil, err
		}
		n += m
	}
	ds := newCIFARDataset(spec, n)
	at := 0
	for _, f := range files {
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
		}
		m, err := cifarCount(int64(len(b)), k, p)
		if err != nil {
			return nil, err
		}
		if at+m > n {
			return nil, fmt.Errorf("%w: %s: file grew while being read", ErrCorrupt, p)
		}
		if err := decodeCIFARInto(b, k, p, ds.Labels[at:at+m], ds.Pixels[at*cifarPixels:(at+m)*cifarPixels], spec.Classes); err != nil {
			return nil, err
		}
		at += m
	}
	if at != n {
		return nil, fmt.Errorf("%w: %s: files shrank while being read", ErrCorrupt, dir)
	}
	mp := filepath.Join(dir, k.meta)
	if fi, err := os.Stat(mp); err == nil && fi.Mode().IsRegular() {
		if fi.Size() > 1<<20 {
			return nil, fmt.Errorf("%w: %s: %d bytes is too large for a class list", ErrCorrupt, mp, fi.Size())
		}
		b, err := os.ReadFile(mp)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, mp, err)
		}
		if ds.ClassNames, err = parseClassNames(b, spec.Classes, mp); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

func newCIFARDataset(spec DatasetSpec, n int) *Dataset {
	return &Dataset{Name: spec.Name, N: n, C: 3, H: 32, W: 32,
		Pixels: make([]uint8, n*cifarPixels), Labels: make([]int32, n),
		Classes: spec.Classes, ClassNames: spec.ClassNames}
}

func cifarFromArchive(spec DatasetSpec, k *cifarKind, archive string, files []string) (*Dataset, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotFound, archive, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, archive, err)
	}
	return decodeCIFARArchive(f, fi.Size(), spec, k, archive, files)
}

// decodeCIFARArchive streams the official .tar.gz and keeps only the members
// it needs, stopping as soon as it has them.
func decodeCIFARArchive(r io.Reader, size int64, spec DatasetSpec, k *cifarKind, name string, files []string) (*Dataset, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a gzip archive: %v", ErrCorrupt, name, err)
	}
	limit := size*maxDeflateRatio + 1024
	want := map[string]bool{k.meta: true}
	for _, f := range files {
		want[f] = true
	}
	got := map[string][]byte{}
	tr := tar.NewReader(zr)
	for len(got) < len(want) {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		dir, base := path.Split(path.Clean(strings.TrimPrefix(h.Name, "./")))
		if path.Clean(dir) != k.folder || !want[base] {
			continue
		}
		member := name + ":" + h.Name
		if base == k.meta {
			if h.Size > 1<<20 {
				return nil, fmt.Errorf("%w: %s: %d bytes is too large for a class list", ErrCorrupt, member, h.Size)
			}
		} else if _, err := cifarCount(h.Size, k, member); err != nil {
			return nil, err
		}
		if h.Size > limit {
			return nil, fmt.Errorf("%w: %s: header claims %d bytes, more than the %d-byte archive can hold", ErrCorrupt, member, h.Size, size)
		}
		b, err := readExact(tr, h.Size, 8*size, member)
		if err != nil {
			return nil, err
		}
		got[base] = b
	}
	n := 0
	for _, f := range files {
		b, ok := got[f]
		if !ok {
			return nil, fmt.Errorf("%w: %s: archive lacks %s/%s", ErrCorrupt, name, k.folder, f)
		}
		n += len(b) / k.record()
	}
	ds := newCIFARDataset(spec, n)
	at := 0
	for _, f := range files {
		b := got[f]
		m := len(b) / k.record()
		if err := decodeCIFARInto(b, k, name+":"+f, ds.Labels[at:at+m], ds.Pixels[at*cifarPixels:(at+m)*cifarPixels], spec.Classes); err != nil {
			return nil, err
		}
		delete(got, f) // lets the GC reclaim each member once copied
		at += m
	}
	if b, ok := got[k.meta]; ok {
		if ds.ClassNames, err = parseClassNames(b, spec.Classes, name+":"+k.meta); err != nil {
			return nil, err
		}
	}
	return ds, nil
}
