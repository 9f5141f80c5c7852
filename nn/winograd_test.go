package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

// ternQuant is a stand-in for ternary.Quantizer (which imports nn): it
// snaps weights to {−α, 0, α} and passes the gradient straight through
// where |w| < 1, so the Winograd path sees a ternary effective weight.
type ternQuant struct{ alpha, th float32 }

func (q ternQuant) Quantize(w, out []float32) {
	for i, v := range w {
		switch {
		case v > q.th:
			out[i] = q.alpha
		case v < -q.th:
			out[i] = -q.alpha
		default:
			out[i] = 0
		}
	}
}

func (q ternQuant) Backward(w, g, out []float32) {
	for i, v := range w {
		out[i] = g[i]
		if v >= 1 || v <= -1 {
			out[i] = 0
		}
	}
}

// withConvAlgo runs f with the algorithm a selected.
func withConvAlgo(a ConvAlgo, f func()) {
	old := SetConvAlgo(a)
	defer SetConvAlgo(old)
	f()
}

// maxRelDiff is max|got−want| over max|want|: the error of a float32
// result against another computed in a different order, relative to the
// tensor's scale.
func maxRelDiff(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

// convRun is one Forward and Backward of a convolution with fixed
// parameters, returning copies of y, dx, dW and dB.
func convRun(a ConvAlgo, conv *Conv2d, x, dy *tensor.Tensor) (y, dx, dw, db []float32) {
	withConvAlgo(a, func() {
		out := conv.Forward([]*tensor.Tensor{x}, true)
		if !conv.winoOn != (a == ConvIm2col) {
			panic(fmt.Sprintf("algorithm %v not taken", a))
		}
		y = append([]float32(nil), out.Data...)
		dx = append([]float32(nil), conv.Backward(dy, true)[0].Data...)
		dw = append([]float32(nil), conv.Weight.Grad.Data...)
		if conv.Bias != nil {
			db = append([]float32(nil), conv.Bias.Grad.Data...)
		}
	})
	return
}

// TestWinogradMatchesIm2col compares the Winograd convolution with the
// im2col one on random shapes: odd and even planes down to 1×1, channel
// counts up to 70, with and without bias and a ternary weight.
//
// Tolerance: both are float32 sums of up to 9·70 products in different
// orders; F(2,3)'s transforms add a few roundings on values up to 4× the
// inputs (the ½ of G is exact). The errors measured are below 1e-6 of each
// tensor's largest magnitude; 2e-5 leaves room for other shapes and
// instruction sets while a wrong tap or a dropped tile gives O(1e-1).
//
// F(4,3)'s transforms scale values by up to ~100 and G's ⅙ and 1/24 are
// inexact, so it rounds about ten times as much: see winograd4Tol.
func TestWinogradMatchesIm2col(t *testing.T) {
	for _, c := range []struct {
		a   ConvAlgo
		tol float64
	}{{ConvWinograd, 2e-5}, {ConvWinograd4, winograd4Tol}} {
		t.Run(c.a.String(), func(t *testing.T) { testWinogradMatchesIm2col(t, c.a, c.tol) })
	}
}

// winograd4Tol is F(4,3)'s tolerance in TestWinogradMatchesIm2col. The
// largest difference this test measures is 6.2e-6. Against a float64 direct
// convolution on the CIFAR and Fashion-MNIST layer shapes F(4,3) is off by
// 2.6e-6 to 4.6e-6 in y, 1.3e-6 to 2.8e-6 in dX and 1.5e-6 to 3.4e-6 in dW,
// where F(2,3) and im2col stay below 7e-7. 5e-5 leaves the same ~10× room
// as 2e-5 does for F(2,3), far below the O(1e-1) of a wrong tap.
const winograd4Tol = 5e-5

func testWinogradMatchesIm2col(t *testing.T, algo ConvAlgo, tol float64) {
	defer parallel.SetThreads(parallel.Threads())
	r := rand.New(rand.NewPCG(31, 32))
	sizes := []int{1, 2, 3, 5, 7, 8, 9, 14, 16, 28, 32}
	chans := []int{1, 2, 3, 5, 8, 16, 17, 33, 64, 70}
	var worst float64
	for it := 0; it < 40; it++ {
		parallel.SetThreads(1 + it%3)
		n := 1 + r.IntN(3)
		in, out := chans[r.IntN(len(chans))], chans[r.IntN(len(chans))]
		h, w := sizes[r.IntN(len(sizes))], sizes[r.IntN(len(sizes))]
		if in*out*h*w > 64*64*16*16 {
			h, w = min(h, 9), min(w, 9) // keeps the test fast
		}
		bias := it%2 == 1
		conv := NewConv2d("c", in, out, 3, 1, 1, bias)
		conv.Weight.Data = randTensor(r, out, in, 3, 3)
		if bias {
			conv.Bias.Data = randTensor(r, out)
		}
		if it%3 == 2 {
			conv.Quant = ternQuant{alpha: 0.7, th: 0.5}
		}
		x := randTensor(r, n, in, h, w)
		dy := randTensor(r, n, out, h, w)
		name := fmt.Sprintf("n=%d %d→%d %dx%d bias=%v quant=%v", n, in, out, h, w, bias, conv.Quant != nil)
		y0, dx0, dw0, db0 := convRun(ConvIm2col, conv, x, dy)
		y1, dx1, dw1, db1 := convRun(algo, conv, x, dy)
		for _, c := range []struct {
			what      string
			got, want []float32
		}{{"y", y1, y0}, {"dx", dx1, dx0}, {"dW", dw1, dw0}, {"dB", db1, db0}} {
			e := maxRelDiff(c.got, c.want)
			worst = math.Max(worst, e)
			if e > tol || math.IsNaN(e) {
				t.Errorf("%s: %s differs from im2col by %.3g of its largest value", name, c.what, e)
			}
		}
	}
	t.Logf("largest relative difference %.3g", worst)
}

// TestWinogradGrad checks the Winograd path's gradients against finite
// differences, the check the im2col path passes in TestConv2dGrad.
func TestWinogradGrad(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	r := rand.New(rand.NewPCG(33, 34))
	for _, algo := range []ConvAlgo{ConvWinograd, ConvWinograd4} {
		testWinogradGrad(t, r, algo)
	}
}

func testWinogradGrad(t *testing.T, r *rand.Rand, algo ConvAlgo) {
	withConvAlgo(algo, func() {
		for _, threads := range []int{1, 3} {
			parallel.SetThreads(threads)
			for _, c := range []struct{ in, out, h, w int }{{2, 3, 5, 5}, {3, 2, 4, 7}, {1, 1, 1, 1}, {2, 2, 2, 3}, {2, 2, 9, 6}} {
				for _, bias := range []bool{false, true} {
					conv := NewConv2d("conv", c.in, c.out, 3, 1, 1, bias)
					conv.Weight.Data = randTensor(r, conv.Weight.Data.Shape...)
					if bias {
						conv.Bias.Data = randTensor(r, c.out)
					}
					x := randTensor(r, 3, c.in, c.h, c.w)
					gradCheck(t, "winograd conv", conv, []*tensor.Tensor{x}, true, 1e-2, 1e-3)
					if !conv.winoOn {
						t.Fatal("Winograd path not taken")
					}
				}
			}
		}
	})
}

func TestParseConvAlgo(t *testing.T) {
	for _, a := range []ConvAlgo{ConvAuto, ConvIm2col, ConvWinograd, ConvWinograd4} {
		if got, err := ParseConvAlgo(a.String()); err != nil || got != a {
			t.Errorf("ParseConvAlgo(%q) = %v, %v", a.String(), got, err)
		}
	}
	if _, err := ParseConvAlgo("fft"); err == nil {
		t.Error("ParseConvAlgo(fft) gave no error")
	}
}

// BenchmarkConv3x3 times the 3×3 convolutions of a CIFAR ResNet's and of
// Fashion-MNIST's stages (batch 128) forward and backward, im2col against
// both Winograd algorithms, alternating in one process so that they see the
// same machine.
func BenchmarkConv3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, s := range []struct{ c, hw int }{{16, 32}, {32, 16}, {64, 8}, {16, 28}, {32, 14}, {64, 7}} {
		conv := NewConv2d("c", s.c, s.c, 3, 1, 1, false)
		conv.Weight.Data = randTensor(r, s.c, s.c, 3, 3)
		x := randTensor(r, 128, s.c, s.hw, s.hw)
		dy := randTensor(r, 128, s.c, s.hw, s.hw)
		in := []*tensor.Tensor{x}
		for _, a := range []ConvAlgo{ConvIm2col, ConvWinograd, ConvWinograd4} {
			b.Run(fmt.Sprintf("%dx%dx%d/%v/forward", s.c, s.hw, s.hw, a), func(b *testing.B) {
				withConvAlgo(a, func() {
					for i := 0; i < b.N; i++ {
						conv.Forward(in, true)
					}
				})
			})
			b.Run(fmt.Sprintf("%dx%dx%d/%v/backward", s.c, s.hw, s.hw, a), func(b *testing.B) {
				withConvAlgo(a, func() {
					conv.Forward(in, true)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						conv.Backward(dy, true)
					}
				})
			})
		}
	}
}

// TestWinogradDoesNotAllocate checks the Winograd path, as
// TestLayersDoNotAllocate does the others: once sized, a Forward and
// Backward allocate nothing.
func TestWinogradDoesNotAllocate(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	r := rand.New(rand.NewPCG(37, 38))
	conv := NewConv2d("c", 5, 4, 3, 1, 1, true)
	conv.Weight.Data = randTensor(r, 4, 5, 3, 3)
	conv.Quant = ternQuant{alpha: 0.7, th: 0.5}
	in := []*tensor.Tensor{randTensor(r, 4, 5, 7, 9)}
	for _, algo := range []ConvAlgo{ConvWinograd, ConvWinograd4} {
		withConvAlgo(algo, func() {
			for _, threads := range []int{1, 2, 3} {
				parallel.SetThreads(threads)
				step := func() {
					y := conv.Forward(in, true)
					conv.Backward(y, true)
				}
				for i := 0; i < 3; i++ {
					step()
				}
				if a := testing.AllocsPerRun(20, step); a != 0 {
					t.Errorf("%v threads=%d: %v allocations per forward+backward", algo, threads, a)
				}
			}
		})
	}
}
