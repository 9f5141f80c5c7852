package xla

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/tnn-go/tnn/internal/rng"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/ternary"
)

// The CPU engine (models.Net) is the reference everywhere here: the lowered
// graph runs on GoMLX's pure-Go backend with the same weights and inputs.

// newNet builds arch for a c×h×w input and fills every state tensor,
// BatchNorm running statistics included, with seeded random values so that
// eval mode and the ternary thresholds are exercised.
func newNet(t *testing.T, s *models.Spec, tex int, seed uint64) *models.Net {
	t.Helper()
	net, err := models.Build(s, models.Options{TEx: tex})
	if err != nil {
		t.Fatal(err)
	}
	net.Init(seed)
	r := rng.New(seed + 1)
	for _, e := range net.StateDict() {
		switch {
		case hasSuffix(e.Name, ".running_mean"), hasSuffix(e.Name, ".bias"):
			for i := range e.T.Data {
				e.T.Data[i] = float32(0.1 * r.Normal())
			}
		case hasSuffix(e.Name, ".running_var"):
			for i := range e.T.Data {
				e.T.Data[i] = float32(0.5 + r.Float64())
			}
		case hasSuffix(e.Name, ".weight") && len(e.T.Shape) == 1: // BatchNorm γ
			for i := range e.T.Data {
				e.T.Data[i] = float32(0.8 + 0.4*r.Float64())
			}
		}
	}
	return net
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func spec(t *testing.T, arch string, c, h, w int) *models.Spec {
	t.Helper()
	s, err := models.New(arch, models.Config{InC: c, H: h, W: w, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomInput(seed uint64, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	r := rng.New(seed)
	for i := range x.Data {
		x.Data[i] = float32(r.Normal())
	}
	return x
}

// relErr is max|a−b| / max|b|: logits are compared as a whole, so that a
// logit near zero does not demand an absolute agreement it cannot have.
func relErr(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

// lowered runs Model.Forward on the pure-Go backend with net's weights and
// returns the logits and the updated running statistics.
func lowered(t *testing.T, net *models.Net, x *tensor.Tensor, train bool) (logits []float32, stats [][]float32) {
	t.Helper()
	m, err := LowerNet(net)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	sd := map[string]*tensor.Tensor{}
	for _, e := range net.StateDict() {
		sd[e.Name] = e.T
	}
	var args []any
	for _, p := range m.Params {
		args = append(args, tensors.FromFlatDataAndDimensions(sd[p.Name].Data, p.Shape...))
	}
	for _, s := range m.Stats {
		args = append(args, tensors.FromFlatDataAndDimensions(sd[s.Name].Data, s.Shape...))
	}
	args = append(args, tensors.FromFlatDataAndDimensions(x.Data, x.Shape...))
	nP, nS := len(m.Params), len(m.Stats)
	e, err := graph.NewExec(b, func(in []*graph.Node) []*graph.Node {
		y, ns := m.Forward(in[:nP], in[nP:nP+nS], in[nP+nS], train)
		return append([]*graph.Node{y}, ns...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := e.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	logits = tensors.MustCopyFlatData[float32](outs[0])
	for _, o := range outs[1:] {
		stats = append(stats, tensors.MustCopyFlatData[float32](o))
	}
	return logits, stats
}

func TestForwardMatchesCPUEngine(t *testing.T) {
	for _, c := range []struct {
		arch    string
		c, h, w int
		tex     int
	}{
		{"tern_resnet20", 1, 28, 28, 1},
		{"tern_resnet20", 3, 32, 32, 1},
		{"tern_resnet20", 3, 32, 32, 2},
		{"resnet20", 3, 32, 32, 1},
	} {
		for _, train := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s_%dx%dx%d_tex%d_train=%v", c.arch, c.c, c.h, c.w, c.tex, train), func(t *testing.T) {
				net := newNet(t, spec(t, c.arch, c.c, c.h, c.w), c.tex, 7)
				x := randomInput(11, 2, c.c, c.h, c.w)
				got, stats := lowered(t, net, x, train)
				want := net.Forward(x, train).Data
				t.Logf("relative error %.3g", relErr(got, want))
				if e := relErr(got, want); e > 1e-4 || math.IsNaN(e) {
					t.Fatalf("logits differ: relative error %.3g\n got %v\nwant %v", e, got[:10], want[:10])
				}
				// net.Forward(train) has moved the host's running statistics
				// exactly as the graph's outputs should have.
				m, _ := LowerNet(net)
				sd := map[string]*tensor.Tensor{}
				for _, e := range net.StateDict() {
					sd[e.Name] = e.T
				}
				for i, s := range m.Stats {
					if e := relErr(stats[i], sd[s.Name].Data); e > 1e-5 {
						t.Fatalf("%s differs: relative error %.3g", s.Name, e)
					}
				}
			})
		}
	}
}

// allOps is a Spec with every operation of models, in shapes the CIFAR and
// ImageNet models do not combine: biased ternary convolutions with stride
// and padding, both poolings with padding, flatten, BatchNorm1d, t_ex = 2.
func allOps() *models.Spec {
	in := models.Input
	return &models.Spec{Arch: "all_ops", InC: 2, H: 9, W: 9, Classes: 5, Nodes: []models.Node{
		{Name: "conv", Op: models.OpConv2d, Inputs: []int{in}, InC: 2, OutC: 4, Kernel: 3, Stride: 2, Padding: 1, Bias: true, Ternary: true}, // 0: 4×5×5
		{Name: "bn", Op: models.OpBatchNorm2d, Inputs: []int{0}, OutC: 4},                                                                    // 1
		{Name: "relu", Op: models.OpReLU, Inputs: []int{1}},                                                                                  // 2
		{Name: "pool", Op: models.OpMaxPool2d, Inputs: []int{2}, Kernel: 3, Stride: 1, Padding: 1},                                           // 3: 4×5×5
		{Name: "sc", Op: models.OpShortcutA, Inputs: []int{3}, InC: 4, OutC: 6, Stride: 2},                                                   // 4: 6×3×3
		{Name: "conv2", Op: models.OpConv2d, Inputs: []int{3}, InC: 4, OutC: 6, Kernel: 3, Stride: 2, Padding: 1},                            // 5: 6×3×3
		{Name: "add", Op: models.OpAdd, Inputs: []int{4, 5}},                                                                                 // 6
		{Name: "avg", Op: models.OpAvgPool2d, Inputs: []int{6}, Kernel: 2, Stride: 1, Padding: 1},                                            // 7: 6×4×4
		{Name: "flat", Op: models.OpFlatten, Inputs: []int{7}},                                                                               // 8: 96
		{Name: "fc1", Op: models.OpLinear, Inputs: []int{8}, InC: 96, OutC: 7, Ternary: true},                                                // 9
		{Name: "bn1", Op: models.OpBatchNorm1d, Inputs: []int{9}, OutC: 7},                                                                   // 10
		{Name: "relu1", Op: models.OpReLU, Inputs: []int{10}},                                                                                // 11
		{Name: "fc2", Op: models.OpLinear, Inputs: []int{11}, InC: 7, OutC: 5, Bias: true},                                                   // 12
	}}
}

func TestForwardAllOps(t *testing.T) {
	for _, train := range []bool{false, true} {
		t.Run(fmt.Sprintf("train=%v", train), func(t *testing.T) {
			net := newNet(t, allOps(), 2, 3)
			// Weights exactly at ±th_i are kept (|W| ≥ th, compared in
			// float32 as the CPU engine and torch do).
			for _, tl := range net.TernaryLayers() {
				w := tl.Weight.Data.Data
				m := tensor.MaxAbs(w)
				w[1] = tl.Quant.Factors[0] * m
				w[2] = -tl.Quant.Factors[1] * m
			}
			x := randomInput(5, 4, 2, 9, 9)
			got, _ := lowered(t, net, x, train)
			want := net.Forward(x, train).Data
			t.Logf("relative error %.3g", relErr(got, want))
			if e := relErr(got, want); e > 1e-4 || math.IsNaN(e) {
				t.Fatalf("logits differ: relative error %.3g\n got %v\nwant %v", e, got, want)
			}
		})
	}
}

// The ImageNet ResNet stem (7×7/2 convolution, 3×3/2 max pool with
// padding) and projection shortcuts, on a small image.
func TestForwardResNet18(t *testing.T) {
	net := newNet(t, spec(t, "resnet18b_fq_lq_tex1", 3, 32, 32), 0, 9)
	x := randomInput(13, 2, 3, 32, 32)
	got, _ := lowered(t, net, x, false)
	want := net.Forward(x, false).Data
	t.Logf("relative error %.3g", relErr(got, want))
	if e := relErr(got, want); e > 1e-4 || math.IsNaN(e) {
		t.Fatalf("logits differ: relative error %.3g\n got %v\nwant %v", e, got, want)
	}
}

// Lower's tensors are the CPU engine's state_dict, in its order, and its
// ternary factors those of the network's quantizers.
func TestLowerLayout(t *testing.T) {
	s := spec(t, "resnet18b_fq_lq_tern_tex_2", 3, 32, 32)
	for _, o := range []models.Options{{}, {TFactor: 0.01, TEx: 40}} {
		net, err := models.Build(s, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []func() (*Model, error){func() (*Model, error) { return Lower(s, o) }, func() (*Model, error) { return LowerNet(net) }} {
			lm, err := m()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range lm.Params {
				names = append(names, p.Name)
			}
			var want []string
			for _, p := range net.Params() {
				want = append(want, p.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Fatalf("lowered parameters %v, network %v", names, want)
			}
			for i, q := range net.Quant {
				if fmt.Sprint(lm.nodes[i].factors) != fmt.Sprint(quantFactors(q)) {
					t.Fatalf("node %s: lowered factors %v, quantizer %v", s.Nodes[i].Name, lm.nodes[i].factors, quantFactors(q))
				}
			}
		}
	}
	if _, err := Lower(s, models.Options{Scheme: "optimal"}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("optimal scheme: got %v, want ErrUnsupported", err)
	}
	s.Nodes[1].OutC++ // a BatchNorm that does not fit its input
	if _, err := Lower(s, models.Options{}); !errors.Is(err, models.ErrBadConfig) {
		t.Fatalf("bad Spec: got %v, want ErrBadConfig", err)
	}
}

func quantFactors(q *ternary.Quantizer) []float32 {
	if q == nil {
		return nil
	}
	return q.Factors
}
