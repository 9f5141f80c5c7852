package nn

import (
	"math"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

// ReLU is max(x, 0).
type ReLU struct {
	noParams
	y, dx *tensor.Tensor
}

func (r *ReLU) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	r.y = ensure(r.y, x.Shape...)
	parallel.For(len(x.Data), func(lo, hi, _ int) {
		ys := r.y.Data[lo:hi]
		for i, v := range x.Data[lo:hi] {
			ys[i] = max(v, 0)
		}
	})
	return r.y
}

// Backward passes the gradient where the output was positive; at x = 0 the
// gradient is 0, as in PyTorch.
func (r *ReLU) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	r.dx = ensure(r.dx, dy.Shape...)
	parallel.For(len(dy.Data), func(lo, hi, _ int) {
		dx := r.dx.Data[lo:hi]
		ys := r.y.Data[lo:hi]
		for i, d := range dy.Data[lo:hi] {
			dx[i] = passPositive(d, ys[i])
		}
	})
	return []*tensor.Tensor{r.dx}
}

// passPositive returns d where the ReLU output y is positive and 0 where
// it is 0 (y is never negative). Branch-free: the sign of y is a coin toss,
// and a mispredicted branch per element costs more than the arithmetic.
func passPositive(d, y float32) float32 {
	u := math.Float32bits(y)
	mask := uint32(int32(u|-u) >> 31)
	return math.Float32frombits(math.Float32bits(d) & mask)
}

// Add sums its inputs (the residual connection). With ReLU set it is
// max(Σ inputs, 0), the end of a residual block in one pass.
type Add struct {
	noParams
	ReLU bool
	y    *tensor.Tensor
	dx   *tensor.Tensor
	dxs  []*tensor.Tensor
}

func (a *Add) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	a.y = ensure(a.y, in[0].Shape...)
	a.dxs = append(a.dxs[:0], in...)
	parallel.For(len(a.y.Data), func(lo, hi, _ int) {
		ys := a.y.Data[lo:hi]
		if len(in) == 2 && a.ReLU {
			x1 := in[1].Data[lo:hi]
			for i, v := range in[0].Data[lo:hi] {
				ys[i] = max(v+x1[i], 0)
			}
			return
		}
		copy(ys, in[0].Data[lo:hi])
		for _, t := range in[1:] {
			for i, v := range t.Data[lo:hi] {
				ys[i] += v
			}
		}
		if a.ReLU {
			for i, v := range ys {
				ys[i] = max(v, 0)
			}
		}
	})
	return a.y
}

// Backward hands the same gradient to every input; the executor never
// writes into a gradient it receives, so sharing dy is safe.
func (a *Add) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	if a.ReLU {
		a.dx = ensure(a.dx, dy.Shape...)
		parallel.For(len(dy.Data), func(lo, hi, _ int) {
			dx := a.dx.Data[lo:hi]
			ys := a.y.Data[lo:hi]
			for i, d := range dy.Data[lo:hi] {
				dx[i] = passPositive(d, ys[i])
			}
		})
		dy = a.dx
	}
	for i := range a.dxs {
		a.dxs[i] = dy
	}
	return a.dxs
}

// Flatten reshapes N×C×H×W to N×(C·H·W) without copying.
type Flatten struct {
	noParams
	inShape []int
	y, dx   tensor.Tensor
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
	return []*tensor.Tensor{&f.dx}
}

// ShortcutA is the CIFAR ResNet "type A" shortcut of the reference
// (DownsampleA): a 1×1 average pool of the given stride (every stride-th
// pixel) followed by concatenation of zero channels up to OutC.
type ShortcutA struct {
	noParams
	InC, OutC, Stride int
	inShape           []int
	y, dx             *tensor.Tensor
}

func (s *ShortcutA) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	s.inShape = append(s.inShape[:0], x.Shape...)
	ho, wo := (h-1)/s.Stride+1, (w-1)/s.Stride+1
	s.y = ensure(s.y, n, s.OutC, ho, wo)
	parallel.For(n, func(lo, hi, _ int) {
		for i := lo; i < hi; i++ {
			for c := 0; c < s.OutC; c++ {
				dst := s.y.Data[((i*s.OutC)+c)*ho*wo:][:ho*wo]
				if c >= s.InC {
					clear(dst)
					continue
				}
				src := x.Data[((i*s.InC)+c)*h*w:][:h*w]
				for oh := 0; oh < ho; oh++ {
					for ow := 0; ow < wo; ow++ {
						dst[oh*wo+ow] = src[oh*s.Stride*w+ow*s.Stride]
					}
				}
			}
		}
	})
	return s.y
}

func (s *ShortcutA) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	n, h, w := s.inShape[0], s.inShape[2], s.inShape[3]
	ho, wo := dy.Shape[2], dy.Shape[3]
	s.dx = ensure(s.dx, s.inShape...)
	parallel.For(n, func(lo, hi, _ int) {
		for i := lo; i < hi; i++ {
			for c := 0; c < s.InC; c++ {
				dst := s.dx.Data[((i*s.InC)+c)*h*w:][:h*w]
				clear(dst)
				src := dy.Data[((i*s.OutC)+c)*ho*wo:][:ho*wo]
				for oh := 0; oh < ho; oh++ {
					for ow := 0; ow < wo; ow++ {
						dst[oh*s.Stride*w+ow*s.Stride] = src[oh*wo+ow]
					}
				}
			}
		}
	})
	return []*tensor.Tensor{s.dx}
}

// Identity passes its input through; the executor puts it where a ReLU was
// fused into the layer before it.
type Identity struct{ noParams }

func (Identity) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor { return in[0] }

func (Identity) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	return []*tensor.Tensor{dy}
}
