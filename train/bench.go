package train

import (
	"fmt"
	"time"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/rng"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/optim"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/ternary"
)

// BenchConfig describes a speed measurement on CIFAR-shaped synthetic data
// (3×32×32, 10 classes), as torch_ref.py --bench measures PyTorch.
type BenchConfig struct {
	Arch      string
	BatchSize int
	Steps     int
	Warmup    int
	Threads   int
	TEx       int
	RELScheme string // how residual-expansion terms are fitted ("" is the paper's)
	Train     bool   // forward + backward + SGD step; otherwise eval-mode forward
	Device    string // "" or "cpu": the CPU engine; otherwise opened with OpenDevice
}

// BenchResult is the measured speed.
type BenchResult struct {
	ImgPerS, MsPerStep float64
	Threads            int
}

// Bench times BenchConfig.Steps steps after Warmup untimed ones.
func Bench(c BenchConfig) (BenchResult, error) {
	if c.BatchSize <= 0 || c.Steps <= 0 || c.Warmup < 0 || c.Threads < 0 {
		return BenchResult{}, fmt.Errorf("%w: batch size and steps must be positive", ErrConfig)
	}
	parallel.SetThreads(c.Threads)
	spec, err := models.New(c.Arch, models.Config{InC: 3, H: 32, W: 32, Classes: 10})
	if err != nil {
		return BenchResult{}, err
	}
	scheme, err := ternary.ParseScheme(c.RELScheme)
	if err != nil {
		return BenchResult{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	net, err := models.Build(spec, models.Options{TEx: max(c.TEx, 1), Scheme: scheme})
	if err != nil {
		return BenchResult{}, err
	}
	net.Init(1)
	r := rng.New(2)
	x := tensor.New(c.BatchSize, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = float32(r.Normal())
	}
	y := make([]int32, c.BatchSize)
	for i := range y {
		y[i] = int32(r.Uint64() % 10)
	}
	opt, err := optim.New("SGD", net.Params(), optim.Hyper{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 3e-4})
	if err != nil {
		return BenchResult{}, err
	}
	var ce nn.CrossEntropy
	step := func() error {
		if !c.Train {
			ce.Forward(net.Predict(x), y)
			return nil
		}
		logits := net.Forward(x, true)
		ce.Forward(logits, y)
		net.Backward(ce.Backward())
		return opt.Step()
	}
	if usesDevice(c.Device) {
		if OpenDevice == nil {
			return BenchResult{}, fmt.Errorf("%w: --device %s: this tnn runs on the CPU only; %s", ErrConfig, c.Device, DeviceBuildHint)
		}
		dev, err := OpenDevice(c.Device, net, opt)
		if err != nil {
			return BenchResult{}, err
		}
		defer dev.Close()
		// Both return values that live on the host, so each timed step
		// includes waiting for the device to finish it.
		step = func() error {
			if !c.Train {
				_, err := dev.Forward(x)
				return err
			}
			_, _, err := dev.TrainStep(x, y, 0.01)
			return err
		}
	}
	for i := 0; i < c.Warmup; i++ {
		if err := step(); err != nil {
			return BenchResult{}, err
		}
	}
	t0 := time.Now()
	for i := 0; i < c.Steps; i++ {
		if err := step(); err != nil {
			return BenchResult{}, err
		}
	}
	dt := time.Since(t0).Seconds()
	return BenchResult{
		ImgPerS:   float64(c.Steps*c.BatchSize) / dt,
		MsPerStep: 1000 * dt / float64(c.Steps),
		Threads:   parallel.Threads(),
	}, nil
}
