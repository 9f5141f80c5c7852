package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
)

// TestPredictMatchesForward holds Predict, which folds each eval-mode
// BatchNorm into the convolution before it, to Forward(x, false) on networks
// with trained-looking statistics, through every convolution algorithm.
func TestPredictMatchesForward(t *testing.T) {
	defer nn.SetConvAlgo(nn.SetConvAlgo(nn.ConvAuto))
	cases := []struct {
		arch string
		cfg  Config
		tex  int
	}{
		{"resnet20", Config{InC: 3, H: 32, W: 32, Classes: 10}, 1},
		{"tern_resnet20", Config{InC: 1, H: 28, W: 28, Classes: 10}, 2},
		{"resnet50", Config{InC: 3, H: 16, W: 16, Classes: 7}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.arch, func(t *testing.T) { checkPredict(t, tc.arch, tc.cfg, tc.tex) })
	}
}

func checkPredict(t *testing.T, arch string, cfg Config, tex int) {
	{
		s, err := New(arch, cfg)
		if err != nil {
			t.Fatal(err)
		}
		n, err := Build(s, Options{TEx: tex})
		if err != nil {
			t.Fatal(err)
		}
		n.Init(3)
		r := rand.New(rand.NewPCG(5, 6))
		folds := 0
		for i, l := range n.Layers {
			if n.foldInto[i] >= 0 {
				folds++
			}
			switch l := l.(type) {
			case *nn.BatchNorm:
				for c := 0; c < l.C; c++ {
					l.RunningMean.Data[c] = float32(r.NormFloat64() * 0.3)
					l.RunningVar.Data[c] = float32(0.2 + r.Float64())
					l.Weight.Data.Data[c] = float32(0.5 + r.Float64())
					l.Bias.Data.Data[c] = float32(r.NormFloat64() * 0.2)
				}
			case *nn.Conv2d:
				if l.Bias != nil {
					for o := range l.Bias.Data.Data {
						l.Bias.Data.Data[o] = float32(r.NormFloat64() * 0.1)
					}
				}
			}
		}
		if folds == 0 {
			t.Fatalf("%s: no convolution paired with its BatchNorm", arch)
		}
		x := tensor.New(2, cfg.InC, cfg.H, cfg.W)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		for _, algo := range []nn.ConvAlgo{nn.ConvIm2col, nn.ConvWinograd, nn.ConvWinograd4, nn.ConvAuto} {
			nn.SetConvAlgo(algo)
			want := n.Forward(x, false).Clone()
			got := n.Predict(x)
			var scale, worst float64
			for i, v := range want.Data {
				scale = max(scale, math.Abs(float64(v)))
				worst = max(worst, math.Abs(float64(got.Data[i]-v)))
			}
			if scale == 0 || worst > 1e-4*scale || math.IsNaN(worst) {
				t.Errorf("%s %v: Predict differs from Forward by %.3g (logits up to %.3g)", arch, algo, worst, scale)
			}
		}
	}
}
