package infer

import (
	"math"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
)

// convProbe is a network whose logits are the output of one ternary
// convolution (BatchNorm folded), read through a full-precision identity
// layer, which int8 mode leaves in float: so the int8 error of that one
// convolution can be checked against its bound. With relu, a ReLU comes
// first, so the convolution's input is unsigned (zero point 0).
func convProbe(t *testing.T, tex int, relu bool) *models.Net {
	t.Helper()
	in := models.Input
	const c, oc, h, w = 5, 20, 6, 7 // 5 channels: padded to 8 in int8 mode
	feats := oc * h * w
	var nodes []models.Node
	if relu {
		nodes = append(nodes, models.Node{Name: "r0", Op: models.OpReLU, Inputs: []int{in}})
		in = 0
	}
	k := len(nodes)
	nodes = append(nodes,
		models.Node{Name: "conv", Op: models.OpConv2d, Inputs: []int{in}, InC: c, OutC: oc, Kernel: 3, Stride: 1, Padding: 1, Ternary: true},
		models.Node{Name: "bn", Op: models.OpBatchNorm2d, Inputs: []int{k}, OutC: oc},
		models.Node{Name: "flat", Op: models.OpFlatten, Inputs: []int{k + 1}},
		models.Node{Name: "id", Op: models.OpLinear, Inputs: []int{k + 2}, InC: feats, OutC: feats},
	)
	s := &models.Spec{Arch: "probe", InC: c, H: h, W: w, Classes: feats, Nodes: nodes}
	net, err := models.Build(s, models.Options{TEx: tex, TFactor: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	net.Init(21)
	randomizeBN(net, 22)
	for _, e := range net.StateDict() {
		if e.Name == "id.weight" {
			clear(e.T.Data)
			for i := 0; i < feats; i++ {
				e.T.Data[i*feats+i] = 1
			}
		}
	}
	return net
}

// TestInt8ErrorBound checks int8 mode against the rounding-error bound of
// one layer: the input is quantised with step s = max|x|/127 (signed) or
// max x/255 (after a ReLU), so each input is off by at most s/2 and output
// channel o by at most s/2 · Σ_t |scale_o·α_t| · Σ_k |T_t[o,k]|. A wrong
// scale, zero point, padding value or channel order breaks it by far.
func TestInt8ErrorBound(t *testing.T) {
	for _, tex := range []int{1, 2} {
		for _, relu := range []bool{false, true} {
			net := convProbe(t, tex, relu)
			s := net.Spec
			x := tensor.New(2, s.InC, s.H, s.W)
			for i := range x.Data {
				x.Data[i] = float32(math.Sin(float64(i)*0.7)) * 3
			}
			want := net.Forward(x, false).Clone()
			m, err := packed.FromNet(net, opts(packed.Bits, tex))
			if err != nil {
				t.Fatal(err)
			}
			m.Norm = packed.Norm{Mean: make([]float32, s.InC), Std: make([]float32, s.InC)}
			for i := range m.Norm.Std {
				m.Norm.Std[i] = 1
			}
			for _, ks := range allSets() {
				e, err := newWith(m, Options{Int8: true}, ks)
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				checkBound(t, m, x, want, got, tex, relu, ks.name)
			}
		}
	}
}

// checkBound holds the int8 logits of a convProbe to the rounding bound.
func checkBound(t *testing.T, m *packed.Model, x, want, got *tensor.Tensor, tex int, relu bool, kernels string) {
	t.Helper()
	s := m.Spec
	{
		{
			l := m.Layers[0]
			codec, _ := m.Codec()
			oc, hw := l.Scale, s.H*s.W
			rowLen := s.InC * 9
			lv := make([]int8, rowLen)
			// gain[o] = Σ_t |scale_o·α_t| · Σ_k |T_t[o,k]|
			gain := make([]float64, len(oc))
			for o := range gain {
				codec.Unpack(l.Codes, o*rowLen, lv)
				for t, a := range l.Alpha {
					n := 0
					for _, L := range lv {
						if int(L) > t || int(L) < -t {
							n++
						}
					}
					gain[o] += math.Abs(float64(oc[o]*a)) * float64(n)
				}
			}
			var worst float64
			for img := 0; img < 2; img++ {
				var mx float64
				for _, v := range x.Data[img*s.InC*hw : (img+1)*s.InC*hw] {
					if relu {
						v = max(v, 0)
					}
					mx = max(mx, math.Abs(float64(v)))
				}
				step := mx / 127
				if relu {
					step = mx / 255
				}
				for i := 0; i < s.Classes; i++ {
					o := i / hw // flatten keeps PyTorch's CHW order
					k := img*s.Classes + i
					d := math.Abs(float64(got.Data[k] - want.Data[k]))
					bound := step/2*gain[o]*(1+1e-4) + 1e-5*(1+math.Abs(float64(want.Data[k])))
					if d > bound {
						t.Fatalf("tex=%d relu=%v %s: logit %d is %g, float model %g: off by %.3g, bound %.3g",
							tex, relu, kernels, k, got.Data[k], want.Data[k], d, bound)
					}
					worst = max(worst, d/bound)
				}
			}
			t.Logf("tex=%d relu=%v %s: worst error %.0f%% of the bound", tex, relu, kernels, 100*worst)
		}
	}
}

// TestInt8MatchesNet runs whole networks in int8 mode: the logits stay
// within 3% of the float model's largest logit (about 0.5% is typical).
// The rounding of each layer's input flips a last step here and there, so
// deep networks are not compared with a simulation of the rounding (as
// TestOtherOps does for a shallow one): those flips add up.
func TestInt8MatchesNet(t *testing.T) {
	for _, tc := range []struct {
		arch string
		tex  int
	}{{"tern_resnet20", 1}, {"tern_resnet20", 2}, {"resnet20", 1}} {
		net := tinyNet(t, tc.arch, tc.tex, 3)
		x := randInput(5, 4)
		want := net.Forward(x, false).Clone()
		m, err := packed.FromNet(net, opts(packed.Dense, tc.tex))
		if err != nil {
			t.Fatal(err)
		}
		for _, ks := range allSets() {
			e, err := newWith(m, Options{Int8: true}, ks)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			var worst, top float64
			for i := range want.Data {
				worst = max(worst, math.Abs(float64(got.Data[i]-want.Data[i])))
				top = max(top, math.Abs(float64(want.Data[i])))
			}
			if worst > 0.03*top {
				t.Errorf("%s tex=%d %s: int8 logits off by %.3g, largest logit %.3g", tc.arch, tc.tex, ks.name, worst, top)
			} else {
				t.Logf("%s tex=%d %s: int8 logits off by %.2g%% of the largest", tc.arch, tc.tex, ks.name, 100*worst/top)
			}
		}
	}
}

// TestTeamMatchesBatch checks that one image shared by several threads
// gives bit for bit the logits of the same image computed by one thread.
// At 24×24 the first stage's inputs are large enough (minShared) for the
// team to share their padding too.
func TestTeamMatchesBatch(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	defer func(v int) { teamMinMACs = v }(teamMinMACs)
	teamMinMACs = 0
	for _, int8 := range []bool{false, true} {
		for _, tex := range []int{1, 2} {
			s, err := models.New("tern_resnet20", models.Config{InC: 1, H: 24, W: 24, Classes: 10})
			if err != nil {
				t.Fatal(err)
			}
			net, err := models.Build(s, models.Options{TEx: tex})
			if err != nil {
				t.Fatal(err)
			}
			net.Init(5)
			randomizeBN(net, 5)
			m, err := packed.FromNet(net, opts(packed.Bits, tex))
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.New(1, 1, 24, 24)
			for i := range x.Data {
				x.Data[i] = float32(math.Cos(float64(i) * 0.37))
			}
			var outs [2]*tensor.Tensor
			for i, threads := range []int{1, 3} {
				parallel.SetThreads(threads)
				e, err := New(m, Options{Int8: int8})
				if err != nil {
					t.Fatal(err)
				}
				if outs[i], err = e.Forward(x); err != nil {
					t.Fatal(err)
				}
			}
			for i, v := range outs[0].Data {
				if math.Float32bits(v) != math.Float32bits(outs[1].Data[i]) {
					t.Fatalf("int8=%v tex=%d: logit %d is %g with 1 thread, %g with 3", int8, tex, i, v, outs[1].Data[i])
				}
			}
		}
	}
}
