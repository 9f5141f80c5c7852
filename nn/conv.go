package nn

import (
	"fmt"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/vec"
	"github.com/tnn-go/tnn/tensor"
)

// Conv2d is PyTorch's Conv2d (groups = 1, dilation = 1) computed per image as
// Y = W · Im2col(X), or, for 3×3 kernels with stride 1 and padding 1, with
// Winograd's F(2×2, 3×3) or F(4×4, 3×3) where SetConvAlgo allows it (see
// winograd.go).
// With Quant set the product uses the quantized weight, and the weight
// gradient passes back through Quant.Backward.
type Conv2d struct {
	InC, OutC, KH, KW, Stride, Pad int
	Weight                         *Param // OutC × InC × KH × KW
	Bias                           *Param // OutC, or nil
	Quant                          WeightQuantizer

	wq    []float32 // effective weight used by the last forward
	wflip []float32 // wq transposed and flipped, for the input gradient
	x     *tensor.Tensor
	y, dx *tensor.Tensor
	dxs   [1]*tensor.Tensor
	t     *convTemps // borrowed for the length of a Forward or Backward
	dbs   [][]float32
	gq    []float32

	call     convCall
	fwd, bwd func(lo, hi, worker int)

	// wg is the Winograd state, and winoOn whether the last Forward used it.
	wg     *winoState
	winoOn bool

	// gsNext is the sink of GradStatsInto for the next Backward, gs the
	// one of the Backward in flight.
	gsNext, gs *GradStatsSink

	// statsNext is the buffer of StatsInto for the next Forward, stats
	// the one of the Forward in flight.
	statsNext, stats []float32

	// post is the epilogue of the last Forward when it was a
	// ForwardAffine (nil otherwise: a Backward refuses to follow one), with
	// the weights and per-channel shift it folds in.
	post         *Affine
	wpost, bpost []float32
}

// Affine is a per-output-channel y ← Scale[o]·y + Shift[o], then max(y, 0)
// with ReLU: what an eval-mode BatchNorm (and a fused ReLU) does to a
// convolution's output, which ForwardAffine applies in the convolution.
type Affine struct {
	Scale, Shift []float32
	ReLU         bool
}

// ForwardAffine is an eval-mode Forward whose output goes through post.
// Scale is folded into the weights and Shift into the bias of the output
// transform, so the normalisation costs no pass over the activations of
// its own; the results differ from Forward then the layer by rounding only.
// No Backward may follow (it panics): the normalisation's input, which a
// Backward through it would need, never exists.
func (c *Conv2d) ForwardAffine(in []*tensor.Tensor, post *Affine) *tensor.Tensor {
	if len(post.Scale) != c.OutC || len(post.Shift) != c.OutC {
		panic(fmt.Sprintf("nn: Conv2d.ForwardAffine: %d scales and %d shifts for %d output channels", len(post.Scale), len(post.Shift), c.OutC))
	}
	c.post = post
	return c.forward(in, false)
}

// postWeights returns wq with output channel o scaled by post.Scale[o], and
// sets bpost to the shift that goes with it (the bias scaled, plus Shift).
func (c *Conv2d) postWeights(wq []float32) []float32 {
	c.wpost = grow(c.wpost, len(wq))
	c.bpost = grow(c.bpost, c.OutC)
	k := len(wq) / c.OutC
	for o, s := range c.post.Scale {
		w, d := wq[o*k:(o+1)*k], c.wpost[o*k:(o+1)*k]
		for j, v := range w {
			d[j] = v * s
		}
		c.bpost[o] = c.post.Shift[o]
		if c.Bias != nil {
			c.bpost[o] += s * c.Bias.Data.Data[o]
		}
	}
	return c.wpost
}

// StatsInto makes the next Forward also write vec.RowStats of each output
// plane, channel o of image r at st[3(o·n+r):], as soon as the plane is
// made: a BatchNorm that follows then needs no pass of its own over the
// output to take its statistics (BatchNorm.PlaneStats). st must hold
// 3·OutC·n floats for a batch of n.
func (c *Conv2d) StatsInto(st []float32) { c.statsNext = st }

// GradStatsInto makes the next Backward take the statistics of its input
// gradient for the BatchNorm that produced its input, plane by plane as it
// writes them (BatchNorm.GradPlaneStats).
func (c *Conv2d) GradStatsInto(s *GradStatsSink) { c.gsNext = s }

// planeStats takes the statistics of image i's output planes yi.
func (c *Conv2d) planeStats(yi []float32, i int) {
	hw, n := c.call.hw, c.call.n
	for o := 0; o < c.OutC; o++ {
		vec.RowStats(yi[o*hw:], 1, hw, hw, c.stats[3*(o*n+i):][:3])
	}
}

// outBias is the constant added to output channel o.
func (c *Conv2d) outBias(o int) float32 {
	switch {
	case c.post != nil:
		return c.bpost[o]
	case c.Bias != nil:
		return c.Bias.Data.Data[o]
	}
	return 0
}

// epilogue adds the bias (or ForwardAffine's shift) to one image's output
// and applies ForwardAffine's ReLU.
func (c *Conv2d) epilogue(yi []float32, hw int) {
	if c.Bias == nil && c.post == nil {
		return
	}
	relu := c.post != nil && c.post.ReLU
	for o := 0; o < c.OutC; o++ {
		row := yi[o*hw : (o+1)*hw]
		// ((v − 0)·1)·1 + b is v + b exactly: the vector kernel of
		// BatchNorm adds the bias (and applies the ReLU) in one pass.
		vec.Normalize(row, row, 1, hw, hw, vec.BN{InvStd: 1, Gamma: 1, Beta: c.outBias(o)}, relu)
	}
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// NewConv2d makes a convolution whose parameters are named prefix.weight and prefix.bias.
func NewConv2d(prefix string, inC, outC, k, stride, pad int, bias bool) *Conv2d {
	c := &Conv2d{InC: inC, OutC: outC, KH: k, KW: k, Stride: stride, Pad: pad}
	c.Weight = NewParam(prefix+".weight", outC, inC, k, k)
	if bias {
		c.Bias = NewParam(prefix+".bias", outC)
	}
	return c
}

// OutSize is the spatial output size for an input of h×w.
func (c *Conv2d) OutSize(h, w int) (int, int) {
	return (h+2*c.Pad-c.KH)/c.Stride + 1, (w+2*c.Pad-c.KW)/c.Stride + 1
}

// EffectiveWeight returns the weight the forward pass multiplies with
// (the ternarized one for a quantized layer), refreshing it from the latent weight.
func (c *Conv2d) EffectiveWeight() []float32 {
	if c.Quant == nil {
		return c.Weight.Data.Data
	}
	if len(c.wq) != c.Weight.Data.Len() {
		c.wq = make([]float32, c.Weight.Data.Len())
	}
	c.Quant.Quantize(c.Weight.Data.Data, c.wq)
	return c.wq
}

// direct reports whether im2col is the identity (1×1, stride 1, no padding).
func (c *Conv2d) direct() bool { return c.KH == 1 && c.KW == 1 && c.Stride == 1 && c.Pad == 0 }

// convCall holds the sizes and operands of the Forward or Backward in
// flight, which the per-image workers read: they are bound once as method
// values (fwd, bwd) so that a call allocates nothing.
type convCall struct {
	x, dy               *tensor.Tensor
	wq                  []float32
	n, h, w, ho, wo     int
	k, kT, hw           int
	inSz, outSz         int
	needDx, same, isDir bool
}

func (c *Conv2d) bind() {
	if c.fwd == nil {
		c.fwd, c.bwd = c.forwardImages, c.backwardImages
	}
}

func (c *Conv2d) setup(x *tensor.Tensor, ho, wo int) {
	a := &c.call
	a.x = x
	a.n, a.h, a.w = x.Shape[0], x.Shape[2], x.Shape[3]
	a.ho, a.wo = ho, wo
	a.k = c.InC * c.KH * c.KW
	a.kT = c.OutC * c.KH * c.KW
	a.hw = ho * wo
	a.inSz, a.outSz = c.InC*a.h*a.w, c.OutC*a.hw
	a.isDir = c.direct()
	// For same-size stride-1 convolutions the input gradient is itself a
	// same convolution of dY with the flipped, transposed kernel: im2col of dY
	// plus a GEMM, which is cheaper than a GEMM plus the scatter-add of col2im.
	a.same = c.Stride == 1 && a.ho == a.h && a.wo == a.w && !a.isDir
}

func (c *Conv2d) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	c.post = nil
	return c.forward(in, train)
}

func (c *Conv2d) forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	c.bind()
	x := in[0]
	c.x = x
	ho, wo := c.OutSize(x.Shape[2], x.Shape[3])
	c.setup(x, ho, wo)
	a := &c.call
	c.y = ensure(c.y, a.n, c.OutC, ho, wo)
	a.wq = c.EffectiveWeight()
	c.stats, c.statsNext = c.statsNext, nil
	if c.stats != nil && len(c.stats) < 3*c.OutC*a.n {
		panic(fmt.Sprintf("nn: Conv2d.StatsInto: %d floats for %d channels of %d images", len(c.stats), c.OutC, a.n))
	}
	if c.post != nil {
		a.wq = c.postWeights(a.wq)
	}
	c.t = getTemps()
	c.t.workspaces(parallel.Threads())
	c.winoOn = c.useWinograd(a.n, a.h, a.w)
	if c.winoOn {
		c.winoForward(train)
	} else {
		if !a.isDir {
			c.t.cols = scratch(c.t.cols, parallel.Threads(), a.k*a.hw)
			c.t.phase = scratch(c.t.phase, parallel.Threads(), c.phaseLen())
		}
		parallel.For(a.n, c.fwd)
	}
	putTemps(c.t)
	c.t, a.x, c.stats = nil, nil, nil
	return c.y
}

func (c *Conv2d) forwardImages(lo, hi, wk int) {
	a := &c.call
	x := a.x
	for i := lo; i < hi; i++ {
		xi := x.Data[i*a.inSz : (i+1)*a.inSz]
		yi := c.y.Data[i*a.outSz : (i+1)*a.outSz]
		col := xi
		if !a.isDir {
			col = c.t.cols[wk]
			im2col(xi, col, c.t.phase[wk], c.InC, a.h, a.w, c.KH, c.KW, c.Stride, c.Pad, a.ho, a.wo)
		}
		c.t.gws[wk].Sgemm(false, false, c.OutC, a.hw, a.k, 1, a.wq, a.k, col, a.hw, 0, yi, a.hw)
		c.epilogue(yi, a.hw)
		if c.stats != nil {
			c.planeStats(yi, i)
		}
	}
}

func (c *Conv2d) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	if c.post != nil {
		panic("nn: Conv2d.Backward after ForwardAffine")
	}
	c.bind()
	c.setup(c.x, dy.Shape[2], dy.Shape[3])
	a := &c.call
	a.dy, a.needDx = dy, needDx
	c.gs, c.gsNext = c.gsNext, nil
	if !needDx || !c.gs.Fits(a.n, c.InC, a.h*a.w) {
		c.gs = nil
	}
	workers := parallel.Threads()
	a.wq = c.wq
	if c.Quant == nil {
		a.wq = c.Weight.Data.Data
	}
	if needDx {
		c.dx = ensure(c.dx, c.x.Shape...)
	}
	if c.Bias != nil {
		c.dbs = scratch(c.dbs, workers, c.OutC)
	}
	used := min(workers, a.n)
	for wk := 0; wk < used && c.Bias != nil; wk++ {
		clear(c.dbs[wk])
	}
	gw := c.Weight.Grad.Data
	if c.Quant != nil {
		if len(c.gq) != len(gw) {
			c.gq = make([]float32, len(gw))
		}
		gw = c.gq
	}
	c.t = getTemps()
	c.t.workspaces(workers)
	if c.winoOn {
		c.winoBackward()
		c.winoWeightGrad(gw, c.t.du)
	} else {
		c.im2colBackward(gw, workers, used)
	}
	if c.gs != nil {
		c.gs.Filled()
		c.gs = nil
	}
	putTemps(c.t)
	c.t, a.dy = nil, nil
	if c.Quant != nil {
		c.Quant.Backward(c.Weight.Data.Data, c.gq, c.Weight.Grad.Data)
	}
	if c.Bias != nil {
		gb := c.Bias.Grad.Data
		copy(gb, c.dbs[0])
		for wk := 1; wk < used; wk++ {
			vec.Add(gb, gb, c.dbs[wk], false)
		}
	}
	c.dxs[0] = nil
	if needDx {
		c.dxs[0] = c.dx
	}
	return c.dxs[:]
}

// im2colBackward computes the weight gradient into gw, and the input
// gradient, with im2col and GEMMs.
func (c *Conv2d) im2colBackward(gw []float32, workers, used int) {
	a := &c.call
	needDx := a.needDx
	switch {
	case a.same && needDx:
		// im2col(dY) reuses the buffer of im2col(X) once the weight
		// gradient has read it: one buffer less in L2.
		c.t.cols = scratch(c.t.cols, workers, max(a.k, a.kT)*a.hw)
	case !a.isDir:
		c.t.cols = scratch(c.t.cols, workers, a.k*a.hw)
		c.t.phase = scratch(c.t.phase, workers, c.phaseLen())
		if needDx {
			c.t.dcols = scratch(c.t.dcols, workers, a.k*a.hw)
		}
	}
	if needDx && a.same {
		if len(c.wflip) != len(a.wq) {
			c.wflip = make([]float32, len(a.wq))
		}
		flipKernel(a.wq, c.wflip, c.OutC, c.InC, c.KH, c.KW)
	}
	c.t.dws = scratch(c.t.dws, workers, c.OutC*a.k)
	for wk := 0; wk < used; wk++ {
		clear(c.t.dws[wk])
	}
	parallel.For(a.n, c.bwd)
	// Reduce the per-worker partials in a fixed order so that a run is
	// bit-reproducible for a given thread count.
	copy(gw, c.t.dws[0])
	for wk := 1; wk < used; wk++ {
		vec.Add(gw, gw, c.t.dws[wk], false)
	}
}

func (c *Conv2d) backwardImages(lo, hi, wk int) {
	a := &c.call
	x, dy := a.x, a.dy
	dw := c.t.dws[wk]
	hw := a.hw
	g := c.t.gws[wk]
	for i := lo; i < hi; i++ {
		xi := x.Data[i*a.inSz : (i+1)*a.inSz]
		dyi := dy.Data[i*a.outSz : (i+1)*a.outSz]
		var dxi []float32
		if a.needDx {
			dxi = c.dx.Data[i*a.inSz : (i+1)*a.inSz]
		}
		c.biasGrad(dyi, wk)
		switch {
		case a.isDir:
			g.Sgemm(false, true, c.OutC, a.k, hw, 1, dyi, hw, xi, hw, 1, dw, a.k)
			if a.needDx {
				g.Sgemm(true, false, a.k, hw, c.OutC, 1, a.wq, a.k, dyi, hw, 0, dxi, hw)
			}
		case a.same:
			col := c.t.cols[wk][:a.k*hw]
			Im2col(xi, col, c.InC, a.h, a.w, c.KH, c.KW, 1, c.Pad, a.h, a.w)
			g.Sgemm(false, true, c.OutC, a.k, hw, 1, dyi, hw, col, hw, 1, dw, a.k)
			if a.needDx {
				dcol := col[:a.kT*hw]
				Im2col(dyi, dcol, c.OutC, a.h, a.w, c.KH, c.KW, 1, c.Pad, a.h, a.w)
				g.Sgemm(false, false, c.InC, hw, a.kT, 1, c.wflip, a.kT, dcol, hw, 0, dxi, hw)
			}
		default:
			col, phase := c.t.cols[wk], c.t.phase[wk]
			im2col(xi, col, phase, c.InC, a.h, a.w, c.KH, c.KW, c.Stride, c.Pad, a.ho, a.wo)
			g.Sgemm(false, true, c.OutC, a.k, hw, 1, dyi, hw, col, hw, 1, dw, a.k)
			if a.needDx {
				dcol := c.t.dcols[wk]
				g.Sgemm(true, false, a.k, hw, c.OutC, 1, a.wq, a.k, dyi, hw, 0, dcol, hw)
				col2imBuf(dcol, dxi, phase, c.InC, a.h, a.w, c.KH, c.KW, c.Stride, c.Pad, a.ho, a.wo)
			}
		}
		if c.gs != nil {
			c.gs.Take(dxi, i)
		}
	}
}

// phaseLen is the per-worker scratch of the stride-2 im2col and col2im.
func (c *Conv2d) phaseLen() int {
	a := &c.call
	return phaseLen(a.h, a.w, c.KH, c.KW, c.Stride, c.Pad, a.ho, a.wo)
}

// biasGrad adds the bias gradient of one image's output gradient dyi to
// worker wk's partial sums.
func (c *Conv2d) biasGrad(dyi []float32, wk int) {
	if c.Bias == nil {
		return
	}
	hw := c.call.hw
	db := c.dbs[wk]
	for o := range db {
		var s float32
		for _, v := range dyi[o*hw : (o+1)*hw] {
			s += v
		}
		db[o] += s
	}
}

func (c *Conv2d) Params() []*Param {
	if c.Bias != nil {
		return []*Param{c.Weight, c.Bias}
	}
	return []*Param{c.Weight}
}

func (c *Conv2d) Buffers() []tensor.Named { return nil }

// flipKernel writes wf[ci][co][KH−1−ki][KW−1−kj] = w[co][ci][ki][kj]: the
// kernel of the convolution that maps dY back to dX.
func flipKernel(w, wf []float32, out, in, kh, kw int) {
	for co := 0; co < out; co++ {
		for ci := 0; ci < in; ci++ {
			src := w[(co*in+ci)*kh*kw:][:kh*kw]
			dst := wf[(ci*out+co)*kh*kw:][:kh*kw]
			for t, v := range src {
				dst[kh*kw-1-t] = v
			}
		}
	}
}
