package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/wino"
	"github.com/tnn-go/tnn/tensor"
)

// TestWinogradQuadMatchesPlanes runs F(4×4, 3×3) on planes of 2×2 tiles
// with the four-image transforms and with the per-plane ones: the two must
// agree bit for bit in y, dX, dW and dB, with batches that leave 0 to 3
// images of a worker's group to the per-plane calls.
func TestWinogradQuadMatchesPlanes(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	defer func(q bool) { winoQuad = q }(winoQuad)
	r := rand.New(rand.NewPCG(51, 52))
	for it := 0; it < 12; it++ {
		parallel.SetThreads(1 + it%3)
		n := 4 + r.IntN(9)
		in, out := 1+r.IntN(20), 1+r.IntN(20)
		h, w := 5+r.IntN(4), 5+r.IntN(4)
		bias := it%2 == 0
		conv := NewConv2d("c", in, out, 3, 1, 1, bias)
		conv.Weight.Data = randTensor(r, out, in, 3, 3)
		if bias {
			conv.Bias.Data = randTensor(r, out)
		}
		x := randTensor(r, n, in, h, w)
		dy := randTensor(r, n, out, h, w)
		if p, _ := wino.NewPlan4(h, w); !p.Quad() {
			t.Fatalf("%dx%d: not a quad plan", h, w)
		}
		name := fmt.Sprintf("n=%d %d→%d %dx%d threads=%d", n, in, out, h, w, parallel.Threads())
		winoQuad = false
		y0, dx0, dw0, db0 := convRun(ConvWinograd4, conv, x, dy)
		winoQuad = true
		y1, dx1, dw1, db1 := convRun(ConvWinograd4, conv, x, dy)
		for _, c := range []struct {
			what      string
			got, want []float32
		}{{"y", y1, y0}, {"dx", dx1, dx0}, {"dW", dw1, dw0}, {"dB", db1, db0}} {
			for i := range c.want {
				if math.Float32bits(c.got[i]) != math.Float32bits(c.want[i]) {
					t.Fatalf("%s: %s[%d] = %v with quads, %v without", name, c.what, i, c.got[i], c.want[i])
				}
			}
		}
	}
}

// TestWinogradQuadDoesNotAllocate is TestWinogradDoesNotAllocate on a
// shape the four-image transforms take.
func TestWinogradQuadDoesNotAllocate(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	r := rand.New(rand.NewPCG(53, 54))
	conv := NewConv2d("c", 5, 4, 3, 1, 1, true)
	conv.Weight.Data = randTensor(r, 4, 5, 3, 3)
	in := []*tensor.Tensor{randTensor(r, 11, 5, 8, 7)}
	withConvAlgo(ConvWinograd4, func() {
		for _, threads := range []int{1, 2} {
			parallel.SetThreads(threads)
			step := func() {
				y := conv.Forward(in, true)
				conv.Backward(y, true)
			}
			for i := 0; i < 3; i++ {
				step()
			}
			if a := testing.AllocsPerRun(20, step); a != 0 {
				t.Errorf("threads=%d: %v allocations per forward+backward", threads, a)
			}
		}
	})
}

// BenchmarkConv3x3Quad times F(4×4, 3×3) on the planes of 2×2 tiles of
// BenchmarkConv3x3 (batch 128) with the four-image transforms ("quad") and
// with the per-plane ones ("planes"), alternating in one process.
func BenchmarkConv3x3Quad(b *testing.B) {
	defer func(q bool) { winoQuad = q }(winoQuad)
	r := rand.New(rand.NewPCG(55, 56))
	for _, s := range []struct{ c, hw int }{{64, 8}, {64, 7}} {
		conv := NewConv2d("c", s.c, s.c, 3, 1, 1, false)
		conv.Weight.Data = randTensor(r, s.c, s.c, 3, 3)
		x := randTensor(r, 128, s.c, s.hw, s.hw)
		dy := randTensor(r, 128, s.c, s.hw, s.hw)
		in := []*tensor.Tensor{x}
		for _, dir := range []string{"forward", "backward"} {
			for _, q := range []bool{false, true} {
				mode := map[bool]string{false: "planes", true: "quad"}[q]
				b.Run(fmt.Sprintf("%dx%dx%d/%s/%s", s.c, s.hw, s.hw, dir, mode), func(b *testing.B) {
					winoQuad = q
					withConvAlgo(ConvWinograd4, func() {
						conv.Forward(in, true)
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							if dir == "forward" {
								conv.Forward(in, true)
							} else {
								conv.Backward(dy, true)
							}
						}
					})
				})
			}
		}
	}
}
