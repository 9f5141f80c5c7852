package nn

import (
	"math"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

// BatchNorm is PyTorch's BatchNorm1d (input N×C) and BatchNorm2d (N×C×H×W):
// batch statistics in training, running statistics in eval, running
// variance updated with the unbiased batch variance, momentum 0.1, eps 1e-5.
type BatchNorm struct {
	C                       int
	Eps, Momentum           float32
	Weight, Bias            *Param
	RunningMean, RunningVar *tensor.Tensor
	NumBatchesTracked       *tensor.Tensor // a scalar, stored as int64 in PyTorch files
	// ReLU fuses a following ReLU: the output is max(BN(x), 0) and Backward
	// takes the gradient with respect to that. It saves two passes over the
	// activation, which in a ResNet cost as much as the BatchNorm itself.
	ReLU bool

	prefix       string
	x, y, dx     *tensor.Tensor // x is kept to recompute x̂ in Backward rather than store it
	invStd, mean []float32
	trained      bool // last forward used batch statistics
}

// NewBatchNorm makes a BatchNorm with parameters named prefix.weight etc.
func NewBatchNorm(prefix string, c int) *BatchNorm {
	b := &BatchNorm{C: c, Eps: 1e-5, Momentum: 0.1, prefix: prefix}
	b.Weight = NewParam(prefix+".weight", c)
	b.Weight.Data.Fill(1)
	b.Bias = NewParam(prefix+".bias", c)
	b.RunningMean = tensor.New(c)
	b.RunningVar = tensor.New(c)
	b.RunningVar.Fill(1)
	b.NumBatchesTracked = tensor.New()
	b.invStd = make([]float32, c)
	b.mean = make([]float32, c)
	return b
}

// dims returns batch size and spatial size per channel.
func (b *BatchNorm) dims(x *tensor.Tensor) (n, hw int) {
	n = x.Shape[0]
	hw = 1
	for _, d := range x.Shape[2:] {
		hw *= d
	}
	return n, hw
}

func (b *BatchNorm) Forward(in []*tensor.Tensor, train bool) *tensor.Tensor {
	x := in[0]
	n, hw := b.dims(x)
	c := b.C
	b.y = ensure(b.y, x.Shape...)
	b.x = x
	b.trained = train
	if train {
		b.NumBatchesTracked.Data[0]++
	}
	gamma, beta := b.Weight.Data.Data, b.Bias.Data.Data
	parallel.For(c, func(lo, hi, _ int) {
		for ch := lo; ch < hi; ch++ {
			var mean, invStd float32
			if train {
				// Row sums in float32 (at most H·W terms), totals in float64:
				// batch statistics cover up to millions of values.
				var s float64
				for i := 0; i < n; i++ {
					var r float32
					for _, v := range x.Data[(i*c+ch)*hw : (i*c+ch+1)*hw] {
						r += v
					}
					s += float64(r)
				}
				cnt := float64(n * hw)
				m := s / cnt
				m32 := float32(m)
				var ss float64
				for i := 0; i < n; i++ {
					var r float32
					for _, v := range x.Data[(i*c+ch)*hw : (i*c+ch+1)*hw] {
						d := v - m32
						r += d * d
					}
					ss += float64(r)
				}
				v := ss / cnt
				mean = float32(m)
				invStd = float32(1 / math.Sqrt(v+float64(b.Eps)))
				mom := b.Momentum
				unbiased := v
				if cnt > 1 {
					unbiased = ss / (cnt - 1)
				}
				b.RunningMean.Data[ch] = (1-mom)*b.RunningMean.Data[ch] + mom*mean
				b.RunningVar.Data[ch] = (1-mom)*b.RunningVar.Data[ch] + mom*float32(unbiased)
			} else {
				mean = b.RunningMean.Data[ch]
				invStd = float32(1 / math.Sqrt(float64(b.RunningVar.Data[ch])+float64(b.Eps)))
			}
			b.mean[ch], b.invStd[ch] = mean, invStd
			g, bt := gamma[ch], beta[ch]
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs := x.Data[off : off+hw]
				ys := b.y.Data[off : off+hw]
				if b.ReLU {
					for j, v := range xs {
						ys[j] = max((v-mean)*invStd*g+bt, 0)
					}
					continue
				}
				for j, v := range xs {
					ys[j] = (v-mean)*invStd*g + bt
				}
			}
		}
	})
	return b.y
}

// Backward uses the batch-statistics gradient in training and the affine
// gradient of frozen statistics after an eval-mode forward.
func (b *BatchNorm) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	n, hw := b.dims(dy)
	c := b.C
	if needDx {
		b.dx = ensure(b.dx, dy.Shape...)
	}
	gamma := b.Weight.Data.Data
	gg, gb := b.Weight.Grad.Data, b.Bias.Grad.Data
	cnt := float32(n * hw)
	parallel.For(c, func(lo, hi, _ int) {
		for ch := lo; ch < hi; ch++ {
			// Row sums in float32 (at most H·W terms), totals in float64.
			mean, invStd := b.mean[ch], b.invStd[ch]
			var sdy, sdyx float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs := b.x.Data[off : off+hw]
				ys := b.y.Data[off : off+hw]
				var s1, s2 float32
				dys := dy.Data[off : off+hw]
				if b.ReLU {
					for j, d := range dys {
						d = passPositive(d, ys[j])
						s1 += d
						s2 += d * ((xs[j] - mean) * invStd)
					}
				} else {
					for j, d := range dys {
						s1 += d
						s2 += d * ((xs[j] - mean) * invStd)
					}
				}
				sdy += float64(s1)
				sdyx += float64(s2)
			}
			gg[ch], gb[ch] = float32(sdyx), float32(sdy)
			if !needDx {
				continue
			}
			k := gamma[ch] * b.invStd[ch]
			mdy, mdyx := float32(sdy)/cnt, float32(sdyx)/cnt
			if !b.trained {
				mdy, mdyx = 0, 0
			}
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs := b.x.Data[off : off+hw]
				ys := b.y.Data[off : off+hw]
				dx := b.dx.Data[off : off+hw]
				dys := dy.Data[off : off+hw]
				if b.ReLU {
					for j, d := range dys {
						dx[j] = k * (passPositive(d, ys[j]) - mdy - (xs[j]-mean)*invStd*mdyx)
					}
				} else {
					for j, d := range dys {
						dx[j] = k * (d - mdy - (xs[j]-mean)*invStd*mdyx)
					}
				}
			}
		}
	})
	if !needDx {
		return []*tensor.Tensor{nil}
	}
	return []*tensor.Tensor{b.dx}
}

func (b *BatchNorm) Params() []*Param { return []*Param{b.Weight, b.Bias} }

func (b *BatchNorm) Buffers() []tensor.Named {
	return []tensor.Named{
		{Name: b.prefix + ".running_mean", T: b.RunningMean},
		{Name: b.prefix + ".running_var", T: b.RunningVar},
		{Name: b.prefix + ".num_batches_tracked", T: b.NumBatchesTracked},
	}
}
