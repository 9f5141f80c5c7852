package infer

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
)

// tinyNet builds arch at 1×12×12 with random weights and random BatchNorm
// statistics and affine parameters, so that folding is exercised.
func tinyNet(t *testing.T, arch string, tex int, seed uint64) *models.Net {
	t.Helper()
	s, err := models.New(arch, models.Config{InC: 1, H: 12, W: 12, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	net, err := models.Build(s, models.Options{TEx: tex})
	if err != nil {
		t.Fatal(err)
	}
	net.Init(seed)
	randomizeBN(net, seed)
	return net
}

// randomizeBN gives BatchNorm layers (named "bn…") random statistics and
// affine parameters, and classifier biases random values.
func randomizeBN(net *models.Net, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	for _, e := range net.StateDict() {
		switch {
		case strings.Contains(e.Name, "bn") && strings.HasSuffix(e.Name, ".running_var"):
			for i := range e.T.Data {
				e.T.Data[i] = 0.5 + r.Float32()
			}
		case strings.Contains(e.Name, "bn") && (strings.HasSuffix(e.Name, ".running_mean") || strings.HasSuffix(e.Name, ".bias")):
			for i := range e.T.Data {
				e.T.Data[i] = 0.4 * (r.Float32() - 0.5)
			}
		case strings.Contains(e.Name, "bn") && strings.HasSuffix(e.Name, ".weight"):
			for i := range e.T.Data {
				e.T.Data[i] = 0.5 + r.Float32()
			}
		case strings.HasSuffix(e.Name, ".bias"):
			for i := range e.T.Data {
				e.T.Data[i] = r.Float32() - 0.5
			}
		}
	}
}

func randInput(n int, seed uint64) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 9))
	x := tensor.New(n, 1, 12, 12)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	return x
}

func opts(p packed.Packing, tex int) packed.Options {
	return packed.Options{Packing: p, TEx: tex, TFactor: 0.05, Dataset: "test",
		Norm: packed.Norm{Mean: []float32{0.5}, Std: []float32{0.25}}}
}

// TestMatchesNet is the key correctness test: the packed model, run from its
// packed weights, gives the logits of models.Net in eval mode.
func TestMatchesNet(t *testing.T) {
	for _, tc := range []struct {
		arch string
		tex  int
	}{{"tern_resnet20", 1}, {"tern_resnet20", 2}, {"resnet20", 1}} {
		net := tinyNet(t, tc.arch, tc.tex, 3)
		x := randInput(3, 4)
		want := net.Forward(x, false).Clone()
		for _, p := range []packed.Packing{packed.Bits, packed.Dense} {
			m, err := packed.FromNet(net, opts(p, tc.tex))
			if err != nil {
				t.Fatal(err)
			}
			b, err := packed.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := packed.Read(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, ks := range allSets() {
				e, err := newWith(m2, Options{}, ks)
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				for i := range want.Data {
					d := math.Abs(float64(got.Data[i] - want.Data[i]))
					worst = max(worst, d/(1+math.Abs(float64(want.Data[i]))))
				}
				if worst > 1e-4 {
					t.Errorf("%s tex=%d %s %s: logits differ by %.3g (relative); got %v want %v", tc.arch, tc.tex, p, ks.name, worst, got.Data[:10], want.Data[:10])
				} else {
					t.Logf("%s tex=%d %s %s: %d bytes, worst relative difference %.2g", tc.arch, tc.tex, p, ks.name, len(b), worst)
				}
			}
		}
	}
}

func TestForwardRejectsShape(t *testing.T) {
	net := tinyNet(t, "tern_resnet20", 1, 1)
	m, err := packed.FromNet(net, opts(packed.Bits, 1))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Forward(tensor.New(2, 3, 12, 12)); err == nil {
		t.Error("3-channel input accepted by a 1-channel model")
	}
}

// TestOtherOps covers the ops ResNet-20 lacks: max and average pooling,
// flatten, a 1×1 full-precision convolution, biases, BatchNorm1d after a
// ternary linear layer, and a full-precision classifier.
func TestOtherOps(t *testing.T) {
	in := models.Input
	s := &models.Spec{Arch: "mixed", InC: 1, H: 12, W: 12, Classes: 3, Nodes: []models.Node{
		{Name: "c1", Op: models.OpConv2d, Inputs: []int{in}, InC: 1, OutC: 4, Kernel: 3, Stride: 1, Padding: 1, Bias: true, Ternary: true},
		{Name: "bn1", Op: models.OpBatchNorm2d, Inputs: []int{0}, OutC: 4},
		{Name: "r1", Op: models.OpReLU, Inputs: []int{1}},
		{Name: "mp", Op: models.OpMaxPool2d, Inputs: []int{2}, Kernel: 3, Stride: 2, Padding: 1},
		{Name: "c2", Op: models.OpConv2d, Inputs: []int{3}, InC: 4, OutC: 6, Kernel: 1, Stride: 1},
		{Name: "bn2", Op: models.OpBatchNorm2d, Inputs: []int{4}, OutC: 6},
		{Name: "ap", Op: models.OpAvgPool2d, Inputs: []int{5}, Kernel: 2, Stride: 2},
		{Name: "c3", Op: models.OpConv2d, Inputs: []int{6}, InC: 6, OutC: 5, Kernel: 2, Stride: 1, Ternary: true},
		{Name: "fl", Op: models.OpFlatten, Inputs: []int{7}},
		{Name: "l1", Op: models.OpLinear, Inputs: []int{8}, InC: 20, OutC: 8, Ternary: true},
		{Name: "bn3", Op: models.OpBatchNorm1d, Inputs: []int{9}, OutC: 8},
		{Name: "r3", Op: models.OpReLU, Inputs: []int{10}},
		{Name: "fc", Op: models.OpLinear, Inputs: []int{11}, InC: 8, OutC: 3, Bias: true},
	}}
	for _, tex := range []int{1, 2, 3} {
		net, err := models.Build(s, models.Options{TEx: tex, TFactor: 0.05})
		if err != nil {
			t.Fatal(err)
		}
		net.Init(11)
		randomizeBN(net, 12)
		x := randInput(5, 13)
		want := net.Forward(x, false).Clone()
		for _, p := range []packed.Packing{packed.Bits, packed.Dense} {
			m, err := packed.FromNet(net, opts(p, tex))
			if err != nil {
				t.Fatal(err)
			}
			b, err := packed.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := packed.Read(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, ks := range allSets() {
				for _, int8 := range []bool{false, true} {
					e, err := newWith(m2, Options{Int8: int8}, ks)
					if err != nil {
						t.Fatal(err)
					}
					got, err := e.Forward(x)
					if err != nil {
						t.Fatal(err)
					}
					// Int8 mode must match the float engine computing on
					// the same rounded inputs, up to float rounding.
					want := want
					if int8 {
						ref, err := newWith(m2, Options{fakeInt8: true}, &goKernels)
						if err != nil {
							t.Fatal(err)
						}
						if want, err = ref.Forward(x); err != nil {
							t.Fatal(err)
						}
					}
					for i := range want.Data {
						if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > 1e-4*(1+math.Abs(float64(want.Data[i]))) {
							t.Fatalf("tex=%d %s %s int8=%v: logit %d is %g, want %g", tex, p, ks.name, int8, i, got.Data[i], want.Data[i])
						}
					}
				}
			}
		}
	}
}

// allSets is the pure-Go kernels and every assembly set this CPU runs.
func allSets() []*kernelSet { return append([]*kernelSet{&goKernels}, kernelSets...) }
