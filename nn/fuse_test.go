package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/tensor"
)

func sameBits(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if len(got.Data) != len(want.Data) {
		t.Fatalf("%s: %d values, want %d", what, len(got.Data), len(want.Data))
	}
	for i := range want.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got.Data[i], want.Data[i])
		}
	}
}

// newBNPair returns two BatchNorms with the same random affine.
func newBNPair(r *rand.Rand, c int) (a, b *BatchNorm) {
	a, b = NewBatchNorm("bn", c), NewBatchNorm("bn", c)
	for ch := range c {
		g, be := float32(0.5+r.Float64()), float32(0.3*r.NormFloat64())
		a.Weight.Data.Data[ch], b.Weight.Data.Data[ch] = g, g
		a.Bias.Data.Data[ch], b.Bias.Data.Data[ch] = be, be
	}
	return a, b
}

// TestAddForwardNormalized holds the fused BatchNorm→Add to BatchNorm.Forward
// then Add.Forward: the sum, the running statistics, and the gradients of
// the BatchNorm that follow, in both modes, with and without ReLU, for
// BatchNorm2d and 1d.
func TestAddForwardNormalized(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	for _, shape := range [][]int{{3, 4, 5, 7}, {5, 6}} {
		for _, relu := range []bool{false, true} {
			for _, train := range []bool{true, false} {
				what := fmt.Sprintf("%v relu=%v train=%v", shape, relu, train)
				c := shape[1]
				bnA, bnB := newBNPair(r, c)
				addA, addB := &Add{ReLU: relu}, &Add{ReLU: relu}
				x, other := randTensor(r, shape...), randTensor(r, shape...)
				for step := range 2 {
					want := addA.Forward([]*tensor.Tensor{bnA.Forward([]*tensor.Tensor{x}, train), other}, train)
					got := addB.ForwardNormalized(bnB, x, []*tensor.Tensor{nil, other}, train)
					sameBits(t, what+" sum", got, want)
					sameBits(t, what+" running mean", bnB.RunningMean, bnA.RunningMean)
					sameBits(t, what+" running var", bnB.RunningVar, bnA.RunningVar)
					sameBits(t, what+" batches", bnB.NumBatchesTracked, bnA.NumBatchesTracked)
					dy := randTensor(r, shape...)
					dA := bnA.Backward(addA.Backward(dy, true)[0], true)[0]
					dB := bnB.Backward(addB.Backward(dy, true)[0], true)[0]
					sameBits(t, what+" dx", dB, dA)
					sameBits(t, what+" dγ", bnB.Weight.Grad, bnA.Weight.Grad)
					sameBits(t, what+" dβ", bnB.Bias.Grad, bnA.Bias.Grad)
					if step == 0 && bnB.y != nil {
						t.Fatalf("%s: the fused BatchNorm made an output", what)
					}
					x = randTensor(r, shape...)
				}
			}
		}
	}
}

// TestAddBackwardSum holds Add.BackwardSum(d1, d2) to Backward(d1 + d2).
func TestAddBackwardSum(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 33))
	for _, relu := range []bool{false, true} {
		a := &Add{ReLU: relu}
		x, z := randTensor(r, 2, 3, 5, 5), randTensor(r, 2, 3, 5, 5)
		a.Forward([]*tensor.Tensor{x, z}, true)
		d1, d2 := randTensor(r, 2, 3, 5, 5), randTensor(r, 2, 3, 5, 5)
		sum := tensor.New(d1.Shape...)
		for i := range sum.Data {
			sum.Data[i] = d1.Data[i] + d2.Data[i]
		}
		got := a.BackwardSum(d1, d2, true)
		keep := got[0].Clone()
		want := a.Backward(sum, true)
		if len(got) != 2 {
			t.Fatalf("%d gradients for 2 inputs", len(got))
		}
		sameBits(t, fmt.Sprintf("relu=%v dx", relu), keep, want[0])
		zeros := 0
		for i, v := range keep.Data {
			if relu && a.y.Data[i] <= 0 && v != 0 {
				t.Fatalf("gradient %v where the output is %v", v, a.y.Data[i])
			}
			if v == 0 {
				zeros++
			}
		}
		if relu != (zeros > 0) {
			t.Fatalf("relu=%v: %d zero gradients", relu, zeros)
		}
	}
}

func TestFusedAddDoesNotAllocate(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	r := rand.New(rand.NewPCG(34, 35))
	x, other := randTensor(r, 4, 3, 8, 8), randTensor(r, 4, 3, 8, 8)
	bn := NewBatchNorm("bn", 3)
	add := &Add{ReLU: true}
	in := []*tensor.Tensor{nil, other}
	for _, threads := range []int{1, 2, 3} {
		parallel.SetThreads(threads)
		step := func() {
			y := add.ForwardNormalized(bn, x, in, true)
			dx := add.BackwardSum(y, other, true)
			bn.Backward(dx[0], true)
		}
		for range 3 {
			step()
		}
		if a := testing.AllocsPerRun(20, step); a != 0 {
			t.Errorf("threads=%d: %v allocations per fused forward+backward", threads, a)
		}
	}
}
