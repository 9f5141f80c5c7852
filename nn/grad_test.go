package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

func randTensor(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

// loss is Σ y·proj in float64, so dL/dy = proj.
func loss(l Layer, in []*tensor.Tensor, proj []float32, train bool) float64 {
	y := l.Forward(in, train)
	var s float64
	for i, v := range y.Data {
		s += float64(v) * float64(proj[i])
	}
	return s
}

// gradCheck compares Backward with central differences for every input
// element and every parameter element of a layer.
func gradCheck(t *testing.T, name string, l Layer, in []*tensor.Tensor, train bool, eps, tol float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	y := l.Forward(in, train)
	proj := make([]float32, len(y.Data))
	for i := range proj {
		proj[i] = float32(r.NormFloat64())
	}
	dy, _ := tensor.From(append([]float32(nil), proj...), y.Shape...)
	dxs := l.Backward(dy, true)
	// Snapshot analytic gradients before the finite differences overwrite state.
	var analytic [][]float32
	var targets [][]float32
	var labels []string
	for i, dx := range dxs {
		analytic = append(analytic, append([]float32(nil), dx.Data...))
		targets = append(targets, in[i].Data)
		labels = append(labels, "input")
	}
	for _, p := range l.Params() {
		analytic = append(analytic, append([]float32(nil), p.Grad.Data...))
		targets = append(targets, p.Data.Data)
		labels = append(labels, p.Name)
	}
	// BatchNorm running statistics change with every training forward;
	// they do not affect the training output, so the check is unaffected.
	for k, target := range targets {
		var maxErr, maxRef float64
		for i := range target {
			// A step may cross a ReLU/max kink; the closest of three step
			// sizes avoids it, and a wrong gradient matches none of them.
			old := target[i]
			num, best := 0.0, math.Inf(1)
			for _, e := range []float64{eps, eps / 3, eps / 10} {
				target[i] = old + float32(e)
				lp := loss(l, in, proj, train)
				target[i] = old - float32(e)
				lm := loss(l, in, proj, train)
				target[i] = old
				d := (lp - lm) / (2 * e)
				if diff := math.Abs(d - float64(analytic[k][i])); diff < best {
					num, best = d, diff
				}
			}
			maxErr = math.Max(maxErr, math.Abs(num-float64(analytic[k][i])))
			maxRef = math.Max(maxRef, math.Abs(num))
		}
		if maxErr > tol*math.Max(1, maxRef) {
			t.Errorf("%s: %s gradient off by %.3g (largest gradient %.3g)", name, labels[k], maxErr, maxRef)
		}
	}
}

func TestConv2dGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, threads := range []int{1, 3} {
		parallel.SetThreads(threads)
		for _, c := range []struct{ in, out, k, s, p, h, w int }{
			{2, 3, 3, 1, 1, 5, 5},
			{3, 2, 3, 2, 1, 7, 6},
			{2, 4, 1, 1, 0, 4, 3},
			{2, 2, 1, 2, 0, 5, 5},
			{1, 2, 5, 2, 2, 9, 8},
			{2, 3, 2, 3, 0, 8, 7},
		} {
			for _, bias := range []bool{false, true} {
				conv := NewConv2d("conv", c.in, c.out, c.k, c.s, c.p, bias)
				conv.Weight.Data = randTensor(r, conv.Weight.Data.Shape...)
				if bias {
					conv.Bias.Data = randTensor(r, c.out)
				}
				x := randTensor(r, 3, c.in, c.h, c.w)
				gradCheck(t, "conv2d", conv, []*tensor.Tensor{x}, true, 1e-2, 1e-3)
			}
		}
	}
	parallel.SetThreads(0)
}

func TestLinearGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, bias := range []bool{false, true} {
		l := NewLinear("fc", 7, 5, bias)
		l.Weight.Data = randTensor(r, 5, 7)
		x := randTensor(r, 4, 7)
		gradCheck(t, "linear", l, []*tensor.Tensor{x}, true, 1e-2, 1e-3)
	}
}

func TestBatchNormGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][]int{{4, 3, 3, 2}, {6, 5}} {
		for _, train := range []bool{true, false} {
			b := NewBatchNorm("bn", shape[1])
			b.Weight.Data = randTensor(r, shape[1])
			b.Bias.Data = randTensor(r, shape[1])
			if !train {
				for i := range b.RunningVar.Data {
					b.RunningMean.Data[i] = float32(r.NormFloat64())
					b.RunningVar.Data[i] = 0.5 + float32(r.Float64())
				}
			}
			x := randTensor(r, shape...)
			gradCheck(t, "batchnorm", b, []*tensor.Tensor{x}, train, 1e-3, 2e-3)
			b.ReLU = true
			gradCheck(t, "batchnorm+relu", b, []*tensor.Tensor{x}, train, 1e-3, 2e-3)
		}
	}
}

// awayFromKinks returns values whose magnitudes are at least 0.1 apart from
// each other and from 0, so finite differences never cross a ReLU or max kink.
func awayFromKinks(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	perm := r.Perm(len(t.Data))
	for i := range t.Data {
		v := 0.1 * float32(perm[i]+1)
		if r.IntN(2) == 0 {
			v = -v
		}
		t.Data[i] = v
	}
	return t
}

func TestParameterFreeGrads(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	gradCheck(t, "relu", &ReLU{}, []*tensor.Tensor{awayFromKinks(r, 2, 3, 4, 4)}, true, 1e-2, 1e-3)
	gradCheck(t, "maxpool", &MaxPool2d{K: 3, Stride: 2, Pad: 1}, []*tensor.Tensor{awayFromKinks(r, 2, 2, 7, 6)}, true, 1e-2, 1e-3)
	gradCheck(t, "maxpool2", &MaxPool2d{K: 2, Stride: 2}, []*tensor.Tensor{awayFromKinks(r, 2, 2, 5, 4)}, true, 1e-2, 1e-3)
	gradCheck(t, "avgpool", &AvgPool2d{K: 3, Stride: 2, Pad: 1}, []*tensor.Tensor{randTensor(r, 2, 2, 7, 6)}, true, 1e-2, 1e-3)
	gradCheck(t, "gap", &GlobalAvgPool{}, []*tensor.Tensor{randTensor(r, 2, 3, 4, 5)}, true, 1e-2, 1e-3)
	gradCheck(t, "shortcutA", &ShortcutA{InC: 2, OutC: 4, Stride: 2}, []*tensor.Tensor{randTensor(r, 2, 2, 5, 6)}, true, 1e-2, 1e-3)
	gradCheck(t, "flatten", &Flatten{}, []*tensor.Tensor{randTensor(r, 2, 3, 2, 2)}, true, 1e-2, 1e-3)
	gradCheck(t, "add", &Add{}, []*tensor.Tensor{randTensor(r, 2, 3), randTensor(r, 2, 3)}, true, 1e-2, 1e-3)
	gradCheck(t, "add+relu", &Add{ReLU: true}, []*tensor.Tensor{randTensor(r, 2, 3, 3), randTensor(r, 2, 3, 3)}, true, 1e-2, 1e-3)
	gradCheck(t, "add3", &Add{}, []*tensor.Tensor{randTensor(r, 2, 3), randTensor(r, 2, 3), randTensor(r, 2, 3)}, true, 1e-2, 1e-3)
	gradCheck(t, "identity", &Identity{}, []*tensor.Tensor{randTensor(r, 2, 3)}, true, 1e-2, 1e-3)
}

func TestCrossEntropyGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	logits := randTensor(r, 5, 4)
	labels := []int32{0, 3, 1, 1, 2}
	var ce CrossEntropy
	ce.Forward(logits, labels)
	g := append([]float32(nil), ce.Backward().Data...)
	const eps = 1e-2
	for i := range logits.Data {
		old := logits.Data[i]
		logits.Data[i] = old + eps
		lp := ce.Forward(logits, labels)
		logits.Data[i] = old - eps
		lm := ce.Forward(logits, labels)
		logits.Data[i] = old
		if num := (lp - lm) / (2 * eps); math.Abs(num-float64(g[i])) > 1e-4 {
			t.Fatalf("cross-entropy grad[%d] = %g, numeric %g", i, g[i], num)
		}
	}
}

func TestCrossEntropyValue(t *testing.T) {
	// Two classes with logits 0 and ln 3: p = 1/4, 3/4.
	logits, _ := tensor.From([]float32{0, float32(math.Log(3)), 0, float32(math.Log(3))}, 2, 2)
	var ce CrossEntropy
	got := ce.Forward(logits, []int32{0, 1})
	want := (math.Log(4) + math.Log(4.0/3)) / 2
	if math.Abs(got-want) > 1e-6 {
		t.Fatalf("loss %g, want %g", got, want)
	}
	if h := TopK(logits, []int32{0, 1}, 1); h != 1 {
		t.Fatalf("top-1 hits %d, want 1", h)
	}
	if h := TopK(logits, []int32{0, 1}, 2); h != 2 {
		t.Fatalf("top-2 hits %d, want 2", h)
	}
}

func TestBatchNormRunningStats(t *testing.T) {
	b := NewBatchNorm("bn", 1)
	x, _ := tensor.From([]float32{1, 2, 3, 6}, 4, 1)
	b.Forward([]*tensor.Tensor{x}, true)
	// mean 3, unbiased variance (4+1+0+9)/3 = 14/3.
	if m := b.RunningMean.Data[0]; math.Abs(float64(m)-0.3) > 1e-6 {
		t.Fatalf("running_mean %g, want 0.3", m)
	}
	if v := b.RunningVar.Data[0]; math.Abs(float64(v)-(0.9+0.1*14.0/3)) > 1e-6 {
		t.Fatalf("running_var %g", v)
	}
	if b.NumBatchesTracked.Data[0] != 1 {
		t.Fatal("num_batches_tracked not counted")
	}
	y := b.Forward([]*tensor.Tensor{x}, false)
	want := (1 - 0.3) / math.Sqrt(0.9+0.1*14.0/3+1e-5)
	if math.Abs(float64(y.Data[0])-want) > 1e-5 {
		t.Fatalf("eval output %g, want %g", y.Data[0], want)
	}
}

// im2colRef is the definition, element by element.
func im2colRef(x, col []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	for c := 0; c < ch; c++ {
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				for oh := 0; oh < ho; oh++ {
					for ow := 0; ow < wo; ow++ {
						ih, iw := oh*stride-pad+ki, ow*stride-pad+kj
						v := float32(0)
						if ih >= 0 && ih < h && iw >= 0 && iw < w {
							v = x[(c*h+ih)*w+iw]
						}
						col[((c*kh+ki)*kw+kj)*ho*wo+oh*wo+ow] = v
					}
				}
			}
		}
	}
}

// TestIm2colPaths checks the fast paths against the definition on odd
// shapes, including planes smaller than the kernel, and col2im as its adjoint
// (<Im2col(x), y> = <x, col2im(y)>).
func TestIm2colPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, c := range []struct{ ch, h, w, k, s, p int }{
		{2, 5, 5, 3, 1, 1}, {1, 1, 1, 3, 1, 1}, {3, 2, 7, 3, 1, 1}, {2, 7, 2, 5, 1, 2}, {1, 3, 3, 5, 1, 2},
		{2, 6, 5, 3, 2, 1}, {1, 4, 4, 1, 1, 0}, {2, 8, 9, 3, 1, 0}, {1, 9, 9, 7, 1, 3}, {2, 4, 3, 2, 1, 1},
		{1, 32, 32, 7, 2, 3}, {2, 8, 7, 1, 2, 0}, {1, 11, 10, 5, 3, 2}, {2, 16, 16, 3, 2, 1},
	} {
		ho, wo := (c.h+2*c.p-c.k)/c.s+1, (c.w+2*c.p-c.k)/c.s+1
		x := randTensor(r, c.ch*c.h*c.w).Data
		n := c.ch * c.k * c.k * ho * wo
		got, want := make([]float32, n), make([]float32, n)
		for i := range got {
			got[i] = 99 // stale scratch must be overwritten
		}
		Im2col(x, got, c.ch, c.h, c.w, c.k, c.k, c.s, c.p, ho, wo)
		im2colRef(x, want, c.ch, c.h, c.w, c.k, c.k, c.s, c.p, ho, wo)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%+v: im2col[%d] = %g, want %g", c, i, got[i], want[i])
			}
		}
		y := randTensor(r, n).Data
		var lhs float64
		for i := range y {
			lhs += float64(y[i]) * float64(want[i])
		}
		back := make([]float32, len(x))
		col2im(append([]float32(nil), y...), back, c.ch, c.h, c.w, c.k, c.k, c.s, c.p, ho, wo)
		var rhs float64
		for i := range x {
			rhs += float64(x[i]) * float64(back[i])
		}
		if math.Abs(lhs-rhs) > 1e-3*math.Max(1, math.Abs(lhs)) {
			t.Fatalf("%+v: col2im is not the adjoint: %g vs %g", c, lhs, rhs)
		}
	}
}
