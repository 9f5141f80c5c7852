package train

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/pth"
	"github.com/tnn-go/tnn/tensor"
)

// seedFile unpacks what the seed's main.py saves (a PyTorch 0.4-era legacy
// file with 'epoch', 'arch': 'tern_resnet20', a DataParallel 'state_dict',
// 'recorder' and 'optimizer'; made by pth/testdata/make_fixtures.py) and
// returns its path and state_dict.
func seedFile(t *testing.T) (string, map[string]*tensor.Tensor) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "pth", "testdata", "seed_tern_resnet20.pth.tar.gz"))
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
	p := filepath.Join(t.TempDir(), "checkpoint.pth.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	pf, err := pth.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	sd := map[string]*tensor.Tensor{}
	for _, e := range pf.StateDict {
		sd[e.Name] = e.T
	}
	return p, sd
}

// TestResumePyTorchFile resumes the seed's file as main.py would: its
// architecture, its weights, its epoch.
func TestResumePyTorchFile(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 32, 16)
	path, _ := seedFile(t)
	c := smallConfig(t, dataDir)
	c.Arch = ""
	c.Resume = path
	var out bytes.Buffer
	sum, err := Run(context.Background(), c, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	log := out.String()
	for _, want := range []string{"arch=tern_resnet20", "PyTorch legacy file, 116 tensors", `"module." prefix removed`,
		"not used: epoch, arch, recorder, optimizer (PyTorch optimizer state is not imported", "starting at the file's epoch 3", "epoch 4/4"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if sum.Epochs != 1 {
		t.Errorf("%d epochs run, want 1 (epoch 3 of the file to 4)", sum.Epochs)
	}
}

// TestFineTuneNewClassifier fine-tunes the file for 12 classes: everything
// but the classifier comes from the file, the classifier starts fresh.
func TestFineTuneNewClassifier(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 32, 16)
	path, sd := seedFile(t)
	c := smallConfig(t, dataDir)
	c.Resume, c.FineTune, c.NumClasses, c.Epochs = path, true, 12, 1
	c.LearningRate, c.Decay = 1e-9, 0 // so that the weights stay what was loaded
	var out bytes.Buffer
	if _, err := Run(context.Background(), c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "classifier classifier: the file's has 10 outputs (weight [10 64]), the model 12; it keeps its fresh initialisation") {
		t.Errorf("log:\n%s", out.String())
	}
	ck := loadCk(t, filepath.Join(c.SavePath, CheckpointFile))
	for _, e := range ck.Model {
		switch {
		case e.Name == "classifier.weight":
			if !tensor.SameShape(e.T.Shape, []int{12, 64}) {
				t.Errorf("classifier.weight %v", e.T.Shape)
			}
		case strings.HasSuffix(e.Name, "conv_a.weight") || strings.HasSuffix(e.Name, "conv_b.weight") || e.Name == "conv_1_3x3.weight":
			want := sd[e.Name]
			for i, v := range want.Data {
				if math.Abs(float64(e.T.Data[i]-v)) > 1e-6*(1+math.Abs(float64(v))) {
					t.Fatalf("%s[%d] = %v, the file has %v", e.Name, i, e.T.Data[i], v)
				}
			}
		}
	}
}

func TestPyTorchFileErrors(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 32, 16)
	path, _ := seedFile(t)

	c := smallConfig(t, dataDir)
	c.Resume, c.NumClasses = path, 12
	_, err := Evaluate(c, io.Discard)
	if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "classifier.weight has shape [10 64], model wants [12 64]") ||
		!strings.Contains(err.Error(), "add --fine_tune") {
		t.Errorf("other classes without --fine_tune: %v", err)
	}

	c = smallConfig(t, dataDir)
	c.Resume, c.Arch = path, "resnet32"
	if _, err := Evaluate(c, io.Discard); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "missing stage_1.3.conv_a.weight") {
		t.Errorf("other architecture: %v", err)
	}

	c = smallConfig(t, dataDir)
	c.Pretrained, c.Resume = true, path
	if _, err := Evaluate(c, io.Discard); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--pretrained and --resume") {
		t.Errorf("--pretrained with --resume: %v", err)
	}

	c = smallConfig(t, dataDir)
	c.Pretrained, c.FineTune = true, true
	if _, err := Evaluate(c, io.Discard); !errors.Is(err, pth.ErrNoPretrained) || !strings.Contains(err.Error(), "tern_resnet20") {
		t.Errorf("--pretrained for a CIFAR model: %v", err)
	}
}
