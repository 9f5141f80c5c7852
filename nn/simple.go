package nn

import (
	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/vec"
	"github.com/tnn-go/tnn/tensor"
)

// Layers run their parallel loops through func values bound to the layer
// once (fields fwd, bwd) and read the call's arguments from fields: a
// closure or method value made per call would escape to the worker pool
// and allocate on every step.

// ReLU is max(x, 0).
type ReLU struct {
	noParams
	x, y, dy, dx *tensor.Tensor
	dxs          [1]*tensor.Tensor
	fwd, bwd     func(lo, hi, worker int)
}

func (r *ReLU) bind() {
	if r.fwd == nil {
		r.fwd, r.bwd = r.forwardRange, r.backwardRange
	}
}

func (r *ReLU) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	r.bind()
	r.x = in[0]
	r.y = ensure(r.y, r.x.Shape...)
	parallel.For(len(r.x.Data), r.fwd)
	return r.y
}

func (r *ReLU) forwardRange(lo, hi, _ int) { vec.ReLU(r.y.Data[lo:hi], r.x.Data[lo:hi]) }

// Backward passes the gradient where the output was positive; at x = 0 the
// gradient is 0, as in PyTorch.
func (r *ReLU) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	r.bind()
	r.dx = ensure(r.dx, dy.Shape...)
	r.dy = dy
	parallel.For(len(dy.Data), r.bwd)
	r.dy = nil
	r.dxs[0] = r.dx
	return r.dxs[:]
}

func (r *ReLU) backwardRange(lo, hi, _ int) {
	vec.MaskPositive(r.dx.Data[lo:hi], r.dy.Data[lo:hi], r.y.Data[lo:hi])
}

// Add sums its inputs (the residual connection). With ReLU set it is
// max(Σ inputs, 0), the end of a residual block in one pass.
type Add struct {
	noParams
	ReLU     bool
	in       []*tensor.Tensor
	y, dy    *tensor.Tensor
	dy2      *tensor.Tensor // BackwardSum's second part
	dx       *tensor.Tensor
	dxs      []*tensor.Tensor
	fwd, bwd func(lo, hi, worker int)
	bwdSum   func(lo, hi, worker int)

	// gsNext is the sink of GradStatsInto for the next Backward; gs the
	// one in flight, whose planes bwdPlanes walks.
	gsNext, gs *GradStatsSink
	bwdPlanes  func(lo, hi, worker int)
}

func (a *Add) bind() {
	if a.fwd == nil {
		a.fwd, a.bwd, a.bwdSum = a.forwardRange, a.backwardRange, a.backwardSumRange
		a.bwdPlanes = a.backwardPlanes
	}
}

// GradStatsInto makes the next Backward (or BackwardSum) take the gradient
// statistics of the BatchNorm whose output is the Add's first input, plane
// by plane as it writes its input gradient, which is that BatchNorm's
// incoming gradient (BatchNorm.GradPlaneStats). A Backward that makes no
// pass of its own (no ReLU, one gradient) leaves the sink unfilled.
func (a *Add) GradStatsInto(s *GradStatsSink) { a.gsNext = s }

// takeStats reports whether the Backward in flight, which makes a pass over
// dy, takes the sink's statistics: then it walks whole planes.
func (a *Add) takeStats(dy *tensor.Tensor) bool {
	a.gs, a.gsNext = a.gsNext, nil
	if a.gs == nil || len(dy.Shape) != 4 || !a.gs.Fits(dy.Shape[0], dy.Shape[1], dy.Shape[2]*dy.Shape[3]) {
		a.gs = nil
	}
	return a.gs != nil
}

// backwardPlanes is backwardRange or backwardSumRange over planes [lo, hi),
// each plane's statistics taken while it is in cache.
func (a *Add) backwardPlanes(lo, hi, worker int) {
	c, hw := a.dx.Shape[1], a.dx.Shape[2]*a.dx.Shape[3]
	for p := lo; p < hi; p++ {
		if a.dy2 != nil {
			a.backwardSumRange(p*hw, (p+1)*hw, worker)
		} else {
			a.backwardRange(p*hw, (p+1)*hw, worker)
		}
		a.gs.TakePlane(a.dx.Data[p*hw:(p+1)*hw], p/c, p%c)
	}
}

// backwardPass runs the Backward's pass over dy (and dy2), by planes when
// it takes statistics.
func (a *Add) backwardPass(dy *tensor.Tensor, flat func(lo, hi, worker int)) {
	if a.takeStats(dy) {
		parallel.For(dy.Shape[0]*dy.Shape[1], a.bwdPlanes)
		a.gs.Filled()
		a.gs = nil
		return
	}
	parallel.For(len(dy.Data), flat)
}

// ForwardNormalized is Forward(in) where in[0] would be bn's output for
// input x (in[0] itself is not read): bn computes its statistics and
// updates its running ones as its Forward does, and its per-channel
// transform, the addition of in[1] and the ReLU go in one pass that writes
// only y. The result is Forward's bit for bit; bn's output is never written
// or read, nor its memory held. Backward and bn.Backward follow as usual:
// neither needs that output. bn must have no ReLU of its own and the Add
// exactly two inputs of x's shape.
func (a *Add) ForwardNormalized(bn *BatchNorm, x *tensor.Tensor, in []*tensor.Tensor, train bool) *tensor.Tensor {
	if len(in) != 2 || !tensor.SameShape(x.Shape, in[1].Shape) {
		panic("nn: Add.ForwardNormalized needs two inputs of one shape")
	}
	a.bind()
	a.y = ensure(a.y, x.Shape...)
	a.in = append(a.in[:0], in...)
	bn.forwardAdd(x, in[1], a.y, a.ReLU, train)
	return a.y
}

func (a *Add) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	a.bind()
	a.y = ensure(a.y, in[0].Shape...)
	a.in = append(a.in[:0], in...)
	parallel.For(len(a.y.Data), a.fwd)
	return a.y
}

func (a *Add) forwardRange(lo, hi, _ int) {
	ys := a.y.Data[lo:hi]
	in := a.in
	if len(in) == 1 {
		copy(ys, in[0].Data[lo:hi])
		if a.ReLU {
			vec.ReLU(ys, ys)
		}
		return
	}
	// The ReLU goes with the last addition; earlier ones accumulate in y.
	last := len(in) - 1
	vec.Add(ys, in[0].Data[lo:hi], in[1].Data[lo:hi], a.ReLU && last == 1)
	for k := 2; k <= last; k++ {
		vec.Add(ys, ys, in[k].Data[lo:hi], a.ReLU && k == last)
	}
}

// Backward hands the same gradient to every input; the executor never
// writes into a gradient it receives, so sharing dy is safe.
func (a *Add) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	a.bind()
	if a.ReLU {
		a.dx = ensure(a.dx, dy.Shape...)
		a.dy = dy
		a.backwardPass(dy, a.bwd)
		a.dy = nil
		dy = a.dx
	}
	a.dxs = a.dxs[:0]
	for range a.in {
		a.dxs = append(a.dxs, dy)
	}
	return a.dxs
}

func (a *Add) backwardRange(lo, hi, _ int) {
	vec.MaskPositive(a.dx.Data[lo:hi], a.dy.Data[lo:hi], a.y.Data[lo:hi])
}

// BackwardSum is Backward(dy) with dy = d1 + d2, the gradients from the two
// readers of the output: the addition and the ReLU mask go in one pass,
// bit for bit as summing first. It returns the Add's own buffer for every
// input, never d1 or d2.
func (a *Add) BackwardSum(d1, d2 *tensor.Tensor, needDx bool) []*tensor.Tensor {
	if len(d1.Data) != len(d2.Data) {
		panic("nn: Add.BackwardSum of gradients of two sizes")
	}
	a.bind()
	a.dx = ensure(a.dx, d1.Shape...)
	a.dy, a.dy2 = d1, d2
	a.backwardPass(d1, a.bwdSum)
	a.dy, a.dy2 = nil, nil
	a.dxs = a.dxs[:0]
	for range a.in {
		a.dxs = append(a.dxs, a.dx)
	}
	return a.dxs
}

func (a *Add) backwardSumRange(lo, hi, _ int) {
	dx, d1, d2 := a.dx.Data[lo:hi], a.dy.Data[lo:hi], a.dy2.Data[lo:hi]
	if a.ReLU {
		vec.MaskPositiveSum(dx, d1, d2, a.y.Data[lo:hi])
	} else {
		vec.Add(dx, d1, d2, false)
	}
}

// Flatten reshapes N×C×H×W to N×(C·H·W) without copying.
type Flatten struct {
	noParams
	inShape []int
	y, dx   tensor.Tensor
	dxs     [1]*tensor.Tensor
}

func (f *Flatten) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	f.inShape = append(f.inShape[:0], x.Shape...)
	f.y.Shape = append(f.y.Shape[:0], x.Shape[0], len(x.Data)/x.Shape[0])
	f.y.Data = x.Data
	return &f.y
}

func (f *Flatten) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	f.dx.Shape = append(f.dx.Shape[:0], f.inShape...)
	f.dx.Data = dy.Data
	f.dxs[0] = &f.dx
	return f.dxs[:]
}

// ShortcutA is the CIFAR ResNet "type A" shortcut of the reference
// (DownsampleA): a 1×1 average pool of the given stride (every stride-th
// pixel) followed by concatenation of zero channels up to OutC.
type ShortcutA struct {
	noParams
	InC, OutC, Stride int
	inShape           []int
	x, dy             *tensor.Tensor
	y, dx             *tensor.Tensor
	dxs               [1]*tensor.Tensor
	fwd, bwd          func(lo, hi, worker int)
}

func (s *ShortcutA) bind() {
	if s.fwd == nil {
		s.fwd, s.bwd = s.forwardImages, s.backwardImages
	}
}

func (s *ShortcutA) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	s.bind()
	x := in[0]
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	s.inShape = append(s.inShape[:0], x.Shape...)
	ho, wo := (h-1)/s.Stride+1, (w-1)/s.Stride+1
	s.y = ensure(s.y, n, s.OutC, ho, wo)
	s.x = x
	parallel.For(n, s.fwd)
	return s.y
}

func (s *ShortcutA) forwardImages(lo, hi, _ int) {
	h, w := s.inShape[2], s.inShape[3]
	ho, wo := s.y.Shape[2], s.y.Shape[3]
	st := s.Stride
	for i := lo; i < hi; i++ {
		for c := 0; c < s.OutC; c++ {
			dst := s.y.Data[((i*s.OutC)+c)*ho*wo:][:ho*wo]
			if c >= s.InC {
				clear(dst)
				continue
			}
			src := s.x.Data[((i*s.InC)+c)*h*w:][:h*w]
			for oh := 0; oh < ho; oh++ {
				d := dst[oh*wo : (oh+1)*wo]
				row := src[oh*st*w:]
				for ow := range d {
					d[ow] = row[ow*st]
				}
			}
		}
	}
}

func (s *ShortcutA) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	s.bind()
	s.dx = ensure(s.dx, s.inShape...)
	s.dy = dy
	parallel.For(s.inShape[0], s.bwd)
	s.dy = nil
	s.dxs[0] = s.dx
	return s.dxs[:]
}

func (s *ShortcutA) backwardImages(lo, hi, _ int) {
	h, w := s.inShape[2], s.inShape[3]
	ho, wo := s.dy.Shape[2], s.dy.Shape[3]
	st := s.Stride
	for i := lo; i < hi; i++ {
		for c := 0; c < s.InC; c++ {
			dst := s.dx.Data[((i*s.InC)+c)*h*w:][:h*w]
			clear(dst)
			src := s.dy.Data[((i*s.OutC)+c)*ho*wo:][:ho*wo]
			for oh := 0; oh < ho; oh++ {
				row := dst[oh*st*w:]
				for ow, v := range src[oh*wo : (oh+1)*wo] {
					row[ow*st] = v
				}
			}
		}
	}
}

// Identity passes its input through; the executor puts it where a ReLU was
// fused into the layer before it.
type Identity struct {
	noParams
	dxs [1]*tensor.Tensor
}

func (*Identity) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor { return in[0] }

func (l *Identity) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	l.dxs[0] = dy
	return l.dxs[:]
}
