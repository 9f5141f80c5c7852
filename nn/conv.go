package nn

import (
	"github.com/tnn-go/tnn/gemm"
	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

// Conv2d is PyTorch's Conv2d (groups = 1, dilation = 1) computed per image as
// Y = W · Im2col(X). With Quant set the product uses the quantized weight,
// and the weight gradient passes back through Quant.Backward.
type Conv2d struct {
	InC, OutC, KH, KW, Stride, Pad int
	Weight                         *Param // OutC × InC × KH × KW
	Bias                           *Param // OutC, or nil
	Quant                          WeightQuantizer

	wq    []float32 // effective weight used by the last forward
	wflip []float32 // wq transposed and flipped, for the input gradient
	x     *tensor.Tensor
	y, dx *tensor.Tensor
	cols  [][]float32 // per-worker im2col buffers
	dcols [][]float32
	dws   [][]float32 // per-worker partial weight gradients
	dbs   [][]float32
	gq    []float32
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

func (c *Conv2d) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	c.x = x
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	ho, wo := c.OutSize(h, w)
	c.y = ensure(c.y, n, c.OutC, ho, wo)
	wq := c.EffectiveWeight()
	k := c.InC * c.KH * c.KW
	hw := ho * wo
	inSz, outSz := c.InC*h*w, c.OutC*hw
	if !c.direct() {
		c.cols = scratch(c.cols, parallel.Threads(), k*hw)
	}
	parallel.For(n, func(lo, hi, wk int) {
		for i := lo; i < hi; i++ {
			xi := x.Data[i*inSz : (i+1)*inSz]
			col := xi
			if !c.direct() {
				col = c.cols[wk]
				Im2col(xi, col, c.InC, h, w, c.KH, c.KW, c.Stride, c.Pad, ho, wo)
			}
			yi := c.y.Data[i*outSz : (i+1)*outSz]
			gemm.Sgemm(false, false, c.OutC, hw, k, 1, wq, k, col, hw, 0, yi, hw)
			if c.Bias != nil {
				for o, b := range c.Bias.Data.Data {
					row := yi[o*hw : (o+1)*hw]
					for j := range row {
						row[j] += b
					}
				}
			}
		}
	})
	return c.y
}

func (c *Conv2d) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	x := c.x
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	ho, wo := dy.Shape[2], dy.Shape[3]
	k := c.InC * c.KH * c.KW
	hw := ho * wo
	inSz, outSz := c.InC*h*w, c.OutC*hw
	workers := parallel.Threads()
	wq := c.wq
	if c.Quant == nil {
		wq = c.Weight.Data.Data
	}
	if needDx {
		c.dx = ensure(c.dx, x.Shape...)
	}
	// For same-size stride-1 convolutions the input gradient is itself a
	// same convolution of dY with the flipped, transposed kernel: im2col of dY
	// plus a GEMM, which is cheaper than a GEMM plus the scatter-add of col2im.
	same := c.Stride == 1 && ho == h && wo == w && !c.direct()
	kT := c.OutC * c.KH * c.KW
	if !c.direct() {
		c.cols = scratch(c.cols, workers, k*hw)
		if needDx {
			c.dcols = scratch(c.dcols, workers, max(k, kT)*hw)
		}
	}
	if needDx && same {
		if len(c.wflip) != len(wq) {
			c.wflip = make([]float32, len(wq))
		}
		flipKernel(wq, c.wflip, c.OutC, c.InC, c.KH, c.KW)
	}
	c.dws = scratch(c.dws, workers, c.OutC*k)
	if c.Bias != nil {
		c.dbs = scratch(c.dbs, workers, c.OutC)
	}
	used := min(workers, n)
	for wk := 0; wk < used; wk++ {
		clear(c.dws[wk])
		if c.Bias != nil {
			clear(c.dbs[wk])
		}
	}
	parallel.For(n, func(lo, hi, wk int) {
		dw := c.dws[wk]
		for i := lo; i < hi; i++ {
			xi := x.Data[i*inSz : (i+1)*inSz]
			dyi := dy.Data[i*outSz : (i+1)*outSz]
			col := xi
			if !c.direct() {
				col = c.cols[wk]
				Im2col(xi, col, c.InC, h, w, c.KH, c.KW, c.Stride, c.Pad, ho, wo)
			}
			gemm.Sgemm(false, true, c.OutC, k, hw, 1, dyi, hw, col, hw, 1, dw, k)
			if c.Bias != nil {
				db := c.dbs[wk]
				for o := range db {
					var s float32
					for _, v := range dyi[o*hw : (o+1)*hw] {
						s += v
					}
					db[o] += s
				}
			}
			if needDx {
				dxi := c.dx.Data[i*inSz : (i+1)*inSz]
				switch {
				case c.direct():
					gemm.Sgemm(true, false, k, hw, c.OutC, 1, wq, k, dyi, hw, 0, dxi, hw)
				case same:
					dcol := c.dcols[wk]
					im2colSame(dyi, dcol, c.OutC, h, w, c.KH, c.KW, c.Pad)
					gemm.Sgemm(false, false, c.InC, hw, kT, 1, c.wflip, kT, dcol, hw, 0, dxi, hw)
				default:
					dcol := c.dcols[wk]
					gemm.Sgemm(true, false, k, hw, c.OutC, 1, wq, k, dyi, hw, 0, dcol, hw)
					col2im(dcol, dxi, c.InC, h, w, c.KH, c.KW, c.Stride, c.Pad, ho, wo)
				}
			}
		}
	})
	// Reduce the per-worker partials in a fixed order so that a run is
	// bit-reproducible for a given thread count.
	gw := c.Weight.Grad.Data
	if c.Quant != nil {
		if len(c.gq) != len(gw) {
			c.gq = make([]float32, len(gw))
		}
		gw = c.gq
	}
	copy(gw, c.dws[0])
	for wk := 1; wk < used; wk++ {
		for j, v := range c.dws[wk] {
			gw[j] += v
		}
	}
	if c.Quant != nil {
		c.Quant.Backward(c.Weight.Data.Data, c.gq, c.Weight.Grad.Data)
	}
	if c.Bias != nil {
		gb := c.Bias.Grad.Data
		copy(gb, c.dbs[0])
		for wk := 1; wk < used; wk++ {
			for j, v := range c.dbs[wk] {
				gb[j] += v
			}
		}
	}
	if !needDx {
		return []*tensor.Tensor{nil}
	}
	return []*tensor.Tensor{c.dx}
}

func (c *Conv2d) Params() []*Param {
	if c.Bias != nil {
		return []*Param{c.Weight, c.Bias}
	}
	return []*Param{c.Weight}
}

func (c *Conv2d) Buffers() []tensor.Named { return nil }

// Im2col lays out the receptive fields of one C×H×W image as the columns of
// a (C·KH·KW) × (HO·WO) matrix; out-of-image taps are zero.
func Im2col(x, col []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	if stride == 1 && ho == h && wo == w {
		im2colSame(x, col, ch, h, w, kh, kw, pad)
		return
	}
	hw := ho * wo
	for c := 0; c < ch; c++ {
		xc := x[c*h*w : (c+1)*h*w]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*hw:][:hw]
				for oh := 0; oh < ho; oh++ {
					ih := oh*stride - pad + ki
					dst := row[oh*wo : (oh+1)*wo]
					if ih < 0 || ih >= h {
						clear(dst)
						continue
					}
					src := xc[ih*w : (ih+1)*w]
					if stride == 1 {
						// Contiguous run: only the ends can fall outside the image.
						lo := min(max(0, pad-kj), wo)
						hi := max(min(wo, w+pad-kj), lo)
						clear(dst[:lo])
						if hi > lo {
							copy(dst[lo:hi], src[lo-pad+kj:hi-pad+kj])
						}
						clear(dst[hi:])
						continue
					}
					for ow := range dst {
						iw := ow*stride - pad + kj
						if iw < 0 || iw >= w {
							dst[ow] = 0
						} else {
							dst[ow] = src[iw]
						}
					}
				}
			}
		}
	}
}

// col2im is the adjoint of im2col: it sums the column entries back into the
// image positions they were read from.
func col2im(col, x []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	if stride == 1 && ho == h && wo == w {
		col2imSame(col, x, ch, h, w, kh, kw, pad)
		return
	}
	clear(x)
	hw := ho * wo
	for c := 0; c < ch; c++ {
		xc := x[c*h*w : (c+1)*h*w]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*hw:][:hw]
				for oh := 0; oh < ho; oh++ {
					ih := oh*stride - pad + ki
					if ih < 0 || ih >= h {
						continue
					}
					dst := xc[ih*w : (ih+1)*w]
					src := row[oh*wo : (oh+1)*wo]
					if stride == 1 {
						lo := min(max(0, pad-kj), wo)
						hi := max(min(wo, w+pad-kj), lo)
						if hi > lo {
							d := dst[lo-pad+kj : hi-pad+kj]
							for j, v := range src[lo:hi] {
								d[j] += v
							}
						}
						continue
					}
					for ow, v := range src {
						iw := ow*stride - pad + kj
						if iw >= 0 && iw < w {
							dst[iw] += v
						}
					}
				}
			}
		}
	}
}

// For "same" convolutions (stride 1, output size = input size, e.g. 3×3 with
// padding 1) each im2col row is the whole channel plane shifted by
// (ki−pad)·w + (kj−pad): one long copy, then the taps that wrapped around a
// row edge and the rows that fell off the top or bottom are zeroed. This is
// several times faster than row-by-row copies of 7–32 floats.

// sameSpan returns, for tap (ki, kj), the output range [lo, hi) whose source
// index o+shift stays inside the plane, and the shift.
func sameSpan(h, w, ki, kj, pad int) (lo, hi, shift int) {
	dy, dx := ki-pad, kj-pad
	lo, hi = max(0, -dy)*w, min(h, h-dy)*w
	return lo, max(hi, lo), dy*w + dx
}

func im2colSame(x, col []float32, ch, h, w, kh, kw, pad int) {
	hw := h * w
	for c := 0; c < ch; c++ {
		xc := x[c*hw : (c+1)*hw]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*hw:][:hw]
				lo, hi, shift := sameSpan(h, w, ki, kj, pad)
				clear(row[:lo])
				clear(row[hi:])
				if hi == lo {
					continue
				}
				// Source indices o+shift for o in [lo, hi) may run one
				// column past either end of the plane; clamp, then zero.
				s0, s1 := lo+shift, hi+shift
				d0, d1 := lo, hi
				if s0 < 0 {
					d0 -= s0
					s0 = 0
				}
				if s1 > hw {
					d1 -= s1 - hw
					s1 = hw
				}
				clear(row[lo:d0])
				clear(row[d1:hi])
				copy(row[d0:d1], xc[s0:s1])
				dx := kj - pad
				if dx == 0 {
					continue
				}
				// Columns whose tap falls left (dx<0) or right (dx>0) of the image.
				for r := lo / w; r < hi/w; r++ {
					base := r * w
					if dx < 0 {
						clear(row[base : base-dx])
					} else {
						clear(row[base+w-dx : base+w])
					}
				}
			}
		}
	}
}

// col2imSame is im2colSame's adjoint. It zeroes the wrapped taps of col in
// place (col is scratch) so each row can be added to the plane in one pass.
func col2imSame(col, x []float32, ch, h, w, kh, kw, pad int) {
	hw := h * w
	clear(x)
	for c := 0; c < ch; c++ {
		xc := x[c*hw : (c+1)*hw]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*hw:][:hw]
				lo, hi, shift := sameSpan(h, w, ki, kj, pad)
				if hi == lo {
					continue
				}
				dx := kj - pad
				if dx != 0 {
					for r := lo / w; r < hi/w; r++ {
						base := r * w
						if dx < 0 {
							clear(row[base : base-dx])
						} else {
							clear(row[base+w-dx : base+w])
						}
					}
				}
				s0, s1 := lo+shift, hi+shift
				d0 := lo
				if s0 < 0 {
					d0 -= s0
					s0 = 0
				}
				s1 = min(s1, hw)
				dst := xc[s0:s1]
				for i, v := range row[d0 : d0+len(dst)] {
					dst[i] += v
				}
			}
		}
	}
}

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
