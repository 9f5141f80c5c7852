package models

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
)

func TestStateDictNames(t *testing.T) {
	s, err := New("tern_resnet20", Config{InC: 1, H: 28, W: 28, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Build(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sd := n.StateDict()
	names := map[string][]int{}
	for _, e := range sd {
		names[e.Name] = e.T.Shape
	}
	for name, shape := range map[string][]int{
		"conv_1_3x3.weight":        {16, 1, 3, 3},
		"bn_1.running_mean":        {16},
		"bn_1.num_batches_tracked": {},
		"stage_1.0.conv_a.weight":  {16, 16, 3, 3},
		"stage_2.0.conv_a.weight":  {32, 16, 3, 3},
		"stage_3.2.bn_b.bias":      {64},
		"classifier.weight":        {10, 64},
		"classifier.bias":          {10},
	} {
		got, ok := names[name]
		if !ok || !tensor.SameShape(got, shape) {
			t.Errorf("%s: shape %v (present %v), want %v", name, got, ok, shape)
		}
	}
	if sd[0].Name != "conv_1_3x3.weight" || sd[len(sd)-1].Name != "classifier.bias" {
		t.Errorf("state_dict order: first %s, last %s", sd[0].Name, sd[len(sd)-1].Name)
	}
	// 269,434 trainable parameters for 1-channel input (the count PyTorch reports).
	total := 0
	for _, p := range n.Params() {
		total += p.Data.Len()
	}
	if total != 269434 {
		t.Errorf("%d parameters, want 269434", total)
	}
	if got := len(n.TernaryLayers()); got != 20 {
		t.Errorf("%d ternary layers, want 20 (19 convs + classifier)", got)
	}
}

func TestDepths(t *testing.T) {
	for arch, convs := range map[string]int{"resnet20": 19, "resnet32": 31, "resnet44": 43, "resnet56": 55, "resnet110": 109} {
		s, err := New(arch, Config{InC: 3, H: 32, W: 32, Classes: 10})
		if err != nil {
			t.Fatal(err)
		}
		c := 0
		for _, nd := range s.Nodes {
			if nd.Op == OpConv2d {
				c++
				if nd.Ternary {
					t.Errorf("%s: full-precision model has ternary %s", arch, nd.Name)
				}
			}
		}
		if c != convs {
			t.Errorf("%s: %d convolutions, want %d", arch, c, convs)
		}
	}
	if _, err := New("resnet21", Config{InC: 3, H: 32, W: 32, Classes: 10}); !errors.Is(err, ErrUnknownArch) || !strings.Contains(err.Error(), "tern_resnet20") {
		t.Errorf("unknown arch error %v should list valid names", err)
	}
	if _, err := New("resnet20", Config{InC: 3, H: 2, W: 2, Classes: 10}); err != nil {
		t.Errorf("tiny input should still build (global pooling): %v", err)
	}
}

func TestLoadStateDictMismatch(t *testing.T) {
	a, _ := New("resnet20", Config{InC: 1, H: 28, W: 28, Classes: 10})
	b, _ := New("resnet32", Config{InC: 3, H: 32, W: 32, Classes: 10})
	na, _ := Build(a, Options{})
	nb, _ := Build(b, Options{})
	err := na.LoadStateDict(nb.StateDict())
	if !errors.Is(err, ErrStateDict) {
		t.Fatalf("got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"conv_1_3x3.weight has shape [16 3 3 3], model wants [16 1 3 3]", "unexpected stage_1.3.bn_a.bias"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	// A matching state_dict loads and round-trips.
	nc, _ := Build(a, Options{})
	nc.Init(3)
	if err := na.LoadStateDict(nc.StateDict()); err != nil {
		t.Fatal(err)
	}
	if na.StateDict()[0].T.Data[5] != nc.StateDict()[0].T.Data[5] {
		t.Fatal("weights not copied")
	}
}

// TestNetworkGradient checks the executor end to end (residual sums, fused
// ReLUs, shortcuts, pooling, loss) against central differences on a tiny ResNet-20.
func TestNetworkGradient(t *testing.T) {
	checked := networkGradCheck(t, "resnet20", Config{InC: 2, H: 6, W: 6, Classes: 3}, 4, 0.02, func(name string) bool {
		return strings.Contains(name, "conv") || strings.Contains(name, "classifier") || strings.Contains(name, "bn_1")
	})
	if checked < 60 {
		t.Fatalf("only %d gradients checked", checked)
	}
}

// TestBottleneckGradient does the same through torchvision's ResNet-50
// (7×7 stem, max pooling, bottlenecks, projection shortcuts) at 32×32.
// Fifty float32 layers make the central differences of the stem's weights
// uncertain by a few percent: with the assembly and the pure-Go GEMM the
// backward values agree to 1e-7 while the numeric estimates differ by up to
// 2.7 %, so the relative tolerance is 4 % here (a wrong gradient is off by
// far more).
func TestBottleneckGradient(t *testing.T) {
	want := map[string]bool{"conv1.weight": true, "layer1.0.conv2.weight": true, "layer1.0.downsample.0.weight": true,
		"layer2.0.bn3.bias": true, "layer3.1.conv1.weight": true, "fc.weight": true}
	if n := networkGradCheck(t, "resnet50", Config{InC: 3, H: 32, W: 32, Classes: 5}, 3, 0.04, func(name string) bool { return want[name] }); n != 18 {
		t.Fatalf("%d gradients checked, want 18", n)
	}
}

func networkGradCheck(t *testing.T, arch string, cfg Config, batch int, rel float64, pick func(string) bool) int {
	t.Helper()
	s, _ := New(arch, cfg)
	n, err := Build(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Init(1)
	r := rand.New(rand.NewPCG(1, 1))
	x := tensor.New(batch, cfg.InC, cfg.H, cfg.W)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	labels := make([]int32, batch)
	for i := range labels {
		labels[i] = int32(r.IntN(cfg.Classes))
	}
	var ce nn.CrossEntropy
	// Eval-mode BatchNorm makes the network piecewise linear, so central
	// differences are exact away from ReLU and max-pool kinks; train-mode
	// BatchNorm's backward is checked per layer and against PyTorch.
	lossAt := func() float64 { return ce.Forward(n.Forward(x, false), labels) }
	lossAt()
	n.Backward(ce.Backward())
	checked := 0
	for _, p := range n.Params() {
		if !pick(p.Name) {
			continue
		}
		grad := append([]float32(nil), p.Grad.Data...)
		for _, i := range []int{0, len(p.Data.Data) / 2, len(p.Data.Data) - 1} {
			// A step can cross a ReLU kink; the best of three step sizes
			// is free of that, and a wrong gradient matches none of them.
			best := math.Inf(1)
			var num float64
			for _, eps := range []float32{3e-3, 1e-3, 3e-4} {
				old := p.Data.Data[i]
				p.Data.Data[i] = old + eps
				lp := lossAt()
				p.Data.Data[i] = old - eps
				lm := lossAt()
				p.Data.Data[i] = old
				d := (lp - lm) / (2 * float64(eps))
				if e := math.Abs(d - float64(grad[i])); e < best {
					best, num = e, d
				}
			}
			if best > 2e-3+rel*math.Abs(num) {
				t.Errorf("%s[%d]: backward %g, numeric %g", p.Name, i, grad[i], num)
			}
			checked++
		}
	}
	return checked
}
