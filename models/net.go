package models

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/rng"
	"github.com/tnn-go/tnn/internal/vec"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/ternary"
)

// ErrStateDict reports a state_dict that does not fit the network.
var ErrStateDict = errors.New("state_dict does not match the model")

// Options configure how a Spec becomes a network.
type Options struct {
	TFactor float64 // ternary threshold factor (default ternary.DefaultTFactor)
	TEx     int     // residual expansion terms for ternary layers (default 1)
	// Scheme fits the terms of ternary layers (default ternary.Paper).
	Scheme ternary.Scheme
}

// Net is a trainable network: one nn.Layer per Spec node, executed in order.
type Net struct {
	Spec   *Spec
	Layers []nn.Layer
	// Quant holds the quantizer of each ternary node (nil elsewhere).
	Quant []*ternary.Quantizer

	ins       [][]*tensor.Tensor // per node, its input tensors (reused)
	outs      []*tensor.Tensor
	grads     []*tensor.Tensor // dL/d(output) per node during Backward
	own       []*tensor.Tensor // accumulation buffers for nodes with several consumers
	consumers []int
	seen      []int
	params    []*nn.Param
	sum       gradSum

	// foldInto[i] is the BatchNorm node that alone reads convolution i's
	// output (−1 for none), which Predict folds into the convolution.
	foldInto []int
	// gradStatsOf[i] is the BatchNorm node whose output convolution i alone
	// reads (through fused-ReLU pass-throughs), −1 for none: the
	// convolution's input gradient is that BatchNorm's incoming gradient,
	// whose statistics it takes as it writes it.
	gradStatsOf []int
	affine      []nn.Affine

	// The residual fusions of Forward and Backward (see fuseResidual).
	// normedBy[j] is the Add node that forms BatchNorm j's output within
	// its own (−1 for none), normOf the converse. takesPair[i] is set where
	// node i's Backward can take its output gradient as two unsummed parts,
	// which pair[i] holds the second of during Backward.
	normedBy, normOf []int
	takesPair        []bool
	pair             []*tensor.Tensor
	// unfused turns the fusions off, for tests to compare both paths.
	unfused bool
}

// pairBackwarder is a layer whose Backward can take its output gradient as
// the sum of two parts and add them in the pass it makes anyway (nn.Add
// folds the addition into its ReLU mask), sparing the executor a pass
// that sums them first.
type pairBackwarder interface {
	BackwardSum(d1, d2 *tensor.Tensor, needDx bool) []*tensor.Tensor
}

// gradSum adds two gradients on every core. It is a field of the Net, with
// its method value made once, so that a training step allocates nothing.
type gradSum struct {
	y, a, b []float32
	run     func(lo, hi, worker int)
}

// gradSumBlock is the unit of work of gradSum: whole cache lines, and few
// enough chunks that the pool's hand-off stays negligible.
const gradSumBlock = 1 << 14

func (s *gradSum) add(y, a, b []float32) {
	s.y, s.a, s.b = y, a, b
	parallel.For((len(y)+gradSumBlock-1)/gradSumBlock, s.run)
	s.y, s.a, s.b = nil, nil, nil
}

func (s *gradSum) chunk(lo, hi, _ int) {
	lo, hi = lo*gradSumBlock, min(hi*gradSumBlock, len(s.y))
	vec.Add(s.y[lo:hi], s.a[lo:hi], s.b[lo:hi], false)
}

// Build instantiates a Spec.
func Build(s *Spec, o Options) (*Net, error) {
	if _, err := s.Shapes(); err != nil {
		return nil, err
	}
	if o.TFactor == 0 {
		o.TFactor = ternary.DefaultTFactor
	}
	if o.TEx == 0 {
		o.TEx = max(s.TEx, 1)
	}
	if o.Scheme == "" {
		o.Scheme = ternary.Paper
	}
	n := &Net{Spec: s}
	k := len(s.Nodes)
	n.Layers = make([]nn.Layer, k)
	n.Quant = make([]*ternary.Quantizer, k)
	n.ins = make([][]*tensor.Tensor, k)
	n.outs = make([]*tensor.Tensor, k)
	n.grads = make([]*tensor.Tensor, k)
	n.own = make([]*tensor.Tensor, k)
	n.consumers = make([]int, k)
	n.seen = make([]int, k)
	n.sum.run = n.sum.chunk
	for i, nd := range s.Nodes {
		var q *ternary.Quantizer
		if nd.Ternary {
			var err error
			if q, err = ternary.NewScheme(o.Scheme, o.TFactor, o.TEx); err != nil {
				return nil, err
			}
			n.Quant[i] = q
		}
		switch nd.Op {
		case OpConv2d:
			c := nn.NewConv2d(nd.Name, nd.InC, nd.OutC, nd.Kernel, nd.Stride, nd.Padding, nd.Bias)
			if q != nil {
				c.Quant = q
			}
			n.Layers[i] = c
		case OpLinear:
			l := nn.NewLinear(nd.Name, nd.InC, nd.OutC, nd.Bias)
			if q != nil {
				l.Quant = q
			}
			n.Layers[i] = l
		case OpBatchNorm2d, OpBatchNorm1d:
			n.Layers[i] = nn.NewBatchNorm(nd.Name, nd.OutC)
		case OpReLU:
			n.Layers[i] = &nn.ReLU{}
		case OpMaxPool2d:
			n.Layers[i] = &nn.MaxPool2d{K: nd.Kernel, Stride: nd.Stride, Pad: nd.Padding}
		case OpAvgPool2d:
			n.Layers[i] = &nn.AvgPool2d{K: nd.Kernel, Stride: nd.Stride, Pad: nd.Padding}
		case OpGlobalAvgPool:
			n.Layers[i] = &nn.GlobalAvgPool{}
		case OpShortcutA:
			n.Layers[i] = &nn.ShortcutA{InC: nd.InC, OutC: nd.OutC, Stride: nd.Stride}
		case OpAdd:
			n.Layers[i] = &nn.Add{}
		case OpFlatten:
			n.Layers[i] = &nn.Flatten{}
		}
		n.ins[i] = make([]*tensor.Tensor, len(nd.Inputs))
		for _, j := range nd.Inputs {
			if j != Input {
				n.consumers[j]++
			}
		}
		n.params = append(n.params, n.Layers[i].Params()...)
	}
	n.fuseReLU()
	n.findFolds()
	n.findGradStats()
	n.fuseResidual()
	return n, nil
}

// fuseResidual finds the fusions that save two passes over an activation
// per residual block in a training step. Forward: a BatchNorm without ReLU
// that only the residual Add reads (the block's last normalisation) is
// applied by the Add within its own pass (nn.Add.ForwardNormalized), so its
// output is neither written, read nor held. Backward: where a node has two
// readers (a block's output feeds the next block's convolution and its
// Add or shortcut) and its layer, or the one behind a fused-away ReLU's
// Identity, is a pairBackwarder, the two gradients go to that layer
// unsummed. Both give the results of the unfused step bit for bit.
func (n *Net) fuseResidual() {
	k := len(n.Spec.Nodes)
	n.normedBy, n.normOf = make([]int, k), make([]int, k)
	n.takesPair, n.pair = make([]bool, k), make([]*tensor.Tensor, k)
	for i := range n.normedBy {
		n.normedBy[i], n.normOf[i] = -1, -1
	}
	for i, nd := range n.Spec.Nodes {
		switch n.Layers[i].(type) {
		case *nn.Add:
			// Only in[0]: the fused pass adds BN(x) + in[1] in that order,
			// as the Add would (which decides the NaN kept when both are).
			j := nd.Inputs[0]
			if len(nd.Inputs) != 2 || j == Input || n.consumers[j] != 1 {
				break
			}
			if bn, ok := n.Layers[j].(*nn.BatchNorm); ok && !bn.ReLU {
				n.normedBy[j], n.normOf[i] = i, j
			}
		case *nn.Identity:
			j := nd.Inputs[0]
			n.takesPair[i] = j != Input && n.consumers[j] == 1 && n.takesPair[j]
		}
		if _, ok := n.Layers[i].(pairBackwarder); ok {
			n.takesPair[i] = true
		}
	}
}

// input is the tensor that node input src (Input or a node) denotes.
func (n *Net) input(x *tensor.Tensor, src int) *tensor.Tensor {
	if src == Input {
		return x
	}
	return n.outs[src]
}

// findGradStats sets gradStatsOf.
func (n *Net) findGradStats() {
	n.gradStatsOf = make([]int, len(n.Spec.Nodes))
	for i, nd := range n.Spec.Nodes {
		n.gradStatsOf[i] = -1
		if _, ok := n.Layers[i].(*nn.Conv2d); !ok || len(nd.Inputs) != 1 {
			continue
		}
		src := nd.Inputs[0]
		for src != Input && n.consumers[src] == 1 {
			if _, ok := n.Layers[src].(*nn.Identity); !ok {
				break
			}
			src = n.Spec.Nodes[src].Inputs[0]
		}
		if src == Input || n.consumers[src] != 1 {
			continue
		}
		if _, ok := n.Layers[src].(*nn.BatchNorm); ok {
			n.gradStatsOf[i] = src
		}
	}
}

// findFolds pairs every convolution with the BatchNorm that is the only
// reader of its output.
func (n *Net) findFolds() {
	k := len(n.Spec.Nodes)
	n.foldInto = make([]int, k)
	n.affine = make([]nn.Affine, k)
	for i := range n.foldInto {
		n.foldInto[i] = -1
	}
	for j, nd := range n.Spec.Nodes {
		if len(nd.Inputs) != 1 || nd.Inputs[0] == Input {
			continue
		}
		i := nd.Inputs[0]
		_, conv := n.Layers[i].(*nn.Conv2d)
		_, bn := n.Layers[j].(*nn.BatchNorm)
		if conv && bn && n.consumers[i] == 1 && j > i {
			n.foldInto[i] = j
		}
	}
}

// fuseReLU folds each ReLU into the BatchNorm or residual Add that alone
// feeds it; the ReLU node stays in the Spec and becomes a pass-through.
func (n *Net) fuseReLU() {
	for i, nd := range n.Spec.Nodes {
		if nd.Op != OpReLU || len(nd.Inputs) != 1 {
			continue
		}
		src := nd.Inputs[0]
		if src == Input || n.consumers[src] != 1 {
			continue
		}
		switch l := n.Layers[src].(type) {
		case *nn.BatchNorm:
			if l.ReLU {
				continue
			}
			l.ReLU = true
		case *nn.Add:
			if l.ReLU {
				continue
			}
			l.ReLU = true
		default:
			continue
		}
		n.Layers[i] = &nn.Identity{}
	}
}

// Init draws the reference's initial weights: conv ~ N(0, sqrt(2/(kh·kw·out))),
// Linear Kaiming normal (fan_in), biases 0, BatchNorm weight 1 and bias 0.
func (n *Net) Init(seed uint64) {
	r := rng.New(seed)
	fill := func(t *tensor.Tensor, std float64) {
		for i := range t.Data {
			t.Data[i] = float32(r.Normal() * std)
		}
	}
	for _, l := range n.Layers {
		switch l := l.(type) {
		case *nn.Conv2d:
			fill(l.Weight.Data, math.Sqrt(2/float64(l.KH*l.KW*l.OutC)))
			if l.Bias != nil {
				l.Bias.Data.Zero()
			}
		case *nn.Linear:
			fill(l.Weight.Data, math.Sqrt(2/float64(l.In)))
			if l.Bias != nil {
				l.Bias.Data.Zero()
			}
		case *nn.BatchNorm:
			l.Weight.Data.Fill(1)
			l.Bias.Data.Zero()
			l.RunningMean.Zero()
			l.RunningVar.Fill(1)
			l.NumBatchesTracked.Zero()
		}
	}
}

// Forward runs the network on x (N×C×H×W) and returns the logits (N×classes),
// owned by the network until the next Forward. A residual block's last
// BatchNorm runs within its Add (see fuseResidual) and has no output.
func (n *Net) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	fuse := !n.unfused
	for i, nd := range n.Spec.Nodes {
		if fuse && n.normedBy[i] >= 0 {
			n.outs[i] = nil
			continue
		}
		in := n.ins[i]
		for j, src := range nd.Inputs {
			in[j] = n.input(x, src)
		}
		if j := n.foldInto[i]; fuse && train && j >= 0 {
			// The BatchNorm's statistics are taken as the convolution
			// writes each plane, instead of in a pass of their own.
			bn := n.Layers[j].(*nn.BatchNorm)
			n.Layers[i].(*nn.Conv2d).StatsInto(bn.PlaneStats(in[0].Shape[0]))
		}
		if j := n.normOf[i]; fuse && j >= 0 {
			bnIn := n.input(x, n.Spec.Nodes[j].Inputs[0])
			n.outs[i] = n.Layers[i].(*nn.Add).ForwardNormalized(n.Layers[j].(*nn.BatchNorm), bnIn, in, train)
			continue
		}
		n.outs[i] = n.Layers[i].Forward(in, train)
	}
	return n.outs[len(n.outs)-1]
}

// Predict is Forward(x, false) for inference: each eval-mode BatchNorm
// (with its fused ReLU) that alone follows a convolution is folded into
// it, saving a pass over the activations per normalisation. The logits
// differ from Forward's by float rounding only; no Backward may follow.
func (n *Net) Predict(x *tensor.Tensor) *tensor.Tensor {
	for i, nd := range n.Spec.Nodes {
		in := n.ins[i]
		for j, src := range nd.Inputs {
			if src == Input {
				in[j] = x
			} else {
				in[j] = n.outs[src]
			}
		}
		if bn := n.foldInto[i]; bn >= 0 {
			a := &n.affine[i]
			n.Layers[bn].(*nn.BatchNorm).EvalAffine(a)
			n.outs[i] = n.Layers[i].(*nn.Conv2d).ForwardAffine(in, a)
			continue
		}
		if src := nd.Inputs; len(src) == 1 && src[0] != Input && n.foldInto[src[0]] == i {
			n.outs[i] = n.outs[src[0]] // already normalised by the convolution
			continue
		}
		n.outs[i] = n.Layers[i].Forward(in, false)
	}
	return n.outs[len(n.outs)-1]
}

// Backward propagates dL/dlogits through the network, setting every
// parameter's Grad. Gradients of activations read by several nodes (the
// identity path of a residual block) are summed in node order: first to
// arrive plus second, then the rest, by the executor or, for two, by the
// node's layer (see fuseResidual).
func (n *Net) Backward(dlogits *tensor.Tensor) {
	last := len(n.Layers) - 1
	clear(n.grads)
	clear(n.seen)
	clear(n.pair)
	n.grads[last] = dlogits
	for i := last; i >= 0; i-- {
		g := n.grads[i]
		if g == nil {
			continue
		}
		nd := n.Spec.Nodes[i]
		needDx := false
		for _, src := range nd.Inputs {
			needDx = needDx || src != Input
		}
		var dxs []*tensor.Tensor
		if j := n.normOf[i]; j >= 0 && !n.unfused {
			// The Add's input gradient is the fused BatchNorm's incoming one.
			n.Layers[i].(*nn.Add).GradStatsInto(n.Layers[j].(*nn.BatchNorm).GradPlaneStats())
		}
		if g2 := n.pair[i]; g2 == nil {
			if j := n.gradStatsOf[i]; j >= 0 && needDx && !n.unfused {
				n.Layers[i].(*nn.Conv2d).GradStatsInto(n.Layers[j].(*nn.BatchNorm).GradPlaneStats())
			}
			dxs = n.Layers[i].Backward(g, needDx)
		} else if _, ok := n.Layers[i].(*nn.Identity); ok {
			// Both parts go on, still unsummed, to the layer before, of
			// which this is the only reader.
			src := nd.Inputs[0]
			n.grads[src], n.pair[src] = g, g2
			n.seen[src]++
			continue
		} else {
			dxs = n.Layers[i].(pairBackwarder).BackwardSum(g, g2, needDx)
		}
		for j, src := range nd.Inputs {
			if src == Input {
				continue
			}
			d := dxs[j]
			n.seen[src]++
			// The first gradient is only referenced: layers never write to
			// the gradients they return once their Backward is over, so it
			// holds until the second arrives and both go into the node's
			// own buffer in one pass, or into its layer's pass.
			switch n.seen[src] {
			case 1:
				n.grads[src] = d
			case 2:
				if !n.unfused && n.takesPair[src] && n.consumers[src] == 2 {
					n.pair[src] = d
					continue
				}
				if n.own[src] == nil {
					n.own[src] = tensor.New(d.Shape...)
				}
				n.own[src].Reshape(d.Shape...)
				n.sum.add(n.own[src].Data, n.grads[src].Data, d.Data)
				n.grads[src] = n.own[src]
			default:
				acc := n.grads[src].Data
				n.sum.add(acc, acc, d.Data)
			}
		}
	}
}

// Params lists the trainable parameters in state_dict order.
func (n *Net) Params() []*nn.Param { return n.params }

// StateDict lists parameters and buffers under PyTorch's state_dict names
// and order. The tensors are the network's own (not copies).
func (n *Net) StateDict() []tensor.Named {
	var sd []tensor.Named
	for _, l := range n.Layers {
		for _, p := range l.Params() {
			sd = append(sd, tensor.Named{Name: p.Name, T: p.Data})
		}
		sd = append(sd, l.Buffers()...)
	}
	return sd
}

// LoadStateDict copies sd into the network. Every tensor of the network must
// be present with its shape; unknown names are errors too, so that loading a
// checkpoint of another architecture fails with the full list of differences.
// Scalars such as num_batches_tracked may come as shape [] or [1].
func (n *Net) LoadStateDict(sd []tensor.Named) error {
	have := map[string]*tensor.Tensor{}
	for _, e := range sd {
		have[e.Name] = e.T
	}
	var problems []string
	used := map[string]bool{}
	for _, e := range n.StateDict() {
		src, ok := have[e.Name]
		if !ok {
			problems = append(problems, "missing "+e.Name)
			continue
		}
		used[e.Name] = true
		if len(src.Data) != len(e.T.Data) || (len(e.T.Shape) > 0 && !tensor.SameShape(src.Shape, e.T.Shape)) {
			problems = append(problems, fmt.Sprintf("%s has shape %v, model wants %v", e.Name, src.Shape, e.T.Shape))
		}
	}
	var unexpected []string
	for name := range have {
		if !used[name] {
			unexpected = append(unexpected, "unexpected "+name)
		}
	}
	sort.Strings(unexpected)
	problems = append(problems, unexpected...)
	if len(problems) > 0 {
		const show = 12
		more := ""
		if len(problems) > show {
			more = fmt.Sprintf(" (and %d more)", len(problems)-show)
			problems = problems[:show]
		}
		return fmt.Errorf("%w %s: %s%s", ErrStateDict, n.Spec.Arch, strings.Join(problems, "; "), more)
	}
	for _, e := range n.StateDict() {
		copy(e.T.Data, have[e.Name].Data)
	}
	return nil
}

// TernaryLayers lists each ternary node's name, latent weight and quantizer.
func (n *Net) TernaryLayers() []TernaryLayer {
	var out []TernaryLayer
	for i, q := range n.Quant {
		if q == nil {
			continue
		}
		var w *nn.Param
		switch l := n.Layers[i].(type) {
		case *nn.Conv2d:
			w = l.Weight
		case *nn.Linear:
			w = l.Weight
		}
		out = append(out, TernaryLayer{Name: n.Spec.Nodes[i].Name, Weight: w, Quant: q})
	}
	return out
}

// TernaryLayer describes one ternarized weight.
type TernaryLayer struct {
	Name   string
	Weight *nn.Param
	Quant  *ternary.Quantizer
}
