package nn

import (
	"math"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/vec"
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

	prefix string
	x, y   *tensor.Tensor // x is kept to recompute x̂ (and the ReLU mask) in Backward rather than store them
	dx     *tensor.Tensor
	dxs    [1]*tensor.Tensor
	// Per channel, the transform of the last forward: its statistics and
	// the weight and bias it used. Backward recomputes the ReLU mask from x
	// with exactly these values, so it matches the forward output bit for bit.
	tf      []vec.BN
	trained bool // last forward used batch statistics

	// pre holds the input's plane statistics when its producer took them
	// (PlaneStats); preSet says they are for the next Forward, usePre that
	// the Forward in flight reads them.
	pre            []float32
	preSet, usePre bool

	// gsink is what GradPlaneStats handed out for the next Backward, and
	// gpre its buffer; the Backward uses it when the producer filled it.
	gsink GradStatsSink
	gpre  []float32
	useG  bool

	// The call in flight, read by the per-channel workers.
	dy     *tensor.Tensor
	n, hw  int
	needDx bool
	stats  [][]float32 // per-worker row statistics
	fwd    func(lo, hi, worker int)
	bwd    func(lo, hi, worker int)
	// With sum set, the forward writes sum = BN(x) + other (max(…, 0) with
	// sumReLU) in place of y: see Add.ForwardNormalized.
	sum, other *tensor.Tensor
	sumReLU    bool
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
	b.tf = make([]vec.BN, c)
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
	b.y = ensure(b.y, in[0].Shape...)
	b.forward(in[0], train)
	return b.y
}

// forwardAdd is Forward followed by Add{ReLU: relu} of other, in one pass
// that writes sum and never forms this layer's output: the statistics,
// running statistics and saved transform are Forward's, and Backward, which
// recomputes x̂ from x, follows as after Forward.
func (b *BatchNorm) forwardAdd(x, other, sum *tensor.Tensor, relu, train bool) {
	if b.ReLU {
		panic("nn: BatchNorm with a fused ReLU cannot feed a fused Add")
	}
	b.sum, b.other, b.sumReLU = sum, other, relu
	b.forward(x, train)
	b.sum, b.other = nil, nil
}

func (b *BatchNorm) forward(x *tensor.Tensor, train bool) {
	if b.fwd == nil {
		// Bound once: a method value made per call would be a fresh
		// allocation, since the pool's goroutines make it escape.
		b.fwd, b.bwd = b.forwardChannels, b.backwardChannels
	}
	b.n, b.hw = b.dims(x)
	b.x = x
	b.trained = train
	if train {
		b.NumBatchesTracked.Data[0]++
		b.stats = scratch(b.stats, parallel.Threads(), 3*b.n)
	}
	b.usePre = train && b.preSet && len(b.pre) == 3*b.C*b.n
	parallel.For(b.C, b.fwd)
	b.preSet, b.usePre = false, false
}

// PlaneStats returns a buffer for vec.RowStats of every plane of the next
// training-mode Forward's input, channel c of image r at [3(c·n+r)], and
// makes that Forward use it instead of reading its input once more. The
// layer that writes the input fills it while each plane is still in cache
// (Conv2d.StatsInto); the statistics are the same bits either way.
func (b *BatchNorm) PlaneStats(n int) []float32 {
	b.pre = grow(b.pre, 3*b.C*n)
	b.preSet = true
	return b.pre
}

// forwardChannels normalises channels [lo, hi). In training the statistics
// come from vec.RowStats: each image's plane is summed and then centred on
// its own mean while it is still in cache, and the planes are combined in
// float64 with Chan et al.'s update, Σ(x−m)² = Σ_r [Q_r + 2(m_r−m)·D_r +
// hw·(m_r−m)²]. That is as robust as the textbook two-pass variance (no
// sum-of-squares cancellation, whatever the mean) but reads x from memory once.
func (b *BatchNorm) forwardChannels(lo, hi, worker int) {
	n, hw, c := b.n, b.hw, b.C
	x := b.x.Data
	gamma, beta := b.Weight.Data.Data, b.Bias.Data.Data
	for ch := lo; ch < hi; ch++ {
		var mean, invStd float32
		if b.trained {
			var st []float32
			if b.usePre {
				st = b.pre[3*n*ch : 3*n*(ch+1)]
			} else {
				st = b.stats[worker][:3*n]
				vec.RowStats(x[ch*hw:], n, hw, c*hw, st)
			}
			var s float64
			for r := 0; r < n; r++ {
				s += float64(st[3*r])
			}
			cnt := float64(n * hw)
			m := s / cnt
			var m2 float64
			for r := 0; r < n; r++ {
				// The row mean exactly as the kernel centred on it.
				dm := float64(st[3*r]/float32(hw)) - m
				m2 += float64(st[3*r+1]) + 2*dm*float64(st[3*r+2]) + float64(hw)*dm*dm
			}
			m2 = max(m2, 0)
			v := m2 / cnt
			mean = float32(m)
			invStd = float32(1 / math.Sqrt(v+float64(b.Eps)))
			mom := b.Momentum
			unbiased := v
			if cnt > 1 {
				unbiased = m2 / (cnt - 1)
			}
			b.RunningMean.Data[ch] = (1-mom)*b.RunningMean.Data[ch] + mom*mean
			b.RunningVar.Data[ch] = (1-mom)*b.RunningVar.Data[ch] + mom*float32(unbiased)
		} else {
			mean = b.RunningMean.Data[ch]
			invStd = float32(1 / math.Sqrt(float64(b.RunningVar.Data[ch])+float64(b.Eps)))
		}
		t := vec.BN{Mean: mean, InvStd: invStd, Gamma: gamma[ch], Beta: beta[ch]}
		b.tf[ch] = t
		if b.sum != nil {
			vec.NormalizeAdd(b.sum.Data[ch*hw:], x[ch*hw:], b.other.Data[ch*hw:], n, hw, c*hw, t, b.sumReLU)
			continue
		}
		vec.Normalize(b.y.Data[ch*hw:], x[ch*hw:], n, hw, c*hw, t, b.ReLU)
	}
}

// EvalAffine sets a to what an eval-mode Forward does to each channel,
// y = Scale·x + Shift (then ReLU), for Conv2d.ForwardAffine to apply in
// place of this layer. Scale and Shift are reused when long enough.
func (b *BatchNorm) EvalAffine(a *Affine) {
	a.Scale, a.Shift, a.ReLU = grow(a.Scale, b.C), grow(a.Shift, b.C), b.ReLU
	gamma, beta := b.Weight.Data.Data, b.Bias.Data.Data
	for ch := range b.C {
		invStd := float32(1 / math.Sqrt(float64(b.RunningVar.Data[ch])+float64(b.Eps)))
		s := invStd * gamma[ch]
		a.Scale[ch] = s
		a.Shift[ch] = beta[ch] - b.RunningMean.Data[ch]*s
	}
}

// GradStatsSink lets the layer that writes a BatchNorm's incoming gradient
// take its statistics (vec.GradStats of every plane against the
// BatchNorm's input) while each plane is in cache, so that the BatchNorm's
// Backward reads the gradient once instead of twice. See GradPlaneStats.
type GradStatsSink struct {
	out      []float32 // channel c of image r at [2(c·n+r)]
	x        []float32 // the BatchNorm's input, n×c×hw
	tf       []vec.BN
	relu     bool
	n, c, hw int
	filled   bool
}

// Fits reports whether the sink is for gradients of n images of c planes
// of hw values.
func (s *GradStatsSink) Fits(n, c, hw int) bool {
	return s != nil && s.n == n && s.c == c && s.hw == hw
}

// Take writes the statistics of image i's gradient planes di (c×hw).
func (s *GradStatsSink) Take(di []float32, i int) {
	for ch := 0; ch < s.c; ch++ {
		s.TakePlane(di[ch*s.hw:], i, ch)
	}
}

// TakePlane writes the statistics of plane ch of image i, d.
func (s *GradStatsSink) TakePlane(d []float32, i, ch int) {
	vec.GradStats(d, s.x[(i*s.c+ch)*s.hw:], 1, s.hw, s.hw, s.tf[ch], s.relu, s.out[2*(ch*s.n+i):][:2])
}

// Filled marks every image's statistics as taken.
func (s *GradStatsSink) Filled() { s.filled = true }

// GradPlaneStats returns the sink for the gradient of the next Backward,
// after a Forward; the producer of that gradient fills it (Take for every
// image, then Filled), or leaves it and the Backward takes the statistics
// itself.
func (b *BatchNorm) GradPlaneStats() *GradStatsSink {
	if b.x == nil || len(b.tf) < b.C {
		return nil
	}
	b.gpre = grow(b.gpre, 2*b.C*b.n)
	b.gsink = GradStatsSink{out: b.gpre, x: b.x.Data, tf: b.tf, relu: b.ReLU, n: b.n, c: b.C, hw: b.hw}
	return &b.gsink
}

// Backward uses the batch-statistics gradient in training and the affine
// gradient of frozen statistics after an eval-mode forward.
func (b *BatchNorm) Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor {
	b.n, b.hw = b.dims(dy)
	if needDx {
		b.dx = ensure(b.dx, dy.Shape...)
	}
	b.dy, b.needDx = dy, needDx
	b.stats = scratch(b.stats, parallel.Threads(), 2*b.n)
	b.useG = b.gsink.filled && b.gsink.Fits(b.n, b.C, b.hw)
	parallel.For(b.C, b.bwd)
	b.gsink, b.useG = GradStatsSink{}, false
	b.dy = nil
	b.dxs[0] = nil
	if needDx {
		b.dxs[0] = b.dx
	}
	return b.dxs[:]
}

// backwardChannels computes, per channel, Σd and Σd·(x−mean) (row sums in
// float32, totals in float64), the weight and bias gradients, and then
// dx = γ·invStd·(d − mean(d) − x̂·mean(d·x̂)), as PyTorch does.
func (b *BatchNorm) backwardChannels(lo, hi, worker int) {
	n, hw, c := b.n, b.hw, b.C
	x, dy := b.x.Data, b.dy.Data
	gg, gb := b.Weight.Grad.Data, b.Bias.Grad.Data
	cnt := float64(n * hw)
	var st []float32
	for ch := lo; ch < hi; ch++ {
		t := b.tf[ch]
		off := ch * hw
		if b.useG {
			st = b.gpre[2*n*ch : 2*n*(ch+1)]
		} else {
			st = b.stats[worker][:2*n]
			vec.GradStats(dy[off:], x[off:], n, hw, c*hw, t, b.ReLU, st)
		}
		var sdy, sdyx float64
		for r := 0; r < n; r++ {
			sdy += float64(st[2*r])
			sdyx += float64(st[2*r+1])
		}
		is := float64(t.InvStd)
		gg[ch], gb[ch] = float32(sdyx*is), float32(sdy)
		if !b.needDx {
			continue
		}
		var mdy, r float32
		if b.trained {
			mdy, r = float32(sdy/cnt), float32(sdyx*is*is/cnt)
		}
		vec.GradApply(b.dx.Data[off:], dy[off:], x[off:], n, hw, c*hw, t, b.ReLU, r, mdy, t.Gamma*t.InvStd)
	}
}

func (b *BatchNorm) Params() []*Param { return []*Param{b.Weight, b.Bias} }

func (b *BatchNorm) Buffers() []tensor.Named {
	return []tensor.Named{
		{Name: b.prefix + ".running_mean", T: b.RunningMean},
		{Name: b.prefix + ".running_var", T: b.RunningVar},
		{Name: b.prefix + ".num_batches_tracked", T: b.NumBatchesTracked},
	}
}
