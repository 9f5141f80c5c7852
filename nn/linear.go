package nn

import (
	"github.com/tnn-go/tnn/gemm"
	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

// Linear is PyTorch's Linear: y = x·Wᵀ + b with W of shape Out × In.
type Linear struct {
	In, Out int
	Weight  *Param
	Bias    *Param // nil without bias
	Quant   WeightQuantizer

	wq    []float32
	gq    []float32
	x     *tensor.Tensor
	y, dx *tensor.Tensor
	dxs   [1]*tensor.Tensor

	// The call in flight, for the workers bound once in fwd, dwFn, dxFn.
	w               []float32
	dy              *tensor.Tensor
	fwd, dwFn, dxFn func(lo, hi, worker int)
}

func (l *Linear) bind() {
	if l.fwd == nil {
		l.fwd, l.dwFn, l.dxFn = l.forwardRows, l.weightGradRows, l.inputGradRows
	}
}

// NewLinear makes a Linear layer with parameters prefix.weight and prefix.bias.
func NewLinear(prefix string, in, out int, bias bool) *Linear {
	l := &Linear{In: in, Out: out}
	l.Weight = NewParam(prefix+".weight", out, in)
	if bias {
		l.Bias = NewParam(prefix+".bias", out)
	}
	return l
}

// EffectiveWeight returns the weight used by the forward pass.
func (l *Linear) EffectiveWeight() []float32 {
	if l.Quant == nil {
		return l.Weight.Data.Data
	}
	if len(l.wq) != l.Weight.Data.Len() {
		l.wq = make([]float32, l.Weight.Data.Len())
	}
	l.Quant.Quantize(l.Weight.Data.Data, l.wq)
	return l.wq
}

func (l *Linear) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	l.bind()
	x := in[0]
	n := x.Shape[0]
	l.x = x
	l.y = ensure(l.y, n, l.Out)
	l.w = l.EffectiveWeight()
	parallel.For(n, l.fwd)
	return l.y
}

func (l *Linear) forwardRows(lo, hi, _ int) {
	rows := hi - lo
	y := l.y.Data[lo*l.Out : hi*l.Out]
	gemm.Sgemm(false, true, rows, l.Out, l.In, 1, l.x.Data[lo*l.In:hi*l.In], l.In, l.w, l.In, 0, y, l.Out)
	if l.Bias != nil {
		for r := 0; r < rows; r++ {
			yr := y[r*l.Out : (r+1)*l.Out]
			for j, b := range l.Bias.Data.Data {
				yr[j] += b
			}
		}
	}
}

func (l *Linear) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	l.bind()
	n := dy.Shape[0]
	l.w = l.Weight.Data.Data
	if l.Quant != nil {
		if len(l.gq) != len(l.Weight.Grad.Data) {
			l.gq = make([]float32, len(l.Weight.Grad.Data))
		}
		l.w = l.wq
	}
	l.dy = dy
	// dW = dyᵀ·x, split over output rows so no reduction is needed.
	parallel.For(l.Out, l.dwFn)
	if l.Quant != nil {
		l.Quant.Backward(l.Weight.Data.Data, l.gq, l.Weight.Grad.Data)
	}
	l.dxs[0] = nil
	if needDx {
		l.dx = ensure(l.dx, l.x.Shape...)
		parallel.For(n, l.dxFn)
		l.dxs[0] = l.dx
	}
	l.dy = nil
	return l.dxs[:]
}

func (l *Linear) weightGradRows(lo, hi, _ int) {
	dy := l.dy
	n := dy.Shape[0]
	gw := l.Weight.Grad.Data
	if l.Quant != nil {
		gw = l.gq
	}
	gemm.Sgemm(true, false, hi-lo, l.In, n, 1, dy.Data[lo:], l.Out, l.x.Data, l.In, 0, gw[lo*l.In:hi*l.In], l.In)
	if l.Bias != nil {
		gb := l.Bias.Grad.Data
		for j := lo; j < hi; j++ {
			var s float32
			for i := 0; i < n; i++ {
				s += dy.Data[i*l.Out+j]
			}
			gb[j] = s
		}
	}
}

func (l *Linear) inputGradRows(lo, hi, _ int) {
	dy := l.dy
	gemm.Sgemm(false, false, hi-lo, l.In, l.Out, 1, dy.Data[lo*l.Out:hi*l.Out], l.Out, l.w, l.In, 0, l.dx.Data[lo*l.In:hi*l.In], l.In)
}

func (l *Linear) Params() []*Param {
	if l.Bias != nil {
		return []*Param{l.Weight, l.Bias}
	}
	return []*Param{l.Weight}
}

func (l *Linear) Buffers() []tensor.Named { return nil }
