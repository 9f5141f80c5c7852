package pth

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/tensor"
)

// fixture returns the bytes of testdata/name.gz, made by
// testdata/make_fixtures.py with PyTorch 1.13.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readFixture(t testing.TB, name string) *File {
	t.Helper()
	b := fixture(t, name)
	f, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

// expect holds the inputs and PyTorch's outputs (testdata/expect.safetensors.gz).
func expect(t testing.TB) map[string]*tensor.Tensor {
	t.Helper()
	p := filepath.Join(t.TempDir(), "expect.safetensors")
	if err := os.WriteFile(p, fixture(t, "expect.safetensors"), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*tensor.Tensor{}
	for _, e := range ck.Model {
		m[e.Name] = e.T
	}
	return m
}

func TestFormats(t *testing.T) {
	for _, name := range []string{"formats.pth", "formats_legacy.pth"} {
		t.Run(name, func(t *testing.T) {
			f := readFixture(t, name)
			want := map[string]*tensor.Tensor{}
			for _, e := range f.StateDict {
				if c, ok := strings.CutPrefix(e.Name, "want."); ok {
					want[c] = e.T
				}
			}
			cases := 0
			for _, e := range f.StateDict {
				c, ok := strings.CutPrefix(e.Name, "x.")
				if !ok {
					continue
				}
				cases++
				w := want[c]
				if w == nil {
					t.Fatalf("no want.%s", c)
				}
				if !tensor.SameShape(e.T.Shape, w.Shape) || len(e.T.Shape) != len(w.Shape) {
					t.Errorf("%s: shape %v, want %v", c, e.T.Shape, w.Shape)
					continue
				}
				for i := range w.Data {
					if e.T.Data[i] != w.Data[i] {
						t.Errorf("%s[%d] = %v, want %v", c, i, e.T.Data[i], w.Data[i])
						break
					}
				}
			}
			if cases != 17 {
				t.Errorf("%d cases, want 17", cases)
			}
			for _, dt := range []string{"float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"} {
				if f.Dtypes[dt] == 0 {
					t.Errorf("no %s tensor read (dtypes: %s)", dt, f.DtypeSummary())
				}
			}
			// Spot checks against values independent of the want copies.
			byName := map[string]*tensor.Tensor{}
			for _, e := range f.StateDict {
				byName[e.Name] = e.T
			}
			if got := byName["x.i64"].Data[3]; got != 1<<40 {
				t.Errorf("i64[3] = %v, want 2^40", got)
			}
			if got := byName["x.transposed"].Data[1]; got != 6.0/8-1 { // base[1][0]
				t.Errorf("transposed[0][1] = %v, want %v", got, 6.0/8-1)
			}
			if got := byName["x.slice"].Data[0]; got != 8.0/8-1 { // base[1][2]
				t.Errorf("slice[0][0] = %v, want 0", got)
			}
			if s := byName["x.scalar"]; len(s.Shape) != 0 || s.Data[0] != 2.5 {
				t.Errorf("scalar: shape %v value %v", s.Shape, s.Data)
			}
		})
	}
}

// runModel builds arch for the input x, loads f's state_dict (through Fit)
// and returns the eval-mode logits.
func runModel(t *testing.T, f *File, arch string, classes int, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	spec, err := models.New(arch, models.Config{InC: x.Shape[1], H: x.Shape[2], W: x.Shape[3], Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	net, err := models.Build(spec, models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// LoadStateDict fails on any missing, unexpected or mis-shaped tensor,
	// so success means every tensor of the file matched.
	sd, notes := Fit(net, f.StateDict, FitOptions{})
	if err := net.LoadStateDict(sd); err != nil {
		t.Fatalf("%s: %v", arch, err)
	}
	if f.Format == "zip" && len(notes) > 0 {
		t.Errorf("%s: a complete state_dict needed adapting: %q", arch, notes)
	}
	return net.Forward(x, false)
}

// closeTo checks got against PyTorch's output within 1e-4 of its largest
// magnitude, and that the output is not degenerate.
func closeTo(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if !tensor.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	scale := float64(tensor.MaxAbs(want.Data))
	worst := 0.0
	for i := range want.Data {
		worst = math.Max(worst, math.Abs(float64(got.Data[i]-want.Data[i])))
	}
	t.Logf("%s: max |Go - PyTorch| = %.3g (%.2g of max |logit| %.3g)", what, worst, worst/scale, scale)
	if !(worst <= 1e-4*scale) {
		t.Errorf("%s: max difference %.3g exceeds 1e-4 × %.3g", what, worst, scale)
	}
	classes := want.Shape[1]
	for n := 0; n < want.Shape[0]; n++ {
		distinct := map[float32]bool{}
		for _, v := range want.Data[n*classes : (n+1)*classes] {
			distinct[v] = true
		}
		if len(distinct) < min(8, classes/2) {
			t.Errorf("%s: sample %d has only %d distinct logits: a degenerate fixture", what, n, len(distinct))
		}
	}
}

func TestModelsMatchPyTorch(t *testing.T) {
	ex := expect(t)
	cases := []struct {
		file, arch string
		classes    int
		input      string
	}{
		{"resnet18.pth", "resnet18", 1000, "x32"},
		{"resnet18.pth", "resnet18b_fq_lq_tern_tex_2", 1000, "x32"},
		{"resnet18_legacy.pth", "resnet18", 1000, "x32"},
		{"resnet50.pth", "resnet50", 1000, "x32"},
		{"alexnet_bn.pth", "alexnet_vanilla", 10, "x64"},
		{"alexnet_bn.pth", "tern_alexnet_fq_lq", 10, "x64"},
		{"seed_tern_resnet20.pth.tar", "tern_resnet20", 10, "x28"},
	}
	files := map[string]*File{}
	for _, c := range cases {
		t.Run(c.file+"/"+c.arch, func(t *testing.T) {
			f := files[c.file]
			if f == nil {
				f = readFixture(t, c.file)
				files = map[string]*File{c.file: f} // keep one model's weights in memory at a time
			}
			want := ex["out."+c.arch]
			if c.file == "resnet18_legacy.pth" {
				want = ex["out.resnet18"]
			}
			closeTo(t, c.arch, runModel(t, f, c.arch, c.classes, ex[c.input]), want)
		})
	}
}

func TestFileInfo(t *testing.T) {
	f := readFixture(t, "seed_tern_resnet20.pth.tar")
	if f.Key != "state_dict" || f.Prefix != "module." || f.Epoch != 3 || f.Arch != "tern_resnet20" || f.Format != "legacy" {
		t.Errorf("key %q prefix %q epoch %d arch %q format %q", f.Key, f.Prefix, f.Epoch, f.Arch, f.Format)
	}
	if got := strings.Join(f.Skipped, ","); got != "epoch,arch,recorder,optimizer" {
		t.Errorf("skipped %q", got)
	}
	if f.StateDict[0].Name != "conv_1_3x3.weight" {
		t.Errorf("first tensor %q", f.StateDict[0].Name)
	}

	f = readFixture(t, "resnet18.pth")
	if f.Key != "" || f.Prefix != "" || f.Epoch != -1 || f.Format != "zip" || len(f.StateDict) != 122 {
		t.Errorf("key %q prefix %q epoch %d format %q, %d tensors", f.Key, f.Prefix, f.Epoch, f.Format, len(f.StateDict))
	}
	if f.Dtypes["int64"] != 20 || f.Dtypes["float32"] != 102 {
		t.Errorf("dtypes %s", f.DtypeSummary())
	}
	for _, e := range f.StateDict {
		if e.Name == "bn1.num_batches_tracked" && (len(e.T.Shape) != 0 || e.T.Data[0] != float32((5*37)%1000+1)) { // the fixture's counter of tensor 5
			t.Errorf("bn1.num_batches_tracked: shape %v value %v", e.T.Shape, e.T.Data)
		}
	}
}

func TestFitNewClassifier(t *testing.T) {
	f := readFixture(t, "resnet18.pth")
	spec, _ := models.New("resnet18b_fq_lq_tex1", models.Config{InC: 3, H: 32, W: 32, Classes: 10})
	net, _ := models.Build(spec, models.Options{})
	net.Init(1)
	if err := net.LoadStateDict(f.StateDict); !errors.Is(err, models.ErrStateDict) || !strings.Contains(err.Error(), "fc.weight has shape [1000 512], model wants [10 512]") {
		t.Fatalf("loading 1000 classes into 10: %v", err)
	}
	fresh := net.StateDict()[len(net.StateDict())-2].T.Clone() // fc.weight
	sd, notes := Fit(net, f.StateDict, FitOptions{NewClassifier: true})
	if err := net.LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "1000 outputs") {
		t.Errorf("notes %q", notes)
	}
	got := map[string]*tensor.Tensor{}
	for _, e := range net.StateDict() {
		got[e.Name] = e.T
	}
	if !equal(got["fc.weight"].Data, fresh.Data) {
		t.Error("fc.weight changed: the new classifier must keep its initialisation")
	}
	for _, e := range f.StateDict {
		if !strings.HasPrefix(e.Name, "fc.") && !equal(got[e.Name].Data, e.T.Data) {
			t.Errorf("%s not loaded", e.Name)
		}
	}
}

func TestFitOldCounters(t *testing.T) {
	f := readFixture(t, "resnet18_legacy.pth")
	spec, _ := models.New("resnet18", models.Config{InC: 3, H: 32, W: 32, Classes: 1000})
	net, _ := models.Build(spec, models.Options{})
	if err := net.LoadStateDict(f.StateDict); err == nil || !strings.Contains(err.Error(), "missing bn1.num_batches_tracked") {
		t.Fatalf("without Fit: %v", err)
	}
	sd, notes := Fit(net, f.StateDict, FitOptions{})
	if err := net.LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "20 counters") {
		t.Errorf("notes %q", notes)
	}
	// A file with some counters is not patched: the rest are really missing.
	partial := append([]tensor.Named(nil), f.StateDict...)
	partial = append(partial, tensor.Named{Name: "bn1.num_batches_tracked", T: tensor.New()})
	sd, _ = Fit(net, partial, FitOptions{})
	if err := net.LoadStateDict(sd); err == nil || !strings.Contains(err.Error(), "missing layer1.0.bn1.num_batches_tracked") {
		t.Fatalf("partial counters: %v", err)
	}
}

func TestOtherArchitecture(t *testing.T) {
	f := readFixture(t, "resnet18.pth")
	spec, _ := models.New("resnet50", models.Config{InC: 3, H: 32, W: 32, Classes: 1000})
	net, _ := models.Build(spec, models.Options{})
	sd, _ := Fit(net, f.StateDict, FitOptions{NewClassifier: true})
	err := net.LoadStateDict(sd)
	if !errors.Is(err, models.ErrStateDict) || !strings.Contains(err.Error(), "layer1.0.conv1.weight has shape [64 64 3 3], model wants [64 64 1 1]") {
		t.Fatalf("resnet18 weights into resnet50: %v", err)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
