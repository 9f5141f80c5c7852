package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/tensor"
)

// TestForwardAffine checks the folded epilogue against Forward followed by
// the affine map and ReLU written out, for convolutions with and without
// bias on every path (im2col, strided, 1×1, both Winograd tiles).
func TestForwardAffine(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, tc := range []struct {
		inC, outC, k, stride, pad, h int
		bias                         bool
	}{
		{3, 5, 3, 1, 1, 9, true}, {16, 16, 3, 1, 1, 12, false}, {4, 6, 3, 2, 1, 11, true},
		{7, 3, 1, 1, 0, 6, true}, {16, 20, 3, 1, 1, 8, true},
	} {
		conv := NewConv2d("c", tc.inC, tc.outC, tc.k, tc.stride, tc.pad, tc.bias)
		conv.Weight.Data = randTensor(r, tc.outC, tc.inC, tc.k, tc.k)
		if tc.bias {
			conv.Bias.Data = randTensor(r, tc.outC)
		}
		in := []*tensor.Tensor{randTensor(r, 3, tc.inC, tc.h, tc.h+1)}
		post := Affine{Scale: randTensor(r, tc.outC).Data, Shift: randTensor(r, tc.outC).Data}
		for _, algo := range []ConvAlgo{ConvIm2col, ConvWinograd, ConvWinograd4} {
			for _, relu := range []bool{false, true} {
				post.ReLU = relu
				withConvAlgo(algo, func() {
					want := conv.Forward(in, false).Clone()
					hw := want.Shape[2] * want.Shape[3]
					for i, v := range want.Data {
						o := i / hw % tc.outC
						v = v*post.Scale[o] + post.Shift[o]
						if relu {
							v = max(v, 0)
						}
						want.Data[i] = v
					}
					got := conv.ForwardAffine(in, &post)
					// Winograd rounds relative to the whole tensor's scale.
					var scale float64
					for _, v := range want.Data {
						scale = max(scale, math.Abs(float64(v)))
					}
					for i, v := range want.Data {
						if d := math.Abs(float64(got.Data[i] - v)); !(d <= 2e-5*scale) {
							t.Fatalf("%+v %v relu=%v: element %d = %v, want %v", tc, algo, relu, i, got.Data[i], v)
						}
					}
				})
			}
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: Backward after ForwardAffine did not panic", tc)
				}
			}()
			conv.Backward(conv.y, true)
		}()
	}
}

// TestWinogradEvalReuse checks that eval-mode Forwards, which keep the
// transformed weights while the weights stay the same, see every change:
// weights edited in place, a training Forward in between, another tile size.
func TestWinogradEvalReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	conv := NewConv2d("c", 16, 8, 3, 1, 1, false)
	conv.Weight.Data = randTensor(r, 8, 16, 3, 3)
	in := []*tensor.Tensor{randTensor(r, 16, 16, 9, 9)}
	fresh := func(algo ConvAlgo) *tensor.Tensor {
		var out *tensor.Tensor
		withConvAlgo(algo, func() {
			c := NewConv2d("c", 16, 8, 3, 1, 1, false)
			c.Weight.Data = conv.Weight.Data.Clone()
			out = c.Forward(in, false).Clone()
		})
		return out
	}
	check := func(what string, algo ConvAlgo, train bool) {
		t.Helper()
		want := fresh(algo)
		var got *tensor.Tensor
		withConvAlgo(algo, func() { got = conv.Forward(in, train) })
		for i, v := range want.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(v) {
				t.Fatalf("%s: element %d = %v, want %v", what, i, got.Data[i], v)
			}
		}
	}
	check("first", ConvWinograd4, false)
	check("again", ConvWinograd4, false)
	conv.Weight.Data.Data[5] += 0.25
	check("weight edited in place", ConvWinograd4, false)
	check("F(2×2, 3×3) after F(4×4, 3×3)", ConvWinograd, false)
	check("back to F(4×4, 3×3)", ConvWinograd4, false)
	conv.Weight.Data.Data[77] = -conv.Weight.Data.Data[77]
	check("training forward", ConvWinograd4, true)
	conv.Weight.Data.Data[0] = float32(math.Copysign(0, -1))
	check("after training, −0 written", ConvWinograd4, false)
	conv.Weight.Data.Data[0] = 0
	check("+0 over −0", ConvWinograd4, false)
}
