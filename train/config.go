// Package train runs the reference's training and evaluation loop: per
// epoch, set the learning rate, train, evaluate, save the checkpoint (and the
// best model), and write accuracy.txt, curve.png and summary.json.
package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/optim"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/ternary"
)

// ErrConfig reports invalid training options.
var ErrConfig = errors.New("invalid option")

// Config holds the options of the reference's main.py (same names, in Go case)
// plus tnn's own.
type Config struct {
	DataPath     string
	Dataset      string
	Arch         string
	Epochs       int
	Optimizer    string
	LearningRate float64
	Momentum     float64
	Decay        float64
	Schedule     []int
	Gammas       []float64
	LRSchedule   string // "step" or "cosine"
	BatchSize    int
	PrintFreq    int
	SavePath     string
	Resume       string
	StartEpoch   int // -1: from the checkpoint (or 0)
	Evaluate     bool
	FineTune     bool
	ModelOnly    bool
	Workers      int
	ManualSeed   uint64
	Subset       int
	Threads      int
	TFactor      float64
	TEx          int    // residual expansion terms; 0: the architecture's (tex_4 in the name means 4), else 1
	RELScheme    string // how ternary terms are fitted: paper (default), greedy, optimal
	NumClasses   int    // 0: from the dataset
	ImageSize    int    // image-folder datasets: crop side (0: 224)
	// Device runs the steps: "" or "cpu" the CPU engine; anything else
	// (cuda, xla:NAME) an accelerator through OpenDevice.
	Device string
	// Pretrained starts from torchvision's ImageNet weights for Arch
	// (downloaded once, see pth.Pretrained); weights only, as --fine_tune.
	Pretrained bool
}

// Device runs training steps and evaluation off the CPU engine, on a copy
// of the session's network and optimizer state that Sync copies back.
type Device interface {
	// TrainStep runs forward, loss, backward and the optimizer update on one
	// batch at learning rate lr; it returns the mean loss and the top-1 hits.
	TrainStep(x *tensor.Tensor, y []int32, lr float64) (loss float64, correct int, err error)
	// Forward returns eval-mode logits.
	Forward(x *tensor.Tensor) (*tensor.Tensor, error)
	// Sync copies weights, BatchNorm statistics and optimizer state into the
	// network and optimizer the device was opened with.
	Sync() error
	Close() error
}

// OpenDevice opens Config.Device for a network and its optimizer. Builds
// with an accelerator backend set it (cmd/tnn with the xla build tag);
// without it, Validate refuses any Device but the CPU.
var OpenDevice func(name string, net *models.Net, opt optim.Optimizer) (Device, error)

// DeviceBuildHint says how to get a tnn that can use --device cuda.
const DeviceBuildHint = "build tnn with XLA: go build -tags xla -o tnn ./cmd/tnn"

func usesDevice(name string) bool { return name != "" && name != "cpu" }

// Defaults returns the CIFAR recipe of the paper on the embedded sample.
func Defaults() Config {
	return Config{
		Dataset:      "fashion-mnist-sample",
		Arch:         "tern_resnet20",
		Epochs:       10,
		Optimizer:    "SGD",
		LearningRate: 0.1,
		Momentum:     0.9,
		Decay:        3e-4,
		LRSchedule:   "cosine",
		BatchSize:    128,
		PrintFreq:    100,
		StartEpoch:   -1,
		Workers:      2,
		ManualSeed:   5000,
		TFactor:      ternary.DefaultTFactor,
	}
}

// Validate checks the options that do not need files, so that a bad flag is
// refused before anything is loaded or written.
func (c *Config) Validate() error {
	var bad []string
	if c.Epochs <= 0 && !c.Evaluate {
		bad = append(bad, fmt.Sprintf("--epochs must be positive, got %d", c.Epochs))
	}
	if c.BatchSize <= 0 {
		bad = append(bad, fmt.Sprintf("--batch_size must be positive, got %d", c.BatchSize))
	}
	if !(c.LearningRate > 0) && !c.Evaluate {
		bad = append(bad, fmt.Sprintf("--learning_rate must be positive, got %g", c.LearningRate))
	}
	if c.Momentum < 0 || c.Decay < 0 {
		bad = append(bad, "--momentum and --decay must not be negative")
	}
	if len(c.Schedule) != len(c.Gammas) {
		bad = append(bad, fmt.Sprintf("--schedule has %d epochs but --gammas has %d values", len(c.Schedule), len(c.Gammas)))
	}
	switch c.LRSchedule {
	case "step", "cosine":
	default:
		bad = append(bad, fmt.Sprintf("--lr_schedule must be step or cosine, got %q", c.LRSchedule))
	}
	if c.Subset < 0 {
		bad = append(bad, "--subset must not be negative")
	}
	if c.ImageSize < 0 {
		bad = append(bad, fmt.Sprintf("--image_size must not be negative, got %d", c.ImageSize))
	}
	if c.Threads < 0 || c.Workers < 0 {
		bad = append(bad, "--threads and --workers must not be negative")
	}
	if c.PrintFreq <= 0 {
		bad = append(bad, "--print_freq must be positive")
	}
	if c.FineTune && c.Resume == "" && !c.Pretrained {
		bad = append(bad, "--fine_tune needs --resume CHECKPOINT")
	}
	if c.Pretrained && c.Resume != "" {
		bad = append(bad, "--pretrained and --resume both give the starting weights; use one")
	}
	if c.Evaluate && c.Resume == "" && !c.Pretrained && c.Arch == "" {
		bad = append(bad, "--evaluate needs --resume CHECKPOINT or --arch")
	}
	if usesDevice(c.Device) && OpenDevice == nil {
		bad = append(bad, fmt.Sprintf("--device %s: this tnn runs on the CPU only; %s", c.Device, DeviceBuildHint))
	}
	if _, err := ternary.ParseScheme(c.RELScheme); err != nil {
		bad = append(bad, fmt.Sprintf("--rel_scheme: %v", err))
	}
	if _, err := ternary.New(c.TFactor, max(c.TEx, 1)); err != nil {
		bad = append(bad, fmt.Sprintf("--tfactor %g with --tex %d: factors t·i must lie in (0, 1)", c.TFactor, c.TEx))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(bad, "; "))
	}
	return nil
}

// prepareSavePath creates the output folder and proves it writable before
// any training time is spent.
func prepareSavePath(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: --save_path %s: %v", ErrConfig, dir, err)
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return fmt.Errorf("%w: --save_path %s is not writable: %v", ErrConfig, dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// DefaultSavePath is where a run writes when --save_path is not given.
func DefaultSavePath(c Config) string {
	return filepath.Join("save", c.Dataset+"_"+c.Arch)
}
