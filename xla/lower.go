package xla

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/ternary"
)

// BatchNorm constants of PyTorch, as the CPU engine (nn.BatchNorm) uses them.
const (
	bnEps      = 1e-5
	bnMomentum = 0.1
)

// Tensor names one state tensor of the lowered model with its shape.
type Tensor struct {
	Name  string
	Shape []int
}

// Model is a models.Spec lowered to GoMLX graph operations. It keeps no
// weights: Forward takes them as graph nodes, in the order of Params and
// Stats, which is the CPU engine's state_dict order, so a checkpoint maps
// onto them by name.
type Model struct {
	Spec *models.Spec
	// Params are the trainable tensors in models.Net.Params() order.
	Params []Tensor
	// Stats are the BatchNorm running_mean and running_var buffers, in node
	// order (num_batches_tracked is a step count and stays on the host).
	Stats []Tensor

	nodes []nodeRef
}

// nodeRef locates a node's tensors in Params and Stats (-1: none) and holds
// its ternary factors t·i (nil: full precision). The paper scheme sums one
// term per factor, each passing the gradient unchanged, so the
// straight-through factor is their number.
type nodeRef struct {
	w, b, mean, vr int
	factors        []float32
}

// Lower checks a Spec and lays out its tensors. Options mean what they mean
// for models.Build; only the paper's REL scheme can be lowered (the fitted
// schemes sort and iterate on the host).
func Lower(s *models.Spec, o models.Options) (*Model, error) {
	if o.TFactor == 0 {
		o.TFactor = ternary.DefaultTFactor
	}
	if o.TEx == 0 {
		o.TEx = max(s.TEx, 1)
	}
	if o.Scheme != "" && o.Scheme != ternary.Paper {
		return nil, fmt.Errorf("%w: --rel_scheme %s runs on the CPU engine only (XLA devices lower the paper's thresholds)", ErrUnsupported, o.Scheme)
	}
	q, err := ternary.New(o.TFactor, o.TEx)
	if err != nil {
		return nil, err
	}
	m, err := layout(s)
	if err != nil {
		return nil, err
	}
	for i, n := range s.Nodes {
		if n.Ternary {
			m.nodes[i].factors = q.Factors
		}
	}
	return m, nil
}

// layout lists a Spec's tensors in state_dict order, all full precision.
func layout(s *models.Spec) (*Model, error) {
	if _, err := s.Shapes(); err != nil {
		return nil, err
	}
	m := &Model{Spec: s, nodes: make([]nodeRef, len(s.Nodes))}
	param := func(name string, shape ...int) int {
		m.Params = append(m.Params, Tensor{Name: name, Shape: shape})
		return len(m.Params) - 1
	}
	stat := func(name string, c int) int {
		m.Stats = append(m.Stats, Tensor{Name: name, Shape: []int{c}})
		return len(m.Stats) - 1
	}
	for i, n := range s.Nodes {
		r := nodeRef{w: -1, b: -1, mean: -1, vr: -1}
		switch n.Op {
		case models.OpConv2d:
			r.w = param(n.Name+".weight", n.OutC, n.InC, n.Kernel, n.Kernel)
		case models.OpLinear:
			r.w = param(n.Name+".weight", n.OutC, n.InC)
		case models.OpBatchNorm1d, models.OpBatchNorm2d:
			r.w = param(n.Name+".weight", n.OutC)
			r.b = param(n.Name+".bias", n.OutC)
			r.mean = stat(n.Name+".running_mean", n.OutC)
			r.vr = stat(n.Name+".running_var", n.OutC)
		}
		if (n.Op == models.OpConv2d || n.Op == models.OpLinear) && n.Bias {
			r.b = param(n.Name+".bias", n.OutC)
		}
		m.nodes[i] = r
	}
	return m, nil
}

// nchw is PyTorch's layout for convolution inputs, OIHW kernels and outputs.
var nchw = backends.ConvolveAxesConfig{
	InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
	KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
	OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
}

// Forward adds one forward pass to x's graph and returns the logits. In
// training (batch statistics) it also returns the updated BatchNorm running
// statistics, in Stats order; in eval mode newStats is stats.
func (m *Model) Forward(params, stats []*graph.Node, x *graph.Node, train bool) (logits *graph.Node, newStats []*graph.Node) {
	newStats = append([]*graph.Node(nil), stats...)
	outs := make([]*graph.Node, len(m.Spec.Nodes))
	for i, n := range m.Spec.Nodes {
		in := make([]*graph.Node, len(n.Inputs))
		for j, src := range n.Inputs {
			if src == models.Input {
				in[j] = x
			} else {
				in[j] = outs[src]
			}
		}
		r := m.nodes[i]
		var y *graph.Node
		switch n.Op {
		case models.OpConv2d:
			w := weight(params[r.w], r.factors)
			y = graph.Convolve(in[0], w).AxesConfig(nchw).
				StridePerAxis(n.Stride, n.Stride).
				PaddingPerDim([][2]int{{n.Padding, n.Padding}, {n.Padding, n.Padding}}).Done()
			if r.b >= 0 {
				y = graph.Add(y, graph.Reshape(params[r.b], 1, n.OutC, 1, 1))
			}
		case models.OpLinear:
			w := weight(params[r.w], r.factors)
			y = graph.DotGeneral(in[0], []int{1}, nil, w, []int{1}, nil) // x·Wᵀ
			if r.b >= 0 {
				y = graph.Add(y, graph.Reshape(params[r.b], 1, n.OutC))
			}
		case models.OpBatchNorm1d, models.OpBatchNorm2d:
			var nm, nv *graph.Node
			y, nm, nv = batchNorm(in[0], params[r.w], params[r.b], stats[r.mean], stats[r.vr], train)
			newStats[r.mean], newStats[r.vr] = nm, nv
		case models.OpReLU:
			// Where rather than Max: the gradient at 0 is 0, as in PyTorch.
			y = graph.Where(graph.GreaterThan(in[0], graph.ScalarZero(x.Graph(), dtypes.Float32)), in[0], graph.ZerosLike(in[0]))
		case models.OpMaxPool2d, models.OpAvgPool2d:
			k, s, p := n.Kernel, n.Stride, n.Padding
			op := backends.ReduceOpMax
			if n.Op == models.OpAvgPool2d {
				op = backends.ReduceOpSum
			}
			// Padded positions take no part in a max (XLA pads with −inf) and
			// add 0 to a sum, which is count_include_pad=True after the division.
			y = graph.BackendReduceWindow(in[0], op, []int{1, 1, k, k}, []int{1, 1, s, s}, nil, nil,
				[][2]int{{0, 0}, {0, 0}, {p, p}, {p, p}})
			if n.Op == models.OpAvgPool2d {
				y = graph.MulScalar(y, 1/float64(float32(k*k)))
			}
		case models.OpGlobalAvgPool:
			hw := in[0].Shape().Dimensions[2] * in[0].Shape().Dimensions[3]
			y = divBy(graph.ReduceSum(in[0], 2, 3), hw)
		case models.OpShortcutA:
			// DownsampleA: every Stride-th pixel, then zero channels up to OutC.
			y = graph.Slice(in[0], graph.AxisRange(), graph.AxisRange(),
				graph.AxisRange().Stride(n.Stride), graph.AxisRange().Stride(n.Stride))
			if n.OutC > n.InC {
				d := y.Shape().Clone()
				d.Dimensions[1] = n.OutC - n.InC
				y = graph.Concatenate([]*graph.Node{y, graph.Zeros(x.Graph(), d)}, 1)
			}
		case models.OpAdd:
			y = in[0]
			for _, t := range in[1:] {
				y = graph.Add(y, t)
			}
		case models.OpFlatten:
			y = graph.Reshape(in[0], in[0].Shape().Dimensions[0], -1)
		default:
			// Lower has checked the Spec, so only a new Op reaches here.
			panic(fmt.Errorf("%w: node %s has op %q", ErrUnsupported, n.Name, n.Op))
		}
		outs[i] = y
	}
	return outs[len(outs)-1], newStats
}

// weight returns the weight the layer multiplies with: w itself, or its
// ternarization with the straight-through gradient.
func weight(w *graph.Node, factors []float32) *graph.Node {
	if factors == nil {
		return w
	}
	return Ternarize(w, factors, float32(len(factors)))
}

// Ternarize is ternary.Quantizer's paper scheme as graph operations: with
// a = |W| and m = max a, term i keeps a ≥ th_i = t_i·m at α_i = mean(a over
// a ≥ th_i), and the forward value is sign(W)·Σ_i α_i·[a ≥ th_i]. The
// gradient with respect to W is steK·g where |W| < 1 and 0 elsewhere; th and
// α are constants for it, as in the CPU engine and the reference.
func Ternarize(w *graph.Node, factors []float32, steK float32) *graph.Node {
	g := w.Graph()
	a := graph.Abs(w)
	amax := graph.ReduceAllMax(a)
	a64 := graph.ConvertDType(a, dtypes.Float64)
	zero := graph.ScalarZero(g, dtypes.Float32)
	var mag *graph.Node
	for _, t := range factors {
		// th is the float32 product t·max|W|, compared exactly as the CPU does.
		th := graph.Mul(graph.Scalar(g, dtypes.Float32, t), amax)
		keep := graph.GreaterOrEqual(a, th)
		// α is summed in float64, as the CPU engine does: a float32 sum over
		// the millions of weights of an ImageNet layer drifts by 1e-4. The
		// largest magnitude always passes (t < 1), so the count is ≥ 1.
		cnt := graph.ReduceAllSum(graph.ConvertDType(keep, dtypes.Float64))
		sum := graph.ReduceAllSum(graph.Where(keep, a64, graph.ZerosLike(a64)))
		alpha := graph.ConvertDType(graph.Div(sum, cnt), dtypes.Float32)
		term := graph.Where(keep, alpha, zero)
		if mag == nil {
			mag = term
		} else {
			mag = graph.Add(mag, term)
		}
	}
	wt := graph.Mul(graph.Sign(w), mag)
	k := float64(steK)
	ste := graph.IdentityWithCustomGradient(w, func(x, v *graph.Node) *graph.Node {
		inside := graph.LessThan(graph.Abs(x), graph.ScalarOne(x.Graph(), dtypes.Float32))
		return graph.Where(inside, graph.MulScalar(v, k), graph.ZerosLike(v))
	})
	// Value wt; gradient through ste only.
	return graph.Add(graph.StopGradient(wt), graph.Sub(ste, graph.StopGradient(ste)))
}

// batchNorm is PyTorch's BatchNorm1d/2d. In training it normalises with the
// biased batch variance and moves the running statistics by momentum 0.1
// toward the batch mean and the unbiased variance; in eval it uses them.
func batchNorm(x, gamma, beta, rm, rv *graph.Node, train bool) (y, nm, nv *graph.Node) {
	dims := x.Shape().Dimensions
	c := dims[1]
	axes := []int{0}
	bshape := []int{1, c}
	if len(dims) == 4 {
		axes = []int{0, 2, 3}
		bshape = []int{1, c, 1, 1}
	}
	cnt := dims[0]
	for _, d := range dims[2:] {
		cnt *= d
	}
	col := func(v *graph.Node) *graph.Node { return graph.Reshape(v, bshape...) }
	mean, invStd := rm, invSqrt(graph.AddScalar(rv, bnEps))
	nm, nv = rm, rv
	if train {
		mean = divBy(graph.ReduceSum(x, axes...), cnt)
		d := graph.Sub(x, col(mean))
		ss := graph.ReduceSum(graph.Mul(d, d), axes...)
		invStd = invSqrt(graph.AddScalar(divBy(ss, cnt), bnEps))
		unbiased := divBy(ss, max(cnt-1, 1)) // one value: its variance, as the CPU engine
		// Statistics are state, not part of the loss.
		mom := float64(float32(bnMomentum))
		keep := float64(float32(1) - float32(bnMomentum))
		nm = graph.Add(graph.MulScalar(rm, keep), graph.MulScalar(graph.StopGradient(mean), mom))
		nv = graph.Add(graph.MulScalar(rv, keep), graph.MulScalar(graph.StopGradient(unbiased), mom))
		y = graph.Add(graph.Mul(graph.Mul(d, col(invStd)), col(gamma)), col(beta))
		return y, nm, nv
	}
	y = graph.Add(graph.Mul(graph.Mul(graph.Sub(x, col(mean)), col(invStd)), col(gamma)), col(beta))
	return y, nm, nv
}

// divBy divides by a count, as the CPU engine does (graph.DivScalar would
// multiply by a rounded reciprocal).
func divBy(x *graph.Node, n int) *graph.Node {
	return graph.Div(x, graph.Scalar(x.Graph(), x.DType(), float32(n)))
}

// invSqrt is 1/√x; GoMLX's Rsqrt has no gradient.
func invSqrt(x *graph.Node) *graph.Node {
	return graph.Div(graph.ScalarOne(x.Graph(), x.DType()), graph.Sqrt(x))
}
