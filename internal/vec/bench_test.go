package vec

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkIm2colSame times the im2col of one CIFAR ResNet image per stage
// (3×3, pad 1), assembly against the twin.
func BenchmarkIm2colSame(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ c, hw int }{{16, 32}, {32, 16}, {64, 8}} {
		x := randSlice(r, s.c*s.hw*s.hw, 0)
		col := make([]float32, 9*len(x))
		for _, impl := range []struct {
			name string
			f    func(col, x []float32, ch, h, w, kh, kw, pad, lo, hi int)
		}{{"asm", asmKernels.im2colSame}, {"go", goKernels.im2colSame}} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s.c, s.hw, s.hw, impl.name), func(b *testing.B) {
				b.SetBytes(int64(4 * len(col)))
				for i := 0; i < b.N; i++ {
					impl.f(col, x, s.c, s.hw, s.hw, 3, 3, 1, 0, s.hw)
				}
			})
		}
	}
}

// BenchmarkBN times the BatchNorm kernels on one channel of a batch of 128
// 16×16 planes, assembly against the twin.
func BenchmarkBN(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const rows, cols, c = 128, 256, 32
	stride := c * cols
	x := randSlice(r, rows*stride, 0.5)
	dy := randSlice(r, rows*stride, 0)
	y := make([]float32, len(x))
	out := make([]float32, 3*rows)
	for _, impl := range []struct {
		name string
		k    kernels
	}{{"asm", asmKernels}, {"go", goKernels}} {
		k := impl.k
		b.Run("rowStats/"+impl.name, func(b *testing.B) {
			b.SetBytes(4 * rows * cols)
			for i := 0; i < b.N; i++ {
				k.rowStats(x[(i%c)*cols:], rows, cols, stride, out)
			}
		})
		b.Run("normalizeReLU/"+impl.name, func(b *testing.B) {
			b.SetBytes(4 * rows * cols)
			for i := 0; i < b.N; i++ {
				k.normalizeReLU(y[(i%c)*cols:], x[(i%c)*cols:], rows, cols, stride, 0.5, 1.1, 0.9, 0.1)
			}
		})
		b.Run("gradStatsReLU/"+impl.name, func(b *testing.B) {
			b.SetBytes(4 * rows * cols)
			for i := 0; i < b.N; i++ {
				k.gradStatsReLU(dy[(i%c)*cols:], x[(i%c)*cols:], rows, cols, stride, 0.5, 1.1, 0.9, 0.1, out)
			}
		})
		b.Run("gradApplyReLU/"+impl.name, func(b *testing.B) {
			b.SetBytes(4 * rows * cols)
			for i := 0; i < b.N; i++ {
				k.gradApplyReLU(y[(i%c)*cols:], dy[(i%c)*cols:], x[(i%c)*cols:], rows, cols, stride, 0.5, 0.01, 0.02, 1.1, 1.1, 0.9, 0.1)
			}
		})
	}
}
