package xla

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/tnn-go/tnn/internal/rng"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/optim"
)

// The in-graph update against package optim (itself checked against
// torch.optim), three steps with a changing learning rate and fresh
// gradients each step.
func TestOptimizerMatchesOptim(t *testing.T) {
	for _, c := range []struct {
		kind string
		h    optim.Hyper
	}{
		{"SGD", optim.Hyper{Momentum: 0.9, Nesterov: true, WeightDecay: 3e-4}},
		{"SGD", optim.Hyper{Momentum: 0.9, Dampening: 0.25, WeightDecay: 1e-2}},
		{"SGD", optim.Hyper{}},
		{"Adam", optim.Hyper{WeightDecay: 1e-3}},
		{"Adam", optim.Hyper{Beta1: 0.5, Beta2: 0.9, Eps: 1e-3}},
	} {
		t.Run(fmt.Sprintf("%s_%+v", c.kind, c.h), func(t *testing.T) {
			r := rng.New(3)
			shapes := [][]int{{4, 3}, {5}, {1}}
			var params []*nn.Param
			for i, s := range shapes {
				p := nn.NewParam(fmt.Sprintf("p%d", i), s...)
				for j := range p.Data.Data {
					p.Data.Data[j] = float32(r.Normal())
				}
				params = append(params, p)
			}
			h := c.h
			h.LR = 0.1
			host, err := optim.New(c.kind, params, h)
			if err != nil {
				t.Fatal(err)
			}
			_, info := host.State()
			o, err := NewOptimizer(info.Kind, info.Hyper)
			if err != nil {
				t.Fatal(err)
			}
			b, err := openBackend("go")
			if err != nil {
				t.Fatal(err)
			}
			defer b.Finalize()
			nP, nB := len(params), len(o.Buffers())
			e, err := graph.NewExec(b, func(in []*graph.Node) []*graph.Node {
				w, g := in[:nP], in[nP:2*nP]
				bufs := make([][]*graph.Node, nB)
				for k := range bufs {
					bufs[k] = in[2*nP+k*nP : 2*nP+(k+1)*nP]
				}
				nw, nb := o.Update(w, g, bufs, in[2*nP+nB*nP:])
				for _, x := range nb {
					nw = append(nw, x...)
				}
				return nw
			})
			if err != nil {
				t.Fatal(err)
			}
			// Device copies: weights and zero buffers.
			dev := make([][]float32, nP*(1+nB))
			for i, p := range params {
				dev[i] = slices.Clone(p.Data.Data)
				for k := 0; k < nB; k++ {
					dev[nP+k*nP+i] = make([]float32, len(p.Data.Data))
				}
			}
			for step, lr := range []float64{0.1, 0.05, 0.01} {
				var args []any
				for i, p := range params {
					for j := range p.Grad.Data {
						p.Grad.Data[j] = float32(r.Normal())
					}
					args = append(args, tensors.FromFlatDataAndDimensions(dev[i], shapes[i]...))
				}
				for _, p := range params {
					args = append(args, tensors.FromFlatDataAndDimensions(slices.Clone(p.Grad.Data), p.Grad.Shape...))
				}
				for k := 0; k < nB; k++ {
					for i := range params {
						args = append(args, tensors.FromFlatDataAndDimensions(dev[nP+k*nP+i], shapes[i]...))
					}
				}
				for _, v := range o.Scalars(lr, int64(step)) {
					args = append(args, tensors.FromScalar(v))
				}
				outs, err := e.Exec(args...)
				if err != nil {
					t.Fatal(err)
				}
				for i, out := range outs {
					dev[i] = tensors.MustCopyFlatData[float32](out)
				}
				if err := host.SetLR(lr); err != nil {
					t.Fatal(err)
				}
				if err := host.Step(); err != nil {
					t.Fatal(err)
				}
			}
			named, _ := host.State()
			for i, p := range params {
				checkClose(t, p.Name, dev[i], p.Data.Data)
			}
			if len(named) != nP*nB {
				t.Fatalf("optim has %d buffers, the graph %d", len(named), nP*nB)
			}
			// optim lists buffers parameter-major, the graph buffer-major.
			for i := range params {
				for k := 0; k < nB; k++ {
					nt := named[i*nB+k]
					checkClose(t, nt.Name, dev[nP+k*nP+i], nt.T.Data)
				}
			}
		})
	}
}

// checkClose allows the last-bit differences of unfused multiply-adds.
func checkClose(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > 2e-6*math.Max(1, math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %v, optim %v", name, i, got[i], want[i])
		}
	}
}
