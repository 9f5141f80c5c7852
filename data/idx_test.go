package data

import (
	"bytes"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLoadIDXRawAndGzip(t *testing.T) {
	dir := t.TempDir()
	trImg, trLbl, trPix, trLab := fakeMNIST(7, 1)
	teImg, teLbl, tePix, teLab := fakeMNIST(3, 2)
	// Training files raw in dir, test files compressed in the per-dataset
	// subfolder Download uses: both layouts must be found.
	writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"), trImg)
	writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), trLbl)
	writeFile(t, filepath.Join(dir, "mnist", "t10k-images-idx3-ubyte.gz"), gzipBytes(teImg))
	writeFile(t, filepath.Join(dir, "mnist", "t10k-labels-idx1-ubyte.gz"), gzipBytes(teLbl))
	for _, c := range []struct {
		train  bool
		pix    []byte
		labels []int32
	}{{true, trPix, trLab}, {false, tePix, teLab}} {
		ds, err := Load("mnist", dir, c.train)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Name != "mnist" || ds.N != len(c.labels) || ds.C != 1 || ds.H != 28 || ds.W != 28 || ds.Classes != 10 || len(ds.ClassNames) != 10 {
			t.Fatalf("train=%v: got %+v", c.train, ds)
		}
		if !bytes.Equal(ds.Pixels, c.pix) {
			t.Errorf("train=%v: pixels differ", c.train)
		}
		for i := range c.labels {
			if ds.Labels[i] != c.labels[i] {
				t.Fatalf("train=%v: label %d = %d, want %d", c.train, i, ds.Labels[i], c.labels[i])
			}
		}
	}
}

func TestSubset(t *testing.T) {
	_, _, pix, lab := fakeMNIST(5, 3)
	ds := &Dataset{N: 5, C: 1, H: 28, W: 28, Pixels: pix, Labels: lab, Classes: 10}
	s := ds.Subset(2)
	if s.N != 2 || len(s.Labels) != 2 || len(s.Pixels) != 2*784 || ds.N != 5 {
		t.Fatalf("Subset(2) = N %d, %d labels, %d pixels", s.N, len(s.Labels), len(s.Pixels))
	}
	if ds.Subset(0) != ds || ds.Subset(9) != ds {
		t.Error("Subset(0) and Subset(n>N) must return the dataset itself")
	}
}

func TestIDXErrors(t *testing.T) {
	img, lbl, _, _ := fakeMNIST(4, 5)
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	badGz := gzipBytes(img)
	badGz[len(badGz)-6] ^= 0xff // CRC32 trailer
	cases := []struct {
		name     string
		img, lbl []byte
		want     string
	}{
		{"bad magic", mod(img, func(b []byte) []byte { b[0] = 1; return b }), lbl, "magic"},
		{"element type", mod(img, func(b []byte) []byte { b[2] = 0x0d; return b }), lbl, "element type"},
		{"image dims", idxBytes([]int{4, 784}, img[16:]), lbl, "dimensions"},
		{"label dims", img, idxBytes([]int{2, 2}, lbl[8:]), "dimensions"},
		{"image size", idxBytes([]int{4, 32, 32}, pattern(4*1024, 1)), lbl, "32x32"},
		{"zero dim", idxBytes([]int{0, 28, 28}, nil), lbl, "zero"},
		{"truncated raw", img[:len(img)-1], lbl, "header claims"},
		{"truncated header", img[:10], lbl, "short"},
		{"truncated gzip", gzipBytes(img)[:200], lbl, "truncated"},
		{"gzip crc", badGz, lbl, "checksum"},
		{"trailing data", append(append([]byte(nil), img...), 1), lbl, "after"},
		{"count mismatch", img, idxBytes([]int{3}, lbl[8:11]), "3 labels"},
		{"label range", img, mod(lbl, func(b []byte) []byte { b[9] = 10; return b }), "outside"},
		{"empty", nil, lbl, "short"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"), c.img)
			writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), c.lbl)
			_, err := Load("mnist", dir, true)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrCorrupt mentioning %q", err, c.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the file", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

// A header claiming ~2^64 bytes, raw or compressed, must be rejected from the
// file length alone, before allocating anything of that order.
func TestIDXLyingHeader(t *testing.T) {
	huge := idxBytes([]int{60000, 1 << 20, 1 << 20}, pattern(100, 9))
	modest := idxBytes([]int{1 << 30}, pattern(100, 9)) // 1 GiB claimed by a 100-byte payload
	for _, c := range []struct {
		name string
		b    []byte
	}{{"raw", huge}, {"gzip", gzipBytes(huge)}, {"raw1G", modest}, {"gzip1G", gzipBytes(modest)}} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := decodeIDX(bytes.NewReader(c.b), int64(len(c.b)), "lie")
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", c.name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
			t.Errorf("%s: allocated %d bytes for a %d-byte file", c.name, d, len(c.b))
		}
	}
}

func TestLoadNotFoundAndUnknown(t *testing.T) {
	dir := t.TempDir()
	_, err := Load("mnist", dir, true)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "train-images-idx3-ubyte") || !strings.Contains(err.Error(), dir) {
		t.Errorf("got %v, want ErrNotFound naming the file and folder", err)
	}
	_, err = Load("cifar10", dir, false)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "cifar-10-binary.tar.gz") {
		t.Errorf("got %v, want ErrNotFound naming the archive", err)
	}
	for _, f := range []func() error{
		func() error { _, err := Load("imagenet", dir, true); return err },
		func() error { _, err := Spec("svhn"); return err },
		func() error { return Download("stl10", dir, nil) },
	} {
		err := f()
		if !errors.Is(err, ErrUnknownDataset) || !strings.Contains(err.Error(), "fashion-mnist, fashion-mnist-sample, cifar10, cifar100") {
			t.Errorf("got %v, want ErrUnknownDataset listing the valid names", err)
		}
	}
}

func TestSample(t *testing.T) {
	for _, c := range []struct {
		train bool
		n     int
	}{{true, 6000}, {false, 1000}} {
		ds, err := Load("fashion-mnist-sample", "/nonexistent", c.train)
		if err != nil {
			t.Fatal(err)
		}
		if ds.N != c.n || ds.C != 1 || ds.H != 28 || ds.W != 28 || ds.Name != "fashion-mnist-sample" || ds.ClassNames[9] != "Ankle boot" {
			t.Fatalf("train=%v: N=%d %dx%dx%d %q", c.train, ds.N, ds.C, ds.H, ds.W, ds.Name)
		}
		var counts [10]int
		for _, l := range ds.Labels {
			counts[l]++
		}
		for k, n := range counts {
			if n < c.n/20 {
				t.Errorf("train=%v: class %d has only %d samples", c.train, k, n)
			}
		}
	}
}
