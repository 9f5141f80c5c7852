// Command mksample regenerates the embedded Fashion-MNIST sample in
// data/sample from the full gzip IDX files: it keeps the first -train
// training and first -test test records and recompresses them.
//
// From the data folder (as go generate does):
//
//	go run ./internal/mksample -src /usr/share/datasets/fashion-mnist -out sample
//
// It deliberately does not import package data, which embeds the files this
// command writes and so cannot compile while they are missing.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tnn-go/tnn/internal/atomicfile"
)

func main() {
	src := flag.String("src", "/usr/share/datasets/fashion-mnist", "folder holding the four official .gz IDX files")
	out := flag.String("out", "sample", "folder to write the sample to")
	ntrain := flag.Int("train", 6000, "training records to keep")
	ntest := flag.Int("test", 1000, "test records to keep")
	flag.Parse()
	jobs := []struct {
		name string
		n    int
	}{
		{"train-images-idx3-ubyte.gz", *ntrain},
		{"train-labels-idx1-ubyte.gz", *ntrain},
		{"t10k-images-idx3-ubyte.gz", *ntest},
		{"t10k-labels-idx1-ubyte.gz", *ntest},
	}
	for _, j := range jobs {
		if err := cut(filepath.Join(*src, j.name), filepath.Join(*out, j.name), j.n); err != nil {
			fmt.Fprintln(os.Stderr, "mksample:", err)
			os.Exit(1)
		}
	}
}

// cut copies the header of an IDX file with its first dimension replaced by
// n, followed by the first n records.
func cut(src, dst string, n int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	var h [4]byte
	if _, err := io.ReadFull(zr, h[:]); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if h[0] != 0 || h[1] != 0 || h[2] != 8 || h[3] == 0 {
		return fmt.Errorf("%s: not an unsigned-byte IDX file", src)
	}
	dims := make([]uint32, h[3])
	if err := binary.Read(zr, binary.BigEndian, dims); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if int(dims[0]) < n {
		return fmt.Errorf("%s: has %d records, fewer than %d", src, dims[0], n)
	}
	rec := 1
	for _, d := range dims[1:] {
		rec *= int(d)
	}
	dims[0] = uint32(n)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.Name = filepath.Base(dst[:len(dst)-len(".gz")])
	zw.Write(h[:])
	binary.Write(zw, binary.BigEndian, dims)
	if _, err := io.CopyN(zw, zr, int64(n*rec)); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: truncated", src)
		}
		return fmt.Errorf("%s: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return atomicfile.WriteBytes(dst, buf.Bytes(), 0o644)
}
