// Package fakedata writes small datasets in the real file formats for tests
// that exercise the whole pipeline without the real (large) files.
package fakedata

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// WriteIDX writes a gzip-compressed IDX file (unsigned bytes) as the MNIST
// distribution does.
func WriteIDX(path string, dims []int, payload []byte) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	hdr := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
	}
	zw.Write(hdr)
	zw.Write(payload)
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// WriteFashion writes train and t10k splits of 28×28 images in
// Fashion-MNIST's files. The classes are learnable: class c brightens rows
// 3c..3c+2.
func WriteFashion(dir string, ntrain, ntest int) error {
	r := rand.New(rand.NewPCG(3, 4))
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", ntrain}, {"t10k", ntest}} {
		pix := make([]byte, split.n*28*28)
		lab := make([]byte, split.n)
		for i := range lab {
			c := r.IntN(10)
			lab[i] = byte(c)
			img := pix[i*784 : (i+1)*784]
			for j := range img {
				v := r.IntN(60)
				if row := j / 28; row/3 == c {
					v += 150
				}
				img[j] = byte(v)
			}
		}
		if err := WriteIDX(filepath.Join(dir, split.prefix+"-images-idx3-ubyte.gz"), []int{split.n, 28, 28}, pix); err != nil {
			return err
		}
		if err := WriteIDX(filepath.Join(dir, split.prefix+"-labels-idx1-ubyte.gz"), []int{split.n}, lab); err != nil {
			return err
		}
	}
	return nil
}
