package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
)

// TestResidualFusionIsExact runs training steps (forward, loss, backward,
// a plain SGD update so that the second step sees other weights) of the
// same network with the residual fusions on and off, and requires every
// logit, parameter gradient, running statistic and weight to agree bit for
// bit. It also checks that the fusions took place: no residual BatchNorm
// output exists, and no block output's gradient went through the
// executor's sum.
func TestResidualFusionIsExact(t *testing.T) {
	cases := []struct {
		arch        string
		cfg         Config
		batch       int
		norms, pair int // fused BatchNorm→Add pairs, gradients taken unsummed
	}{
		// Every block fuses its last BatchNorm; every block output but the
		// last has two readers (the next block's convolution, and its Add
		// or shortcut) and comes from an Add. The stem's output comes from
		// a BatchNorm (ResNet-20) or a max-pool (18, 50): summed as before.
		{"tern_resnet20", Config{InC: 3, H: 8, W: 8, Classes: 10}, 3, 9, 8},
		{"resnet20", Config{InC: 2, H: 6, W: 6, Classes: 3}, 4, 9, 8},
		// Projection shortcuts: the Add reads two BatchNorms and fuses the
		// first.
		{"resnet18", Config{InC: 3, H: 16, W: 16, Classes: 5}, 2, 8, 7},
		{"resnet50", Config{InC: 3, H: 16, W: 16, Classes: 5}, 2, 16, 15},
	}
	for _, tc := range cases {
		t.Run(tc.arch, func(t *testing.T) {
			s, err := New(tc.arch, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var nets [2]*Net
			for k := range nets {
				if nets[k], err = Build(s, Options{}); err != nil {
					t.Fatal(err)
				}
			}
			initForFusion(nets[0])
			// A copy, not a second Init: drawing the ImageNet nets' weights
			// would take most of the test's time.
			if err := nets[1].LoadStateDict(nets[0].StateDict()); err != nil {
				t.Fatal(err)
			}
			nets[1].unfused = true
			fused, norms, pairs := trainSteps(t, nets[0], tc.cfg, tc.batch)
			plain, _, _ := trainSteps(t, nets[1], tc.cfg, tc.batch)
			if norms != tc.norms || pairs != tc.pair {
				t.Errorf("%d BatchNorms fused into their Add, %d gradient pairs unsummed; want %d, %d", norms, pairs, tc.norms, tc.pair)
			}
			if len(fused) != len(plain) {
				t.Fatalf("%d values fused, %d unfused", len(fused), len(plain))
			}
			for i := range fused {
				a, b := fused[i], plain[i]
				for k := range a.v {
					if math.Float32bits(a.v[k]) != math.Float32bits(b.v[k]) {
						t.Fatalf("%s[%d]: fused %v, unfused %v", a.name, k, a.v[k], b.v[k])
					}
				}
			}
		})
	}
}

type namedValues struct {
	name string
	v    []float32
}

// initForFusion draws the weights, uniform with He's variance (cheaper than
// Init's normal draws on the ImageNet nets), and non-trivial BatchNorm
// affines, so that a transform applied with the wrong channel or parameter
// would show.
func initForFusion(n *Net) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, l := range n.Layers {
		if bn, ok := l.(*nn.BatchNorm); ok {
			for c := range bn.C {
				bn.Weight.Data.Data[c] = float32(0.5 + r.Float64())
				bn.Bias.Data.Data[c] = float32(0.2 * r.NormFloat64())
			}
			continue
		}
		for _, p := range l.Params() {
			w := p.Data
			scale := float32(math.Sqrt(6 * float64(w.Shape[0]) / float64(len(w.Data))))
			for i := range w.Data {
				w.Data[i] = (2*r.Float32() - 1) * scale
			}
		}
	}
}

// trainSteps runs two training steps of n and returns what they produced,
// with the number of BatchNorms whose output was never formed and of nodes
// with two readers whose gradients were never summed apart.
func trainSteps(t *testing.T, n *Net, cfg Config, batch int) (out []namedValues, norms, pairs int) {
	t.Helper()
	r := rand.New(rand.NewPCG(13, 14))
	x := tensor.New(batch, cfg.InC, cfg.H, cfg.W)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	labels := make([]int32, batch)
	for i := range labels {
		labels[i] = int32(r.IntN(cfg.Classes))
	}
	var ce nn.CrossEntropy
	for step := range 2 {
		logits := n.Forward(x, true)
		out = append(out, namedValues{fmt.Sprintf("step %d logits", step), append([]float32(nil), logits.Data...)})
		ce.Forward(logits, labels)
		n.Backward(ce.Backward())
		for _, p := range n.Params() {
			out = append(out, namedValues{fmt.Sprintf("step %d %s.grad", step, p.Name), append([]float32(nil), p.Grad.Data...)})
			for i, g := range p.Grad.Data {
				p.Data.Data[i] -= 0.05 * g
			}
		}
	}
	for _, e := range n.StateDict() {
		out = append(out, namedValues{e.Name, append([]float32(nil), e.T.Data...)})
	}
	for i := range n.Layers {
		if n.normedBy[i] >= 0 && n.outs[i] == nil {
			norms++
		}
		if n.consumers[i] == 2 && n.own[i] == nil {
			pairs++
		}
	}
	if n.unfused && (norms != 0 || pairs != 0) {
		t.Errorf("unfused network: %d BatchNorm outputs missing, %d gradient pairs unsummed", norms, pairs)
	}
	return out, norms, pairs
}

// BenchmarkTrainStepTernResNet20Fusion is BenchmarkTrainStepTernResNet20
// with the residual fusions on and off, the two nets' steps alternating so
// that both see the same machine load; it reports each one's time per step
// and their ratio.
func BenchmarkTrainStepTernResNet20Fusion(b *testing.B) {
	s, err := New("tern_resnet20", Config{InC: 3, H: 32, W: 32, Classes: 10})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 128
	r := rand.New(rand.NewPCG(1, 2))
	x := tensor.New(batch, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	y := make([]int32, batch)
	for i := range y {
		y[i] = int32(r.IntN(10))
	}
	var steps [2]func()
	for k := range steps {
		n, err := Build(s, Options{})
		if err != nil {
			b.Fatal(err)
		}
		n.unfused = k == 1
		n.Init(1)
		var ce nn.CrossEntropy
		steps[k] = func() {
			ce.Forward(n.Forward(x, true), y)
			n.Backward(ce.Backward())
		}
		steps[k]()
	}
	// Per pair of steps, their ratio: its median resists the load changes
	// of a shared machine better than the ratio of totals.
	ratios := make([]float64, b.N)
	var spent, best [2]time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var d [2]time.Duration
		for k, step := range steps {
			t0 := time.Now()
			step()
			d[k] = time.Since(t0)
			spent[k] += d[k]
			if i == 0 || d[k] < best[k] {
				best[k] = d[k]
			}
		}
		ratios[i] = d[0].Seconds() / d[1].Seconds()
	}
	b.StopTimer()
	slices.Sort(ratios)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 }
	b.ReportMetric(ms(spent[0])/float64(b.N), "ms/fused")
	b.ReportMetric(ms(spent[1])/float64(b.N), "ms/unfused")
	b.ReportMetric(ms(best[0]), "min-ms/fused")
	b.ReportMetric(ms(best[1]), "min-ms/unfused")
	b.ReportMetric(ratios[b.N/2], "median-fused/unfused")
}
