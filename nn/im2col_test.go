package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/tensor"
)

// im2colScalar and col2imScalar are the element-by-element loops that the
// stride-2 path replaced, kept as its reference: the new path must give the
// same bits, col2im included (same additions in the same order).
func im2colScalar(x, col []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	hw, ohw := h*w, ho*wo
	for c := 0; c < ch; c++ {
		xc := x[c*hw:][:hw]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*ohw:][:ohw]
				lo, hi := validSpan(w, wo, kj, stride, pad)
				for oh := 0; oh < ho; oh++ {
					ih := oh*stride - pad + ki
					dst := row[oh*wo : (oh+1)*wo]
					if ih < 0 || ih >= h {
						clear(dst)
						continue
					}
					src := xc[ih*w : (ih+1)*w]
					for ow := range dst[:lo] {
						dst[ow] = 0
					}
					iw := lo*stride - pad + kj
					for ow := lo; ow < hi; ow++ {
						dst[ow] = src[iw]
						iw += stride
					}
					for ow := hi; ow < wo; ow++ {
						dst[ow] = 0
					}
				}
			}
		}
	}
}

func col2imScalar(col, x []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	clear(x)
	hw, ohw := h*w, ho*wo
	for c := 0; c < ch; c++ {
		xc := x[c*hw:][:hw]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*ohw:][:ohw]
				lo, hi := validSpan(w, wo, kj, stride, pad)
				for oh := 0; oh < ho; oh++ {
					ih := oh*stride - pad + ki
					if ih < 0 || ih >= h {
						continue
					}
					dst := xc[ih*w : (ih+1)*w]
					src := row[oh*wo : (oh+1)*wo]
					iw := lo*stride - pad + kj
					for _, v := range src[lo:hi] {
						dst[iw] += v
						iw += stride
					}
				}
			}
		}
	}
}

// fillStride2 fills s with values of mixed magnitudes and signed zeros, so
// that a change in the order of col2im's additions, or a sum started from
// the first term instead of +0, changes bits.
func fillStride2(r *rand.Rand, s []float32) {
	for i := range s {
		switch r.IntN(6) {
		case 0:
			s[i] = float32(math.Copysign(0, -1))
		case 1:
			s[i] = float32(r.NormFloat64() * 1e4)
		default:
			s[i] = float32(r.NormFloat64())
		}
	}
}

func firstBitDiff(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestStride2MatchesScalar checks the phase-split im2col and col2im of
// stride 2 against the scalar loops bit for bit on odd and even planes of
// 1..20, 1..5 channels, kernels of 1..5 (rectangular too) and paddings 0..2,
// with stale scratch and outputs.
func TestStride2MatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for h := 1; h <= 20; h++ {
		for w := 1; w <= 20; w++ {
			for kh := 1; kh <= 5; kh++ {
				for pad := 0; pad <= 2; pad++ {
					ch, kw := 1+r.IntN(5), 1+r.IntN(5)
					ho, wo := (h+2*pad-kh)/2+1, (w+2*pad-kw)/2+1
					if h+2*pad < kh || w+2*pad < kw {
						continue
					}
					what := fmt.Sprintf("ch=%d %dx%d k=%dx%d pad=%d", ch, h, w, kh, kw, pad)
					x := make([]float32, ch*h*w)
					fillStride2(r, x)
					n := ch * kh * kw * ho * wo
					got, want := make([]float32, n), make([]float32, n)
					phase := make([]float32, phaseLen(h, w, kh, kw, 2, pad, ho, wo))
					for i := range phase {
						phase[i] = float32(math.NaN()) // stale scratch
					}
					for i := range got {
						got[i] = 99
					}
					im2col(x, got, phase, ch, h, w, kh, kw, 2, pad, ho, wo)
					im2colScalar(x, want, ch, h, w, kh, kw, 2, pad, ho, wo)
					if i := firstBitDiff(got, want); i >= 0 {
						t.Fatalf("%s: im2col[%d] = %g, want %g", what, i, got[i], want[i])
					}

					col := make([]float32, n)
					fillStride2(r, col)
					dx, dxWant := make([]float32, len(x)), make([]float32, len(x))
					for i := range dx {
						dx[i] = 99
					}
					for i := range phase {
						phase[i] = float32(math.NaN())
					}
					col2imBuf(col, dx, phase, ch, h, w, kh, kw, 2, pad, ho, wo)
					col2imScalar(col, dxWant, ch, h, w, kh, kw, 2, pad, ho, wo)
					if i := firstBitDiff(dx, dxWant); i >= 0 {
						t.Fatalf("%s: col2im[%d] = %g (%#x), want %g (%#x)", what, i,
							dx[i], math.Float32bits(dx[i]), dxWant[i], math.Float32bits(dxWant[i]))
					}
				}
			}
		}
	}
	// The exported Im2col allocates its own scratch.
	x := randTensor(r, 3*9*8).Data
	got, want := make([]float32, 3*9*5*4), make([]float32, 3*9*5*4)
	Im2col(x, got, 3, 9, 8, 3, 3, 2, 1, 5, 4)
	im2colScalar(x, want, 3, 9, 8, 3, 3, 2, 1, 5, 4)
	if i := firstBitDiff(got, want); i >= 0 {
		t.Fatalf("Im2col[%d] = %g, want %g", i, got[i], want[i])
	}
}

// BenchmarkIm2colStride2 and BenchmarkCol2imStride2 time one image of the
// CIFAR ResNet's stride-2 convolutions, the phase-split path against the
// scalar loops it replaced.
func BenchmarkIm2colStride2(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ c, hw int }{{16, 32}, {32, 16}} {
		ho := (s.hw-1)/2 + 1
		x := randTensor(r, s.c*s.hw*s.hw).Data
		col := make([]float32, s.c*9*ho*ho)
		phase := make([]float32, phaseLen(s.hw, s.hw, 3, 3, 2, 1, ho, ho))
		b.Run(fmt.Sprintf("%dx%dx%d/phases", s.c, s.hw, s.hw), func(b *testing.B) {
			b.SetBytes(int64(4 * len(col)))
			for i := 0; i < b.N; i++ {
				im2col(x, col, phase, s.c, s.hw, s.hw, 3, 3, 2, 1, ho, ho)
			}
		})
		b.Run(fmt.Sprintf("%dx%dx%d/scalar", s.c, s.hw, s.hw), func(b *testing.B) {
			b.SetBytes(int64(4 * len(col)))
			for i := 0; i < b.N; i++ {
				im2colScalar(x, col, s.c, s.hw, s.hw, 3, 3, 2, 1, ho, ho)
			}
		})
	}
}

func BenchmarkCol2imStride2(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ c, hw int }{{16, 32}, {32, 16}} {
		ho := (s.hw-1)/2 + 1
		x := make([]float32, s.c*s.hw*s.hw)
		col := randTensor(r, s.c*9*ho*ho).Data
		phase := make([]float32, phaseLen(s.hw, s.hw, 3, 3, 2, 1, ho, ho))
		b.Run(fmt.Sprintf("%dx%dx%d/phases", s.c, s.hw, s.hw), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				col2imBuf(col, x, phase, s.c, s.hw, s.hw, 3, 3, 2, 1, ho, ho)
			}
		})
		b.Run(fmt.Sprintf("%dx%dx%d/scalar", s.c, s.hw, s.hw), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				col2imScalar(col, x, s.c, s.hw, s.hw, 3, 3, 2, 1, ho, ho)
			}
		})
	}
}

// BenchmarkConvStride2 times the CIFAR ResNet's two stride-2 3×3
// convolutions (batch 128) forward and backward.
func BenchmarkConvStride2(b *testing.B) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, s := range []struct{ c, hw int }{{16, 32}, {32, 16}} {
		conv := NewConv2d("c", s.c, 2*s.c, 3, 2, 1, false)
		conv.Weight.Data = randTensor(r, 2*s.c, s.c, 3, 3)
		x := randTensor(r, 128, s.c, s.hw, s.hw)
		dy := randTensor(r, 128, 2*s.c, s.hw/2, s.hw/2)
		in := []*tensor.Tensor{x}
		b.Run(fmt.Sprintf("%d-%dx%d/forward", s.c, s.hw, s.hw), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				conv.Forward(in, true)
			}
		})
		b.Run(fmt.Sprintf("%d-%dx%d/backward", s.c, s.hw, s.hw), func(b *testing.B) {
			conv.Forward(in, true)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				conv.Backward(dy, true)
			}
		})
	}
}
