package data

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// idxUbyte is the IDX element-type code for unsigned bytes, the only type the
// MNIST family uses.
const idxUbyte = 0x08

// ReadIDX reads an IDX file of unsigned bytes (raw or gzip-compressed, told
// apart by magic) and returns its dimensions and payload.
func ReadIDX(path string) (dims []int, payload []uint8, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrNotFound, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return decodeIDX(f, fi.Size(), path)
}

func decodeIDX(r io.Reader, size int64, name string) ([]int, []uint8, error) {
	r, limit, hint, err := maybeGunzip(r, size, name)
	if err != nil {
		return nil, nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: short IDX header", ErrCorrupt, name)
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, nil, fmt.Errorf("%w: %s: bad IDX magic %02x%02x", ErrCorrupt, name, hdr[0], hdr[1])
	}
	if hdr[2] != idxUbyte {
		return nil, nil, fmt.Errorf("%w: %s: IDX element type 0x%02x, want unsigned byte 0x08", ErrCorrupt, name, hdr[2])
	}
	nd := int(hdr[3])
	if nd == 0 {
		return nil, nil, fmt.Errorf("%w: %s: IDX file with no dimensions", ErrCorrupt, name)
	}
	raw := make([]byte, 4*nd)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: short IDX header", ErrCorrupt, name)
	}
	hdrLen := int64(4 + 4*nd)
	avail := limit - hdrLen
	dims := make([]int, nd)
	total := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(raw[4*i:]))
		if d == 0 {
			return nil, nil, fmt.Errorf("%w: %s: IDX dimension %d is zero", ErrCorrupt, name, i)
		}
		// Checking each partial product against the file keeps the
		// multiplication from overflowing.
		total *= d
		if total > avail {
			return nil, nil, fmt.Errorf("%w: %s: header claims more data than the %d-byte file can hold", ErrCorrupt, name, size)
		}
		dims[i] = int(d)
	}
	payload, err := readExact(r, total, hint, name)
	if err != nil {
		return nil, nil, err
	}
	return dims, payload, nil
}

// findIDX looks for base or base.gz in each folder, in order.
func findIDX(dirs []string, base string) (string, bool) {
	for _, d := range dirs {
		for _, n := range []string{base, base + ".gz"} {
			p := filepath.Join(d, n)
			if isFile(p) {
				return p, true
			}
		}
	}
	return "", false
}

func loadIDXDataset(spec DatasetSpec, dirs []string, train bool) (*Dataset, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	imgBase, lblBase := prefix+"-images-idx3-ubyte", prefix+"-labels-idx1-ubyte"
	var paths [2]string
	for i, b := range []string{imgBase, lblBase} {
		p, ok := findIDX(dirs, b)
		if !ok {
			return nil, fmt.Errorf("%w: %s: %s(.gz) is in none of %q (run 'tnn download --dataset %s --data_path DIR' or place the files there)",
				ErrNotFound, spec.Name, b, dirs, spec.Name)
		}
		paths[i] = p
	}
	idims, pix, err := ReadIDX(paths[0])
	if err != nil {
		return nil, err
	}
	ldims, lbl, err := ReadIDX(paths[1])
	if err != nil {
		return nil, err
	}
	return idxDataset(spec, paths[0], idims, pix, paths[1], ldims, lbl)
}

// idxDataset checks decoded image and label IDX payloads against each other
// and against the dataset's geometry and class count.
func idxDataset(spec DatasetSpec, imgName string, idims []int, pix []uint8, lblName string, ldims []int, lbl []uint8) (*Dataset, error) {
	if len(idims) != 3 {
		return nil, fmt.Errorf("%w: %s: image file has %d dimensions, want 3", ErrCorrupt, imgName, len(idims))
	}
	if idims[1] != spec.H || idims[2] != spec.W {
		return nil, fmt.Errorf("%w: %s: images are %dx%d, want %dx%d", ErrCorrupt, imgName, idims[1], idims[2], spec.H, spec.W)
	}
	if len(ldims) != 1 {
		return nil, fmt.Errorf("%w: %s: label file has %d dimensions, want 1", ErrCorrupt, lblName, len(ldims))
	}
	if idims[0] != ldims[0] {
		return nil, fmt.Errorf("%w: %s holds %d images but %s holds %d labels", ErrCorrupt, imgName, idims[0], lblName, ldims[0])
	}
	labels, err := checkLabels(lbl, 1, 0, spec.Classes, lblName)
	if err != nil {
		return nil, err
	}
	return &Dataset{Name: spec.Name, N: idims[0], C: 1, H: spec.H, W: spec.W, Pixels: pix,
		Labels: labels, Classes: spec.Classes, ClassNames: spec.ClassNames}, nil
}

// checkLabels extracts the byte at offset off of every stride-byte record and
// rejects values outside [0, classes).
func checkLabels(b []uint8, stride, off, classes int, name string) ([]int32, error) {
	n := len(b) / stride
	out := make([]int32, n)
	for i := range out {
		v := b[i*stride+off]
		if int(v) >= classes {
			return nil, fmt.Errorf("%w: %s: label %d of sample %d is outside [0, %d)", ErrCorrupt, name, v, i, classes)
		}
		out[i] = int32(v)
	}
	return out, nil
}
