package data

import (
	"archive/tar"
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

type cifarFixture struct {
	members           []member // paths inside the archive
	trainLab, testLab []int32
	trainPix, testPix []byte
	names             []string
}

// cifarFiles builds the files of a small CIFAR distribution: batches of
// different sizes, so that concatenation order is checked too.
func cifarFiles(name string) cifarFixture {
	k := cifarKinds[name]
	spec, _ := Spec(name)
	var f cifarFixture
	for i, b := range k.train {
		file, lab, pix := fakeCIFAR(k, spec.Classes, 2+i, uint64(10+i))
		f.members = append(f.members, member{k.folder + "/" + b, file})
		f.trainLab = append(f.trainLab, lab...)
		f.trainPix = append(f.trainPix, pix...)
	}
	file, lab, pix := fakeCIFAR(k, spec.Classes, 3, 99)
	f.members = append(f.members, member{k.folder + "/" + k.test[0], file})
	f.testLab, f.testPix = lab, pix
	for i := range spec.Classes {
		f.names = append(f.names, "class"+string(rune('A'+i%26))+strings.Repeat("x", i/26))
	}
	f.members = append(f.members, member{k.folder + "/" + k.meta, []byte(strings.Join(f.names, "\n") + "\n\n")})
	if name == "cifar100" {
		f.members = append(f.members, member{k.folder + "/coarse_label_names.txt", []byte("c\n")})
	} else {
		f.members = append(f.members, member{k.folder + "/readme.html", []byte("<html>")})
	}
	return f
}

func checkCIFAR(t *testing.T, name, dir string, f cifarFixture) {
	t.Helper()
	for _, train := range []bool{true, false} {
		ds, err := Load(name, dir, train)
		if err != nil {
			t.Fatal(err)
		}
		lab, pix := f.testLab, f.testPix
		if train {
			lab, pix = f.trainLab, f.trainPix
		}
		if ds.N != len(lab) || ds.C != 3 || ds.H != 32 || ds.W != 32 || ds.Name != name {
			t.Fatalf("%s train=%v: N=%d %dx%dx%d", name, train, ds.N, ds.C, ds.H, ds.W)
		}
		if !bytes.Equal(ds.Pixels, pix) {
			t.Errorf("%s train=%v: pixels differ", name, train)
		}
		for i := range lab {
			if ds.Labels[i] != lab[i] {
				t.Fatalf("%s train=%v: label %d = %d, want %d", name, train, i, ds.Labels[i], lab[i])
			}
		}
		if strings.Join(ds.ClassNames, ",") != strings.Join(f.names, ",") {
			t.Errorf("%s: class names %v, want %v", name, ds.ClassNames, f.names)
		}
	}
}

func TestCIFARFolderAndArchive(t *testing.T) {
	for _, name := range []string{"cifar10", "cifar100"} {
		f := cifarFiles(name)
		folder := t.TempDir()
		for _, m := range f.members {
			writeFile(t, filepath.Join(folder, m.name), m.body)
		}
		checkCIFAR(t, name, folder, f)

		// The archive in Download's per-dataset subfolder, with "./" names.
		archive := t.TempDir()
		ms := append([]member(nil), f.members...)
		for i := range ms {
			ms[i].name = "./" + ms[i].name
		}
		writeFile(t, filepath.Join(archive, name, cifarKinds[name].archive), tarGz(t, ms))
		checkCIFAR(t, name, archive, f)
	}
}

func TestCIFARDefaultClassNames(t *testing.T) {
	k := cifarKinds["cifar100"]
	dir := t.TempDir()
	file, _, _ := fakeCIFAR(k, 100, 2, 1)
	// The folder named directly, without the meta file.
	writeFile(t, filepath.Join(dir, "test.bin"), file)
	ds, err := Load("cifar100", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.ClassNames) != 100 || ds.ClassNames[0] != "apple" || ds.ClassNames[99] != "worm" {
		t.Errorf("default CIFAR-100 names wrong: %d, %q..%q", len(ds.ClassNames), ds.ClassNames[0], ds.ClassNames[99])
	}
	sp, _ := Spec("cifar10")
	if len(sp.ClassNames) != 10 {
		t.Errorf("CIFAR-10 has %d class names", len(sp.ClassNames))
	}
}

func TestCIFARErrors(t *testing.T) {
	k10, k100 := cifarKinds["cifar10"], cifarKinds["cifar100"]
	good, _, _ := fakeCIFAR(k10, 10, 3, 1)
	good100, _, _ := fakeCIFAR(k100, 100, 3, 1)
	badLabel := append([]byte(nil), good...)
	badLabel[k10.record()] = 10
	badCoarse := append([]byte(nil), good100...)
	badCoarse[0] = 20
	badFine := append([]byte(nil), good100...)
	badFine[1] = 100
	folderCases := []struct {
		name, ds, file string
		body           []byte
		want           string
	}{
		{"size", "cifar10", "test_batch.bin", good[:len(good)-1], "multiple"},
		{"empty", "cifar10", "test_batch.bin", nil, "multiple"},
		{"label", "cifar10", "test_batch.bin", badLabel, "label 10 of record 1"},
		{"coarse", "cifar100", "test.bin", badCoarse, "coarse label 20"},
		{"fine", "cifar100", "test.bin", badFine, "label 100 of record 0"},
	}
	for _, c := range folderCases {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, cifarKinds[c.ds].folder, c.file), c.body)
		_, err := Load(c.ds, dir, false)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.file) {
			t.Errorf("%s: got %v, want ErrCorrupt naming %s and %q", c.name, err, c.file, c.want)
		}
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, k10.folder, "test_batch.bin"), good)
	writeFile(t, filepath.Join(dir, k10.folder, "batches.meta.txt"), []byte("a\nb\n"))
	if _, err := Load("cifar10", dir, false); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "2 class names") {
		t.Errorf("short meta: got %v", err)
	}

	f := cifarFiles("cifar10")
	full := tarGz(t, f.members)
	noTest := tarGz(t, f.members[:5])
	archiveCases := []struct {
		name string
		body []byte
		want string
	}{
		{"not gzip", []byte("plain text, not an archive"), "gzip"},
		{"truncated", full[:len(full)/2], "cifar-10-binary.tar.gz"},
		{"missing member", noTest, "lacks cifar-10-batches-bin/test_batch.bin"},
		{"member size", tarGz(t, []member{{k10.folder + "/test_batch.bin", good[:100]}}), "multiple"},
	}
	for _, c := range archiveCases {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, k10.archive), c.body)
		_, err := Load("cifar10", dir, false)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: got %v, want ErrCorrupt naming the archive and %q", c.name, err, c.want)
		}
	}
}

// A tar header claiming far more than the archive can expand to is rejected
// before the member is read.
func TestCIFARArchiveLyingHeader(t *testing.T) {
	k := cifarKinds["cifar10"]
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	// 50 GB claimed; the writer emits the header at once and the body is
	// simply never written.
	if err := tw.WriteHeader(&tar.Header{Name: k.folder + "/test_batch.bin", Mode: 0o644, Size: int64(k.record()) << 24, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(make([]byte, 4096))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, k.archive), gzipBytes(tb.Bytes()))
	_, err := Load("cifar10", dir, false)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "claims") {
		t.Errorf("got %v, want ErrCorrupt about the claimed size", err)
	}
}
