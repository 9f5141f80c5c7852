package pth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/tensor"
)

// archive builds a zip container around hand-written records.
func archive(t testing.TB, records ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := &zipWriter{w: &b}
	for i := 0; i < len(records); i += 2 {
		if err := z.add(records[i], []byte(records[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadErrors(t *testing.T) {
	r18 := fixture(t, "resnet18.pth")
	legacy := fixture(t, "resnet18_legacy.pth")
	flipped := append([]byte(nil), r18...)
	flipped[len(flipped)/2] ^= 0x40 // inside a weight's storage
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"text", []byte("hello, not a checkpoint\n"), ErrNotPth, "neither"},
		{"empty", nil, ErrNotPth, "neither"},
		{"safetensors", []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}        "), ErrNotPth, "neither"},
		{"zip truncated in half", r18[:len(r18)/2], ErrCorrupt, "truncated"},
		{"zip truncated at the end", r18[:len(r18)-10], ErrCorrupt, "truncated"},
		{"zip storage damaged", flipped, ErrCorrupt, "checksum"},
		{"legacy truncated in the data", legacy[:len(legacy)/2], ErrCorrupt, "truncated"},
		{"legacy truncated in the pickle", legacy[:300], ErrCorrupt, "pickle"},
		{"zip without data.pkl", archive(t, "archive/version", "3\n"), ErrNotPth, "data.pkl"},
		{"torchscript", archive(t, "m/data.pkl", "\x80\x02}q\x00.", "m/constants.pkl", "\x80\x02)."), ErrUnsupported, "TorchScript"},
		{"big-endian", archive(t, "archive/data.pkl", "\x80\x02}q\x00.", "archive/byteorder", "big"), ErrUnsupported, "byteorder"},
		{"a list", archive(t, "archive/data.pkl", "\x80\x02]q\x00."), ErrNoStateDict, "list of 0"},
		{"a pickled module", archive(t, "archive/data.pkl", "\x80\x02ctorchvision.models.resnet\nResNet\nq\x00)\x81q\x01}b."), ErrNoStateDict,
			"a torchvision.models.resnet.ResNet object; save model.state_dict()"},
		{"a dict without tensors", archive(t, "archive/data.pkl", "\x80\x02}q\x00(X\x05\x00\x00\x00epochK\x03u."), ErrNoStateDict, "epoch (int)"},
		{"garbage pickle", archive(t, "archive/data.pkl", "\x80\x02\xff\xff"), ErrCorrupt, "unknown opcode"},
		{"lying length", archive(t, "archive/data.pkl", "\x80\x02X\xff\xff\xff\x7fab."), ErrCorrupt, "past the end"},
		{"missing storage record", archive(t, "archive/data.pkl",
			"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89}tRu."),
			ErrCorrupt, "no record data/0"},
		{"view outside its storage", archive(t, "archive/data.pkl",
			"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x02K\x04\x85K\x01\x85\x89}tRu.",
			"archive/data/0", "0123456789abcdef"),
			ErrCorrupt, "reaches element 5 of a 4-element storage"},
		{"complex tensor", archive(t, "archive/data.pkl", "\x80\x02ctorch\nComplexFloatStorage\n."), ErrUnsupported, "ComplexFloatStorage"},
		{"tar container", append(make([]byte, 257), []byte("ustar\x0000")...), ErrUnsupported, "tar"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notes.pth")
	os.WriteFile(p, []byte("hello"), 0o644)
	_, err := Load(p)
	if !errors.Is(err, ErrNotPth) || !strings.Contains(err.Error(), p) {
		t.Errorf("%v", err)
	}
	if _, err := Load(filepath.Dir(p)); !errors.Is(err, ErrNotPth) {
		t.Errorf("a folder: %v", err)
	}
	if Detect(p) {
		t.Error("Detect accepts a text file")
	}
}

// TestTruncations reads every prefix of the small fixtures: each must fail
// with a named error (never panic); only the whole file succeeds.
func TestTruncations(t *testing.T) {
	for _, name := range []string{"formats.pth", "formats_legacy.pth"} {
		b := fixture(t, name)
		for n := 0; n < len(b); n += 1 + n/400 {
			_, err := Read(bytes.NewReader(b[:n]), int64(n))
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotPth) {
				t.Fatalf("%s cut at %d of %d: %v", name, n, len(b), err)
			}
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, name := range []string{"formats.pth", "formats_legacy.pth"} {
		f.Add(fixture(f, name))
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "go_written.pth"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			for _, e := range []error{ErrNotPth, ErrCorrupt, ErrUnsupported, ErrNoStateDict} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unnamed error: %v", err)
		}
		for _, e := range file.StateDict {
			if tensor.Numel(e.T.Shape) != len(e.T.Data) {
				t.Fatalf("%s: %d values for shape %v", e.Name, len(e.T.Data), e.T.Shape)
			}
		}
	})
}
