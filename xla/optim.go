package xla

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"

	"github.com/tnn-go/tnn/optim"
)

// Optimizer is package optim's SGD or Adam as graph operations: the same
// per-element formulas in the same order, with the per-step scalars (learning
// rate, bias corrections) computed on the host in float64 exactly as optim
// computes them and fed to the graph, so the compiled step does not change
// from step to step. The one difference is rounding: optim fuses a·b+c into
// one FMA as torch's CPU kernels do, a graph rounds a·b first unless the
// compiler fuses it, so results may differ in the last bit.
type Optimizer struct {
	Kind  string // "SGD" or "Adam"
	Hyper optim.Hyper
}

// NewOptimizer checks kind and hyper-parameters the way optim.New does.
func NewOptimizer(kind string, h optim.Hyper) (Optimizer, error) {
	for _, k := range optim.Kinds {
		if k == kind {
			if kind == "Adam" && h.Beta1 == 0 && h.Beta2 == 0 && h.Eps == 0 {
				h.Beta1, h.Beta2, h.Eps = optim.DefaultBeta1, optim.DefaultBeta2, optim.DefaultEps
			}
			return Optimizer{Kind: kind, Hyper: h}, nil
		}
	}
	return Optimizer{}, fmt.Errorf("%w: optimizer %q", ErrUnsupported, kind)
}

// Buffers names the per-parameter state, as optim's State names it
// ("<param>.<buffer>"). SGD without momentum keeps none.
func (o Optimizer) Buffers() []string {
	switch {
	case o.Kind == "Adam":
		return []string{"exp_avg", "exp_avg_sq"}
	case o.Hyper.Momentum != 0:
		return []string{"momentum_buffer"}
	}
	return nil
}

// numScalars is the length of Scalars' result.
const numScalars = 2

// Scalars returns the per-step inputs of Update for a step taken after
// `done` steps with learning rate lr: for SGD −lr and whether the momentum
// buffer is fresh; for Adam −lr/(1−β1^t) and √(1−β2^t).
func (o Optimizer) Scalars(lr float64, done int64) [numScalars]float32 {
	if o.Kind == "Adam" {
		t := float64(done + 1)
		bc1 := 1 - math.Pow(o.Hyper.Beta1, t)
		bc2 := 1 - math.Pow(o.Hyper.Beta2, t)
		return [numScalars]float32{float32(-(lr / bc1)), float32(math.Sqrt(bc2))}
	}
	first := float32(0)
	if done == 0 {
		first = 1
	}
	return [numScalars]float32{float32(-lr), first}
}

// Update returns the new parameters and buffers (bufs[b][p]: buffer b of
// parameter p, in Buffers order) from the gradients and Scalars' values.
func (o Optimizer) Update(params, grads []*graph.Node, bufs [][]*graph.Node, scalars []*graph.Node) (newParams []*graph.Node, newBufs [][]*graph.Node) {
	h := o.Hyper
	f32 := func(g *graph.Graph, v float64) *graph.Node { return graph.Scalar(g, dtypes.Float32, float32(v)) }
	newParams = make([]*graph.Node, len(params))
	newBufs = make([][]*graph.Node, len(bufs))
	for b := range bufs {
		newBufs[b] = make([]*graph.Node, len(params))
	}
	for i, w := range params {
		g := w.Graph()
		d := grads[i]
		if h.WeightDecay != 0 {
			d = graph.Add(graph.Mul(w, f32(g, h.WeightDecay)), d) // d_p.add(param, alpha=wd)
		}
		if o.Kind == "Adam" {
			negStep, bc2s := scalars[0], scalars[1]
			// exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
			m := graph.Add(graph.Mul(d, f32(g, float64(float32(1-h.Beta1)))), graph.Mul(bufs[0][i], f32(g, h.Beta1)))
			// exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
			v := graph.Add(graph.Mul(graph.Mul(f32(g, float64(float32(1-h.Beta2))), d), d), graph.Mul(bufs[1][i], f32(g, h.Beta2)))
			den := graph.Add(graph.Div(graph.Sqrt(v), bc2s), f32(g, h.Eps))
			newParams[i] = graph.Add(w, graph.Div(graph.Mul(negStep, m), den))
			newBufs[0][i], newBufs[1][i] = m, v
			continue
		}
		negLR, first := scalars[0], scalars[1]
		if h.Momentum != 0 {
			mu := f32(g, h.Momentum)
			// First step: buf = d (torch clones d_p). Later: buf·mu + d·(1−dampening).
			// Both in one formula: with first = 1, d·1 + buf·0 is d exactly.
			notFirst := graph.OneMinus(first)
			damp := graph.Add(graph.Mul(first, f32(g, 1)), graph.Mul(notFirst, f32(g, float64(float32(1-h.Dampening)))))
			buf := graph.Add(graph.Mul(d, damp), graph.Mul(bufs[0][i], graph.Mul(mu, notFirst)))
			newBufs[0][i] = buf
			if h.Nesterov {
				d = graph.Add(graph.Mul(buf, mu), d) // d_p.add(buf, alpha=mu)
			} else {
				d = buf
			}
		}
		newParams[i] = graph.Add(graph.Mul(d, negLR), w) // param.add_(d_p, alpha=-lr)
	}
	return newParams, newBufs
}
