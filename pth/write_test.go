package pth

import (
	"archive/zip"
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/tensor"
)

var update = flag.Bool("update", false, "rewrite testdata/go_written.pth")

// golden is what make_fixtures.py's golden_state_dict() expects in
// go_written.pth: a Conv2d(2, 3, 1) and a BatchNorm2d(3).
func golden() []tensor.Named {
	mk := func(data []float32, shape ...int) *tensor.Tensor {
		t, err := tensor.From(data, shape...)
		if err != nil {
			panic(err)
		}
		return t
	}
	return []tensor.Named{
		{Name: "0.weight", T: mk([]float32{-1, -0.5, 0, 0.5, 1, 1.5}, 3, 2, 1, 1)},
		{Name: "0.bias", T: mk([]float32{0.25, -0.5, 1e-3}, 3)},
		{Name: "1.weight", T: mk([]float32{1, 2, 3}, 3)},
		{Name: "1.bias", T: mk([]float32{0, float32(negZero()), 7.5}, 3)},
		{Name: "1.running_mean", T: mk([]float32{0.1, 0.2, 0.3}, 3)},
		{Name: "1.running_var", T: mk([]float32{1, 0.5, 2}, 3)},
		{Name: "1.num_batches_tracked", T: mk([]float32{123456})},
	}
}

func negZero() float64 { z := 0.0; return -z }

// TestGolden pins the writer's bytes to testdata/go_written.pth, which
// `make_fixtures.py --check` showed torch.load and load_state_dict accept
// (PyTorch 1.13). Rewrite it with -update and run the check again when the
// writer changes on purpose.
func TestGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, golden()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("testdata", "go_written.pth")
	if *update {
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("Write's bytes differ from %s (%d vs %d bytes); if intended, run with -update and re-run make_fixtures.py --check", p, b.Len(), len(want))
	}
	f, err := Read(bytes.NewReader(want), int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	sameStateDict(t, f.StateDict, golden())
	if f.Dtypes["int64"] != 1 || f.Dtypes["float32"] != 6 {
		t.Errorf("dtypes %s", f.DtypeSummary())
	}
	// Every record's data is 64-byte aligned and stored, as torch writes them.
	zr, err := zip.NewReader(bytes.NewReader(want), int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, zf := range zr.File {
		names = append(names, zf.Name)
		off, err := zf.DataOffset()
		if err != nil || off%64 != 0 || zf.Method != zip.Store {
			t.Errorf("%s: data at %d (%v), method %d", zf.Name, off, err, zf.Method)
		}
	}
	if got := strings.Join(names, " "); got != "archive/data.pkl archive/data/0 archive/data/1 archive/data/2 archive/data/3 archive/data/4 archive/data/5 archive/data/6 archive/byteorder archive/version" {
		t.Errorf("records: %s", got)
	}
}

func sameStateDict(t *testing.T, got, want []tensor.Named) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || len(g.T.Shape) != len(w.T.Shape) || !tensor.SameShape(g.T.Shape, w.T.Shape) || !equal(g.T.Data, w.T.Data) {
			t.Fatalf("tensor %d: %s %v, want %s %v", i, g.Name, g.T.Shape, w.Name, w.T.Shape)
		}
	}
}

// TestRoundTrip writes a PyTorch-made resnet18 state_dict back and reads it:
// names, order, shapes and every bit survive.
func TestRoundTrip(t *testing.T) {
	f := readFixture(t, "resnet18.pth")
	p := filepath.Join(t.TempDir(), "back.pth")
	if err := Save(p, f.StateDict); err != nil {
		t.Fatal(err)
	}
	g, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	sameStateDict(t, g.StateDict, f.StateDict)
	if g.Dtypes["int64"] != 20 {
		t.Errorf("num_batches_tracked not int64: %s", g.DtypeSummary())
	}
	if !Detect(p) {
		t.Error("Detect does not recognise a written file")
	}
}

func TestWriteRefuses(t *testing.T) {
	one := tensor.New(1)
	bad := map[string][]tensor.Named{
		"duplicate":  {{Name: "a", T: one}, {Name: "a", T: one}},
		"nil":        {{Name: "a"}},
		"empty name": {{Name: "", T: one}},
		"count":      {{Name: "bn.num_batches_tracked", T: &tensor.Tensor{Data: []float32{1.5}}}},
		"size":       {{Name: "a", T: &tensor.Tensor{Shape: []int{2}, Data: []float32{1}}}},
	}
	for name, sd := range bad {
		p := filepath.Join(t.TempDir(), "x.pth")
		if err := Save(p, sd); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: a file was left behind", name)
		}
	}
}
