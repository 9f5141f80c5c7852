package nn

import (
	"math"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

// MaxPool2d is PyTorch's MaxPool2d (floor mode, padding treated as -inf).
// Ties go to the first maximum in scan order, as in PyTorch.
type MaxPool2d struct {
	noParams
	K, Stride, Pad int
	inShape        []int
	argmax         []int32
	x, dy, y, dx   *tensor.Tensor
	dxs            [1]*tensor.Tensor
	fwd, bwd       func(lo, hi, worker int)
}

func poolOut(h, k, s, p int) int { return (h+2*p-k)/s + 1 }

func (m *MaxPool2d) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	ho, wo := poolOut(h, m.K, m.Stride, m.Pad), poolOut(w, m.K, m.Stride, m.Pad)
	m.inShape = append(m.inShape[:0], x.Shape...)
	m.y = ensure(m.y, n, c, ho, wo)
	if cap(m.argmax) < len(m.y.Data) {
		m.argmax = make([]int32, len(m.y.Data))
	}
	m.argmax = m.argmax[:len(m.y.Data)]
	if m.fwd == nil {
		m.fwd, m.bwd = m.forwardPlanes, m.backwardPlanes
	}
	m.x = x
	parallel.For(n*c, m.fwd)
	m.x = nil
	return m.y
}

func (m *MaxPool2d) forwardPlanes(lo, hi, _ int) {
	h, w := m.inShape[2], m.inShape[3]
	ho, wo := m.y.Shape[2], m.y.Shape[3]
	for p := lo; p < hi; p++ {
		MaxPoolPlane(m.x.Data[p*h*w:(p+1)*h*w], m.y.Data[p*ho*wo:(p+1)*ho*wo], m.argmax[p*ho*wo:(p+1)*ho*wo], h, w, m.K, m.Stride, m.Pad)
	}
}

func (m *MaxPool2d) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	m.dx = ensure(m.dx, m.inShape...)
	if m.fwd == nil {
		m.fwd, m.bwd = m.forwardPlanes, m.backwardPlanes
	}
	m.dy = dy
	parallel.For(m.inShape[0]*m.inShape[1], m.bwd)
	m.dy = nil
	m.dxs[0] = m.dx
	return m.dxs[:]
}

func (m *MaxPool2d) backwardPlanes(lo, hi, _ int) {
	h, w := m.inShape[2], m.inShape[3]
	ho, wo := m.dy.Shape[2], m.dy.Shape[3]
	for p := lo; p < hi; p++ {
		dst := m.dx.Data[p*h*w : (p+1)*h*w]
		clear(dst)
		for o := p * ho * wo; o < (p+1)*ho*wo; o++ {
			dst[m.argmax[o]] += m.dy.Data[o]
		}
	}
}

// AvgPool2d is PyTorch's AvgPool2d with count_include_pad=True (floor mode).
type AvgPool2d struct {
	noParams
	K, Stride, Pad int
	inShape        []int
	x, dy, y, dx   *tensor.Tensor
	dxs            [1]*tensor.Tensor
	fwd, bwd       func(lo, hi, worker int)
}

func (a *AvgPool2d) bind() {
	if a.fwd == nil {
		a.fwd, a.bwd = a.forwardPlanes, a.backwardPlanes
	}
}

func (a *AvgPool2d) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	ho, wo := poolOut(h, a.K, a.Stride, a.Pad), poolOut(w, a.K, a.Stride, a.Pad)
	a.inShape = append(a.inShape[:0], x.Shape...)
	a.y = ensure(a.y, n, c, ho, wo)
	a.bind()
	a.x = x
	parallel.For(n*c, a.fwd)
	a.x = nil
	return a.y
}

func (a *AvgPool2d) forwardPlanes(lo, hi, _ int) {
	h, w := a.inShape[2], a.inShape[3]
	ho, wo := a.y.Shape[2], a.y.Shape[3]
	for p := lo; p < hi; p++ {
		AvgPoolPlane(a.x.Data[p*h*w:(p+1)*h*w], a.y.Data[p*ho*wo:(p+1)*ho*wo], h, w, a.K, a.Stride, a.Pad)
	}
}

func (a *AvgPool2d) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	a.dx = ensure(a.dx, a.inShape...)
	a.bind()
	a.dy = dy
	parallel.For(a.inShape[0]*a.inShape[1], a.bwd)
	a.dy = nil
	a.dxs[0] = a.dx
	return a.dxs[:]
}

func (a *AvgPool2d) backwardPlanes(lo, hi, _ int) {
	dy := a.dy
	h, w := a.inShape[2], a.inShape[3]
	ho, wo := dy.Shape[2], dy.Shape[3]
	inv := 1 / float32(a.K*a.K)
	for p := lo; p < hi; p++ {
		dst := a.dx.Data[p*h*w : (p+1)*h*w]
		clear(dst)
		for oh := 0; oh < ho; oh++ {
			for ow := 0; ow < wo; ow++ {
				g := dy.Data[p*ho*wo+oh*wo+ow] * inv
				for ki := 0; ki < a.K; ki++ {
					ih := oh*a.Stride - a.Pad + ki
					if ih < 0 || ih >= h {
						continue
					}
					for kj := 0; kj < a.K; kj++ {
						iw := ow*a.Stride - a.Pad + kj
						if iw >= 0 && iw < w {
							dst[ih*w+iw] += g
						}
					}
				}
			}
		}
	}
}

// GlobalAvgPool averages each channel over all pixels: N×C×H×W → N×C
// (PyTorch's AdaptiveAvgPool2d(1) followed by flatten).
type GlobalAvgPool struct {
	noParams
	inShape []int
	y, dx   *tensor.Tensor
	dxs     [1]*tensor.Tensor
}

func (g *GlobalAvgPool) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	n, c := x.Shape[0], x.Shape[1]
	hw := len(x.Data) / (n * c)
	g.inShape = append(g.inShape[:0], x.Shape...)
	g.y = ensure(g.y, n, c)
	for p := 0; p < n*c; p++ {
		var s float32
		for _, v := range x.Data[p*hw : (p+1)*hw] {
			s += v
		}
		g.y.Data[p] = s / float32(hw)
	}
	return g.y
}

func (g *GlobalAvgPool) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	g.dx = ensure(g.dx, g.inShape...)
	n, c := g.inShape[0], g.inShape[1]
	hw := len(g.dx.Data) / (n * c)
	inv := 1 / float32(hw)
	for p := 0; p < n*c; p++ {
		v := dy.Data[p] * inv
		dst := g.dx.Data[p*hw : (p+1)*hw]
		for j := range dst {
			dst[j] = v
		}
	}
	g.dxs[0] = g.dx
	return g.dxs[:]
}

// MaxPoolPlane max-pools one h×w plane into y (its output size follows from
// k, stride and pad, floor mode, padding as −inf). Ties go to the first
// maximum in scan order and NaN wins, as in PyTorch. When argmax is not nil
// it receives each output's source index within the plane.
func MaxPoolPlane(src, y []float32, argmax []int32, h, w, k, stride, pad int) {
	ho, wo := poolOut(h, k, stride, pad), poolOut(w, k, stride, pad)
	for oh := 0; oh < ho; oh++ {
		for ow := 0; ow < wo; ow++ {
			best := float32(math.Inf(-1))
			bi := int32(-1)
			for ki := 0; ki < k; ki++ {
				ih := oh*stride - pad + ki
				if ih < 0 || ih >= h {
					continue
				}
				for kj := 0; kj < k; kj++ {
					iw := ow*stride - pad + kj
					if iw < 0 || iw >= w {
						continue
					}
					if v := src[ih*w+iw]; v > best || bi < 0 || v != v {
						best, bi = v, int32(ih*w+iw)
					}
				}
			}
			y[oh*wo+ow] = best
			if argmax != nil {
				argmax[oh*wo+ow] = bi
			}
		}
	}
}

// AvgPoolPlane average-pools one h×w plane into y, counting padding as
// zeros (PyTorch's count_include_pad=True).
func AvgPoolPlane(src, y []float32, h, w, k, stride, pad int) {
	ho, wo := poolOut(h, k, stride, pad), poolOut(w, k, stride, pad)
	inv := 1 / float32(k*k)
	for oh := 0; oh < ho; oh++ {
		for ow := 0; ow < wo; ow++ {
			var s float32
			for ki := 0; ki < k; ki++ {
				ih := oh*stride - pad + ki
				if ih < 0 || ih >= h {
					continue
				}
				for kj := 0; kj < k; kj++ {
					iw := ow*stride - pad + kj
					if iw >= 0 && iw < w {
						s += src[ih*w+iw]
					}
				}
			}
			y[oh*wo+ow] = s * inv
		}
	}
}
