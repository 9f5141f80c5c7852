package data

import (
	"bytes"
	"testing"
)

// FuzzIDX feeds arbitrary bytes, raw or gzip, to the IDX decoder: it must
// never panic, and whatever it accepts must be self-consistent.
func FuzzIDX(f *testing.F) {
	img := idxBytes([]int{2, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(img)
	f.Add(gzipBytes(img))
	f.Add(idxBytes([]int{3}, []byte{0, 9, 1}))
	f.Add(idxBytes([]int{1 << 30, 1 << 30}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, payload, err := decodeIDX(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if n != len(payload) {
			t.Fatalf("dims %v but %d payload bytes", dims, len(payload))
		}
		if len(dims) == 3 {
			labels := make([]uint8, dims[0])
			spec := DatasetSpec{Name: "fuzz", Classes: 10, C: 1, H: dims[1], W: dims[2]}
			if _, err := idxDataset(spec, "img", dims, payload, "lbl", dims[:1], labels); err != nil {
				t.Fatalf("consistent pair rejected: %v", err)
			}
		}
	})
}

// FuzzCIFAR feeds arbitrary bytes both to the batch-file decoder and to the
// .tar.gz reader, for either CIFAR flavour. A valid record is 3 kB, which
// makes the fuzzer's default input minimisation crawl; run it as
//
//	go test ./data -run '^$' -fuzz '^FuzzCIFAR$' -fuzzminimizetime 200x
func FuzzCIFAR(f *testing.F) {
	k10, k100 := cifarKinds["cifar10"], cifarKinds["cifar100"]
	rec10 := make([]byte, k10.record())
	rec10[0], rec10[1], rec10[3072] = 9, 200, 17
	rec100 := make([]byte, k100.record())
	rec100[0], rec100[1], rec100[2] = 19, 99, 255
	f.Add(rec10, false)
	f.Add(rec100, true)
	f.Add(tarGz(f, []member{{k10.folder + "/test_batch.bin", rec10}, {k10.folder + "/batches.meta.txt", []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")}}), false)
	f.Add(tarGz(f, []member{{"./" + k100.folder + "/test.bin", rec100}}), true)
	f.Fuzz(func(t *testing.T, b []byte, hundred bool) {
		name := "cifar10"
		if hundred {
			name = "cifar100"
		}
		k := cifarKinds[name]
		spec, _ := Spec(name)
		if labels, pix, err := decodeCIFAR(b, k, "fuzz", spec.Classes); err == nil {
			if len(labels)*k.record() != len(b) || len(pix) != len(labels)*cifarPixels {
				t.Fatalf("%d bytes gave %d labels and %d pixels", len(b), len(labels), len(pix))
			}
		}
		ds, err := decodeCIFARArchive(bytes.NewReader(b), int64(len(b)), spec, k, "fuzz", k.test)
		if err == nil && (len(ds.Labels) != ds.N || len(ds.Pixels) != ds.N*cifarPixels || len(ds.ClassNames) != spec.Classes) {
			t.Fatalf("inconsistent dataset: N=%d, %d labels, %d pixels", ds.N, len(ds.Labels), len(ds.Pixels))
		}
	})
}
