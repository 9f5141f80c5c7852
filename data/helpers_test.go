package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// idxBytes builds an unsigned-byte IDX file.
func idxBytes(dims []int, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, idxUbyte, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(payload)
	return b.Bytes()
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

type member struct {
	name string
	body []byte
}

func tarGz(t testing.TB, ms []member) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.body)
	}
	tw.Close()
	return gzipBytes(tb.Bytes())
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pattern returns n deterministic bytes that differ per seed.
func pattern(n int, seed uint64) []byte {
	r := rng{seed}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.next())
	}
	return b
}

// fakeMNIST returns image and label IDX files of n random 28×28 samples.
func fakeMNIST(n int, seed uint64) (img, lbl, pix []byte, labels []int32) {
	pix = pattern(n*28*28, seed)
	raw := pattern(n, seed+1)
	labels = make([]int32, n)
	lb := make([]byte, n)
	for i := range lb {
		lb[i] = raw[i] % 10
		labels[i] = int32(lb[i])
	}
	return idxBytes([]int{n, 28, 28}, pix), idxBytes([]int{n}, lb), pix, labels
}

// fakeCIFAR returns a binary batch file of n records with its expected
// labels and pixels; for CIFAR-100 the coarse byte is fine/5.
func fakeCIFAR(k *cifarKind, classes, n int, seed uint64) (file []byte, labels []int32, pix []byte) {
	pix = pattern(n*cifarPixels, seed)
	raw := pattern(n, seed+7)
	labels = make([]int32, n)
	for i := range n {
		l := raw[i] % byte(classes)
		labels[i] = int32(l)
		if k.labelBytes == 2 {
			file = append(file, l/5, l)
		} else {
			file = append(file, l)
		}
		file = append(file, pix[i*cifarPixels:(i+1)*cifarPixels]...)
	}
	return file, labels, pix
}
