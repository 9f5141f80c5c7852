package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/tensor"
)

// BenchmarkIm2col times Im2col of one image for the convolutions of a CIFAR
// ResNet: 3×3 "same" ones per stage and the stride-2 ones that open stages 2-3.
func BenchmarkIm2col(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ c, hw, stride int }{{16, 32, 1}, {32, 16, 1}, {64, 8, 1}, {16, 32, 2}, {32, 16, 2}} {
		ho := (s.hw+2-3)/s.stride + 1
		x := randTensor(r, s.c*s.hw*s.hw).Data
		col := make([]float32, s.c*9*ho*ho)
		b.Run(fmt.Sprintf("%dx%dx%d/s%d", s.c, s.hw, s.hw, s.stride), func(b *testing.B) {
			b.SetBytes(int64(4 * len(col)))
			for i := 0; i < b.N; i++ {
				Im2col(x, col, s.c, s.hw, s.hw, 3, 3, s.stride, 1, ho, ho)
			}
		})
	}
}

// BenchmarkCol2im times the adjoint for the stride-2 convolutions.
func BenchmarkCol2im(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ c, hw int }{{16, 32}, {32, 16}} {
		ho := (s.hw-1)/2 + 1
		x := make([]float32, s.c*s.hw*s.hw)
		col := randTensor(r, s.c*9*ho*ho).Data
		b.Run(fmt.Sprintf("%dx%dx%d", s.c, s.hw, s.hw), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				col2im(col, x, s.c, s.hw, s.hw, 3, 3, 2, 1, ho, ho)
			}
		})
	}
}

// BenchmarkBatchNorm times one BatchNorm (+ReLU) forward and backward on a
// CIFAR ResNet stage-2 activation (batch 128, 32×16×16), the layer that
// follows most convolutions.
func BenchmarkBatchNorm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randTensor(r, 128, 32, 16, 16)
	dy := randTensor(r, 128, 32, 16, 16)
	bn := NewBatchNorm("bn", 32)
	bn.ReLU = true
	in := []*tensor.Tensor{x}
	b.Run("forward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			bn.Forward(in, true)
		}
	})
	b.Run("backward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			bn.Backward(dy, true)
		}
	})
}

// BenchmarkAddReLU times the residual sum with its fused ReLU, forward and backward.
func BenchmarkAddReLU(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	in := []*tensor.Tensor{randTensor(r, 128, 32, 16, 16), randTensor(r, 128, 32, 16, 16)}
	dy := randTensor(r, 128, 32, 16, 16)
	a := &Add{ReLU: true}
	b.Run("forward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a.Forward(in, true)
		}
	})
	b.Run("backward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a.Backward(dy, true)
		}
	})
}
