package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

// TestLayersDoNotAllocate checks that, once a layer has sized its buffers,
// Forward and Backward allocate nothing: the training step must not feed the
// garbage collector.
func TestLayersDoNotAllocate(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	r := rand.New(rand.NewPCG(20, 21))
	x4 := randTensor(r, 4, 3, 8, 8)
	x2 := randTensor(r, 4, 12)
	bnr := NewBatchNorm("bn", 3)
	bnr.ReLU = true
	conv := NewConv2d("c", 3, 4, 3, 1, 1, true)
	conv.Weight.Data = randTensor(r, 4, 3, 3, 3)
	cases := []struct {
		name string
		l    Layer
		in   []*tensor.Tensor
	}{
		{"conv3x3", conv, []*tensor.Tensor{x4}},
		{"conv3x3s2", NewConv2d("c", 3, 4, 3, 2, 1, false), []*tensor.Tensor{x4}},
		{"conv1x1", NewConv2d("c", 3, 4, 1, 1, 0, false), []*tensor.Tensor{x4}},
		{"batchnorm", NewBatchNorm("bn", 3), []*tensor.Tensor{x4}},
		{"batchnorm+relu", bnr, []*tensor.Tensor{x4}},
		{"batchnorm1d", NewBatchNorm("bn", 12), []*tensor.Tensor{x2}},
		{"linear", NewLinear("fc", 12, 5, true), []*tensor.Tensor{x2}},
		{"relu", &ReLU{}, []*tensor.Tensor{x4}},
		{"add+relu", &Add{ReLU: true}, []*tensor.Tensor{x4, x4}},
		{"add3", &Add{}, []*tensor.Tensor{x4, x4, x4}},
		{"shortcutA", &ShortcutA{InC: 3, OutC: 6, Stride: 2}, []*tensor.Tensor{x4}},
		{"maxpool", &MaxPool2d{K: 3, Stride: 2, Pad: 1}, []*tensor.Tensor{x4}},
		{"avgpool", &AvgPool2d{K: 2, Stride: 2}, []*tensor.Tensor{x4}},
		{"gap", &GlobalAvgPool{}, []*tensor.Tensor{x4}},
		{"flatten", &Flatten{}, []*tensor.Tensor{x4}},
		{"identity", &Identity{}, []*tensor.Tensor{x4}},
	}
	for _, threads := range []int{1, 2, 3} {
		parallel.SetThreads(threads)
		for _, c := range cases {
			step := func() {
				y := c.l.Forward(c.in, true)
				c.l.Backward(y, true)
			}
			for i := 0; i < 3; i++ {
				step() // sizes the buffers and starts the pool's goroutines
			}
			if a := testing.AllocsPerRun(20, step); a != 0 {
				t.Errorf("threads=%d %s: %v allocations per forward+backward", threads, c.name, a)
			}
		}
	}
}

// TestBatchNormStatsLargeMean checks the batch statistics where a naive
// sum-of-squares variance would lose every digit: values 1e4 + N(0, 1),
// planes of odd size, against float64 two-pass statistics.
func TestBatchNormStatsLargeMean(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 23))
	const n, c, h, w = 6, 3, 7, 5
	x := tensor.New(n, c, h, w)
	for i := range x.Data {
		x.Data[i] = float32(1e4 + r.NormFloat64()*(1+float64(i%c)))
	}
	b := NewBatchNorm("bn", c)
	b.Momentum = 1 // running stats become the batch stats
	y := b.Forward([]*tensor.Tensor{x}, true)
	for ch := 0; ch < c; ch++ {
		var s float64
		for i := 0; i < n; i++ {
			for _, v := range x.Data[(i*c+ch)*h*w:][:h*w] {
				s += float64(v)
			}
		}
		cnt := float64(n * h * w)
		m := s / cnt
		var ss, ys, yss float64
		for i := 0; i < n; i++ {
			off := (i*c + ch) * h * w
			for j, v := range x.Data[off : off+h*w] {
				ss += (float64(v) - m) * (float64(v) - m)
				yv := float64(y.Data[off+j])
				ys += yv
				yss += yv * yv
			}
		}
		if got := float64(b.RunningMean.Data[ch]); math.Abs(got-m) > 1e-3 {
			t.Errorf("channel %d: mean %v, want %v", ch, got, m)
		}
		want := ss / (cnt - 1)
		if got := float64(b.RunningVar.Data[ch]); math.Abs(got-want) > 1e-4*want {
			t.Errorf("channel %d: unbiased variance %v, want %v", ch, got, want)
		}
		// The output is standardised: mean 0, biased variance var/(var+eps).
		if ym := ys / cnt; math.Abs(ym) > 1e-3 {
			t.Errorf("channel %d: output mean %v", ch, ym)
		}
		if yv := yss / cnt; math.Abs(yv-1) > 1e-3 {
			t.Errorf("channel %d: output variance %v", ch, yv)
		}
	}
}
