package xla

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/optim"
	"github.com/tnn-go/tnn/tensor"
)

func labels(n, classes int) []int32 {
	y := make([]int32, n)
	for i := range y {
		y[i] = int32((i*7 + 3) % classes)
	}
	return y
}

// graphGrads returns the lowered model's loss and dLoss/dParam for every
// parameter, in training mode, on the pure-Go backend.
func graphGrads(t *testing.T, net *models.Net, x *tensor.Tensor, y []int32) (float32, [][]float32) {
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
	args = append(args, tensors.FromFlatDataAndDimensions(x.Data, x.Shape...), tensors.FromFlatDataAndDimensions(y, len(y)))
	nP, nS := len(m.Params), len(m.Stats)
	e, err := graph.NewExec(b, func(in []*graph.Node) []*graph.Node {
		logits, _ := m.Forward(in[:nP], in[nP:nP+nS], in[nP+nS], true)
		loss := CrossEntropy(logits, in[nP+nS+1])
		return append([]*graph.Node{loss}, graph.Gradient(loss, in[:nP]...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := e.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	var grads [][]float32
	for _, o := range outs[1:] {
		grads = append(grads, tensors.MustCopyFlatData[float32](o))
	}
	return tensors.ToScalar[float32](outs[0]), grads
}

// cpuGrads is one forward and backward pass of the CPU engine.
func cpuGrads(net *models.Net, x *tensor.Tensor, y []int32) (float64, [][]float32) {
	var ce nn.CrossEntropy
	loss := ce.Forward(net.Forward(x, true), y)
	net.Backward(ce.Backward())
	var grads [][]float32
	for _, p := range net.Params() {
		grads = append(grads, slices.Clone(p.Grad.Data))
	}
	return loss, grads
}

func checkGrads(t *testing.T, net *models.Net, x *tensor.Tensor, y []int32, tol float64) {
	t.Helper()
	gl, gg := graphGrads(t, net, x, y)
	cl, cg := cpuGrads(net, x, y)
	if d := math.Abs(float64(gl) - cl); d > 1e-5*math.Max(1, cl) {
		t.Errorf("loss %v, CPU engine %v", gl, cl)
	}
	worst, at := 0.0, ""
	for i, p := range net.Params() {
		e := relErr(gg[i], cg[i])
		if tensor.MaxAbs(cg[i]) < 1e-6 {
			// A bias right before a BatchNorm has a zero gradient in exact
			// arithmetic; both engines give rounding noise, compared absolutely.
			e = float64(tensor.MaxAbs(gg[i]))
		}
		if e > worst || math.IsNaN(e) {
			worst, at = e, p.Name
		}
	}
	t.Logf("loss %.6f; largest relative gradient error %.3g (%s)", gl, worst, at)
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("gradient of %s differs: relative error %.3g", at, worst)
	}
}

// linearOnly is a ternary two-layer perceptron: the straight-through
// gradient checked on its own, with t_ex = 2 (factor 2) and latent weights
// beyond ±1 (gradient cut).
func TestTernaryGradientLinear(t *testing.T) {
	in := models.Input
	s := &models.Spec{Arch: "tern_mlp", InC: 6, H: 2, W: 2, Classes: 5, Nodes: []models.Node{
		{Name: "flat", Op: models.OpFlatten, Inputs: []int{in}},
		{Name: "fc1", Op: models.OpLinear, Inputs: []int{0}, InC: 24, OutC: 16, Bias: true, Ternary: true},
		{Name: "relu", Op: models.OpReLU, Inputs: []int{1}},
		{Name: "fc2", Op: models.OpLinear, Inputs: []int{2}, InC: 16, OutC: 5, Bias: true, Ternary: true},
	}}
	for _, tex := range []int{1, 2} {
		t.Run(fmt.Sprintf("tex%d", tex), func(t *testing.T) {
			net := newNet(t, s, tex, 21)
			w := net.Params()[0].Data.Data
			cut := 0
			for i := range w {
				if i%5 == 0 {
					w[i] *= 8 // some beyond ±1: their gradient must be 0
				}
				if math.Abs(float64(w[i])) >= 1 {
					cut++
				}
			}
			if cut == 0 {
				t.Fatal("test setup: no weight beyond ±1")
			}
			x := randomInput(23, 8, 6, 2, 2)
			y := labels(8, 5)
			_, gg := graphGrads(t, net, x, y)
			for i, v := range w {
				if math.Abs(float64(v)) >= 1 && gg[0][i] != 0 {
					t.Fatalf("weight %d = %v beyond ±1 has gradient %v, want 0", i, v, gg[0][i])
				}
			}
			checkGrads(t, net, x, y, 1e-5)
		})
	}
}

func TestGradientsMatchCPUEngine(t *testing.T) {
	for _, c := range []struct {
		name string
		s    func(t *testing.T) *models.Spec
		tex  int
		x    *tensor.Tensor
	}{
		{"tern_resnet20_tex1", func(t *testing.T) *models.Spec { return spec(t, "tern_resnet20", 1, 12, 12) }, 1, randomInput(31, 4, 1, 12, 12)},
		{"tern_resnet20_tex2", func(t *testing.T) *models.Spec { return spec(t, "tern_resnet20", 3, 8, 8) }, 2, randomInput(32, 4, 3, 8, 8)},
		{"resnet20", func(t *testing.T) *models.Spec { return spec(t, "resnet20", 3, 8, 8) }, 1, randomInput(33, 4, 3, 8, 8)},
		// Max pooling's gradient needs SelectAndScatter, which the pure-Go
		// backend lacks; average pooling (and its Pad) stands in for it here.
		{"all_ops_avgpool", func(t *testing.T) *models.Spec {
			s := allOps()
			s.Nodes[3].Op = models.OpAvgPool2d
			return s
		}, 2, randomInput(34, 4, 2, 9, 9)},
	} {
		t.Run(c.name, func(t *testing.T) {
			net := newNet(t, c.s(t), c.tex, 41)
			checkGrads(t, net, c.x, labels(c.x.Shape[0], net.Spec.Classes), 1e-4)
		})
	}
}

// cpuStep is one step of the CPU engine, as train.Run takes it.
func cpuStep(t *testing.T, net *models.Net, opt optim.Optimizer, x *tensor.Tensor, y []int32, lr float64) (float64, int) {
	t.Helper()
	var ce nn.CrossEntropy
	logits := net.Forward(x, true)
	loss := ce.Forward(logits, y)
	correct := nn.TopK(logits, y, 1)
	net.Backward(ce.Backward())
	if err := opt.SetLR(lr); err != nil {
		t.Fatal(err)
	}
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	return loss, correct
}

func newOpt(t *testing.T, kind string, net *models.Net) optim.Optimizer {
	t.Helper()
	h := optim.Hyper{LR: 0.1, WeightDecay: 3e-4, Momentum: 0.9, Nesterov: true}
	if kind == "Adam" {
		// A large eps: with torch's 1e-8 the first steps move every weight
		// by ±lr whatever its gradient's size, so gradients that are zero
		// up to rounding noise move by ±lr in either engine.
		h = optim.Hyper{LR: 1e-3, WeightDecay: 3e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-3}
	}
	o, err := optim.New(kind, net.Params(), h)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// stateClose compares two networks' state_dicts: parameters relative to
// their scale, num_batches_tracked exactly.
func stateClose(t *testing.T, got, want *models.Net, tol float64) {
	t.Helper()
	w := map[string][]float32{}
	for _, e := range want.StateDict() {
		w[e.Name] = e.T.Data
	}
	worst, at := 0.0, ""
	for _, e := range got.StateDict() {
		if hasSuffix(e.Name, "num_batches_tracked") {
			if e.T.Data[0] != w[e.Name][0] {
				t.Fatalf("%s = %v, want %v", e.Name, e.T.Data[0], w[e.Name][0])
			}
			continue
		}
		if d := relErr(e.T.Data, w[e.Name]); d > worst || math.IsNaN(d) {
			worst, at = d, e.Name
		}
	}
	t.Logf("largest relative state difference %.3g (%s)", worst, at)
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("%s differs from the CPU engine: relative error %.3g", at, worst)
	}
}

// The Trainer's steps against the CPU engine's, then Sync into the host
// network and optimizer, a resume from that host state, and evaluation.
// Sizes and seeds here keep every ReLU input and latent weight clear of its
// kink (see TestRunOnDevice), so the engines agree to rounding.
func TestTrainerMatchesCPUEngine(t *testing.T) {
	for _, kind := range []string{"SGD", "Adam"} {
		t.Run(kind, func(t *testing.T) {
			s := spec(t, "tern_resnet20", 1, 12, 12)
			cpu := newNet(t, s, 1, 51)
			cpuOpt := newOpt(t, kind, cpu)
			dev := newNet(t, s, 1, 51)
			devOpt := newOpt(t, kind, dev)
			tr, err := NewTrainer("go", dev, devOpt)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			lrs := []float64{0.1, 0.1, 0.05}
			if kind == "Adam" {
				lrs = []float64{1e-3, 1e-3, 5e-4}
			}
			for i, lr := range lrs {
				// The last batch is smaller, as an epoch's last one is.
				n := 6
				if i == len(lrs)-1 {
					n = 4
				}
				x := randomInput(uint64(60+i), n, 1, 12, 12)
				y := labels(n, 10)
				wl, wc := cpuStep(t, cpu, cpuOpt, x, y, lr)
				gl, gc, err := tr.TrainStep(x, y, lr)
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(gl-wl) > 1e-5*math.Max(1, wl) || gc != wc {
					t.Fatalf("step %d: loss %v correct %d, CPU engine %v %d", i, gl, gc, wl, wc)
				}
			}
			if err := tr.Sync(); err != nil {
				t.Fatal(err)
			}
			stateClose(t, dev, cpu, 1e-4)
			gotNamed, gotInfo := devOpt.State()
			wantNamed, wantInfo := cpuOpt.State()
			if gotInfo.Step != wantInfo.Step || gotInfo.Hyper != wantInfo.Hyper || len(gotNamed) != len(wantNamed) {
				t.Fatalf("optimizer state %+v (%d buffers), CPU engine %+v (%d)", gotInfo, len(gotNamed), wantInfo, len(wantNamed))
			}
			for i := range gotNamed {
				if gotNamed[i].Name != wantNamed[i].Name {
					t.Fatalf("buffer %d is %s, CPU engine %s", i, gotNamed[i].Name, wantNamed[i].Name)
				}
				if e := relErr(gotNamed[i].T.Data, wantNamed[i].T.Data); e > 1e-3 {
					t.Fatalf("%s differs: relative error %.3g", gotNamed[i].Name, e)
				}
			}

			// Resume: a second Trainer from the synced host state takes the
			// same next step as the first.
			tr2, err := NewTrainer("go", dev, devOpt)
			if err != nil {
				t.Fatal(err)
			}
			defer tr2.Close()
			x := randomInput(70, 6, 1, 12, 12)
			y := labels(6, 10)
			l1, _, err := tr.TrainStep(x, y, lrs[0])
			if err != nil {
				t.Fatal(err)
			}
			l2, _, err := tr2.TrainStep(x, y, lrs[0])
			if err != nil {
				t.Fatal(err)
			}
			if l1 != l2 {
				t.Fatalf("resumed trainer's loss %v, continuing trainer's %v", l2, l1)
			}
			if err := tr2.Sync(); err != nil {
				t.Fatal(err)
			}
			after2 := map[string][]float32{}
			for _, e := range dev.StateDict() {
				after2[e.Name] = slices.Clone(e.T.Data)
			}
			if err := tr.Sync(); err != nil {
				t.Fatal(err)
			}
			for _, e := range dev.StateDict() {
				if !slices.Equal(e.T.Data, after2[e.Name]) {
					t.Fatalf("%s after a resumed step differs from a continued one", e.Name)
				}
			}

			// Eval: device logits (a batch smaller than before is padded) against the
			// CPU engine on the synced weights.
			for _, n := range []int{5, 3} {
				x := randomInput(uint64(80+n), n, 1, 12, 12)
				got, err := tr.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				if got.Shape[0] != n {
					t.Fatalf("Forward returned %v for %d images", got.Shape, n)
				}
				if e := relErr(got.Data, dev.Forward(x, false).Data); e > 1e-4 {
					t.Fatalf("eval logits of %d images differ: relative error %.3g", n, e)
				}
			}
		})
	}
}
