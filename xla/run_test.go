package xla_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/internal/fakedata"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/optim"
	"github.com/tnn-go/tnn/train"
	"github.com/tnn-go/tnn/xla"
)

// useDevices installs the hook cmd/tnn installs in builds with the xla tag.
func useDevices(t *testing.T) {
	old := train.OpenDevice
	train.OpenDevice = func(name string, net *models.Net, opt optim.Optimizer) (train.Device, error) {
		return xla.NewTrainer(name, net, opt)
	}
	t.Cleanup(func() { train.OpenDevice = old })
}

func config(t *testing.T, data, device string) train.Config {
	c := train.Defaults()
	c.Dataset, c.DataPath = "fashion-mnist", data
	c.Arch = "tern_resnet20"
	c.Epochs = 1
	c.BatchSize = 2
	c.Threads = 1
	c.PrintFreq = 1000
	c.LRSchedule = "step"
	c.Schedule, c.Gammas = []int{1}, []float64{0.5}
	c.SavePath = t.TempDir()
	c.Device = device
	return c
}

// stopAfter is a context whose Err turns non-nil after n checks, so that an
// interruption lands on a known step.
type stopAfter struct {
	context.Context
	n int
}

func (s *stopAfter) Err() error {
	s.n--
	if s.n < 0 {
		return context.Canceled
	}
	return nil
}

func load(t *testing.T, path string) *checkpoint.Checkpoint {
	t.Helper()
	ck, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// train.Run with --device go (the lowering on GoMLX's pure-Go backend)
// against the CPU engine: the same outputs and checkpoint tensors, a first
// epoch that agrees, a device checkpoint that resumes on the CPU engine, and
// an interrupted device run that resumes to exactly where a straight one
// ends. The pure-Go backend takes seconds per ResNet-20 step on 28×28
// images, so the runs are one epoch of two steps.
//
// The engines are not compared over many steps: one ReLU input or latent
// weight within float noise of its kink (0, ±th) takes the other side in
// the other engine and whole gradients then differ by percents, legitimately
// (testdata/torch/make_fixtures.py measures this against PyTorch), and
// ternary training amplifies that.
func TestRunOnDevice(t *testing.T) {
	useDevices(t)
	data := t.TempDir()
	if err := fakedata.WriteFashion(data, 4, 2); err != nil {
		t.Fatal(err)
	}
	cpu := config(t, data, "cpu")
	if _, err := train.Run(context.Background(), cpu, io.Discard); err != nil {
		t.Fatal(err)
	}
	dev := config(t, data, "go")
	if _, err := train.Run(context.Background(), dev, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{train.CheckpointFile, train.BestFile, train.AccuracyFile, train.CurveFile, train.SummaryFile} {
		if _, err := os.Stat(filepath.Join(dev.SavePath, f)); err != nil {
			t.Errorf("device run wrote no %s: %v", f, err)
		}
	}
	log, err := os.ReadFile(filepath.Join(dev.SavePath, "log_seed_5000.txt"))
	if err != nil || !strings.Contains(string(log), "device go") || !strings.Contains(string(log), "ternary conv_1_3x3") {
		t.Errorf("device run's log lacks the device line or the ternary report (%v)", err)
	}
	a, b := load(t, filepath.Join(cpu.SavePath, train.CheckpointFile)), load(t, filepath.Join(dev.SavePath, train.CheckpointFile))
	if len(a.Model) != len(b.Model) || len(a.Optim) != len(b.Optim) {
		t.Fatalf("checkpoints hold %d/%d model and %d/%d optimizer tensors", len(a.Model), len(b.Model), len(a.Optim), len(b.Optim))
	}
	for i := range a.Model {
		if a.Model[i].Name != b.Model[i].Name || !slices.Equal(a.Model[i].T.Shape, b.Model[i].T.Shape) {
			t.Fatalf("tensor %d is %s %v on the device, %s %v on the CPU", i, b.Model[i].Name, b.Model[i].T.Shape, a.Model[i].Name, a.Model[i].T.Shape)
		}
	}
	ha, hb := history(t, a), history(t, b)
	if ha.Optim == nil || hb.Optim == nil || *ha.Optim != *hb.Optim || len(hb.History) != 1 {
		t.Fatalf("device checkpoint: optimizer %+v, %d epochs; CPU engine %+v", hb.Optim, len(hb.History), ha.Optim)
	}
	// Step 1 from the same weights, step 2 after one update.
	la, lb := ha.History[0].TrainLoss, hb.History[0].TrainLoss
	t.Logf("epoch 1 train loss: CPU engine %.6f, device %.6f", la, lb)
	if math.Abs(la-lb) > 1e-3*la {
		t.Fatalf("epoch 1 train loss %v on the device, %v on the CPU engine", lb, la)
	}

	// The device checkpoint resumes on the CPU engine (TestTrainerMatchesCPUEngine
	// resumes host state on the device).
	more := config(t, data, "cpu")
	more.Epochs = 2
	more.Resume = filepath.Join(dev.SavePath, train.CheckpointFile)
	if sum, err := train.Run(context.Background(), more, io.Discard); err != nil || sum.Epochs != 2 {
		t.Fatalf("resume on the CPU engine: %v", err)
	}

	// Interrupted after step 1, the device run saves the device's state at
	// that step, and the resumed run ends where the straight one did.
	cut := config(t, data, "go")
	_, err = train.Run(&stopAfter{Context: context.Background(), n: 0}, cut, io.Discard)
	if !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	if h := history(t, load(t, filepath.Join(cut.SavePath, train.CheckpointFile))); h.Epoch != 0 || h.Step != 1 {
		t.Fatalf("interrupted at epoch %d step %d, want 0, 1", h.Epoch, h.Step)
	}
	cut.Resume = filepath.Join(cut.SavePath, train.CheckpointFile)
	if _, err := train.Run(context.Background(), cut, io.Discard); err != nil {
		t.Fatal(err)
	}
	c := load(t, filepath.Join(cut.SavePath, train.CheckpointFile))
	for i := range b.Model {
		if !slices.Equal(b.Model[i].T.Data, c.Model[i].T.Data) {
			t.Fatalf("%s after interrupt and resume differs from the straight device run", b.Model[i].Name)
		}
	}
	for i := range b.Optim {
		if !slices.Equal(b.Optim[i].T.Data, c.Optim[i].T.Data) {
			t.Fatalf("%s after interrupt and resume differs from the straight device run", b.Optim[i].Name)
		}
	}
}

func history(t *testing.T, ck *checkpoint.Checkpoint) train.Info {
	t.Helper()
	var info train.Info
	if err := json.Unmarshal(ck.Info, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// Without a device backend (cmd/tnn built without the xla tag), asking
// for one is refused before anything is loaded, naming the build command.
func TestDeviceNeedsBuild(t *testing.T) {
	old := train.OpenDevice
	train.OpenDevice = nil
	defer func() { train.OpenDevice = old }()
	c := train.Defaults()
	c.Device = "cuda"
	err := c.Validate()
	if !errors.Is(err, train.ErrConfig) || !strings.Contains(err.Error(), "-tags xla") {
		t.Fatalf("Validate with --device cuda and no backend: %v", err)
	}
	c.Device = "cpu"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceNames(t *testing.T) {
	net, err := models.Build(mustSpec(t), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.New("SGD", net.Params(), optim.Hyper{LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tpu9", "xla:", ""} {
		if _, err := xla.NewTrainer(name, net, opt); !errors.Is(err, xla.ErrDevice) {
			t.Errorf("device %q: got %v, want ErrDevice", name, err)
		}
	}
	if !contains(xla.Devices(), "cuda") {
		// The default build: XLA devices name the build tag.
		_, err := xla.NewTrainer("cuda", net, opt)
		if !errors.Is(err, xla.ErrDevice) || !strings.Contains(err.Error(), "-tags xla") {
			t.Errorf("device cuda without the xla tag: got %v", err)
		}
	}
	greedy, err := models.Build(mustSpec(t), models.Options{Scheme: "greedy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xla.NewTrainer("go", greedy, opt); !errors.Is(err, xla.ErrUnsupported) {
		t.Errorf("greedy REL scheme: got %v, want ErrUnsupported", err)
	}
}

func mustSpec(t *testing.T) *models.Spec {
	t.Helper()
	s, err := models.New("tern_resnet20", models.Config{InC: 1, H: 8, W: 8, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
