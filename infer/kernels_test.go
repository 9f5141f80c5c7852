package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// tileCase is one random call of a tile kernel: a tile of mr pixels
// reading steps steps, some rows not stored, and an output buffer with
// guard values around and between the stored rows.
type tileCase struct {
	mr, bw, steps, as, n, flags int
	offs                        []int32
	w                           []int8
	rows                        []int
	scale, bias                 []float32
	out                         []float32
	aLen                        int
}

func newTileCase(r *rand.Rand, mr, bw, steps, group int) tileCase {
	c := tileCase{mr: mr, bw: bw, steps: steps, n: 1 + r.IntN(bw), flags: r.IntN(4)}
	c.as = group * (1 + r.IntN(5))
	c.offs = make([]int32, steps)
	maxOff := 0
	for s := range c.offs {
		c.offs[s] = int32(group * r.IntN(40))
		maxOff = max(maxOff, int(c.offs[s]))
	}
	c.aLen = maxOff + (mr-1)*c.as + group
	c.w = make([]int8, steps*bw*group)
	for i := range c.w {
		c.w[i] = int8(r.IntN(3) - 1)
	}
	ld := bw + 3 // rows apart by more than n, so that guards sit between them
	c.out = make([]float32, (mr+2)*ld)
	for i := range c.out {
		c.out[i] = float32(r.NormFloat64())
	}
	c.rows = make([]int, mr)
	for j := range c.rows {
		c.rows[j] = -1
		if r.IntN(5) > 0 {
			c.rows[j] = (mr-j)*ld + r.IntN(3) // stored in reverse, at odd offsets
		}
	}
	c.scale = make([]float32, bw)
	c.bias = make([]float32, bw)
	for o := range c.scale {
		c.scale[o] = float32(r.NormFloat64() * 0.01)
		c.bias[o] = float32(r.NormFloat64())
	}
	return c
}

// close reports whether got and want agree up to a few float32 roundings
// of values of the given magnitude.
func closeTo(got, want, mag float32) bool {
	if got == want || (got != got && want != want) {
		return true
	}
	return math.Abs(float64(got-want)) <= 4e-6*float64(mag)+1e-30
}

func checkOut(t *testing.T, what string, got, want, mag []float32) {
	t.Helper()
	for i := range want {
		if !closeTo(got[i], want[i], mag[i]) {
			t.Fatalf("%s: out[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func TestDotTileKernels(t *testing.T) {
	if len(kernelSets) == 0 {
		t.Skip("no assembly kernels on this CPU or build")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, ks := range kernelSets {
		for _, k := range ks.dots {
			for _, steps := range []int{0, 1, 2, 7, 63, 64, 65, 129, 200} {
				for rep := 0; rep < 6; rep++ {
					c := newTileCase(r, k.mr, k.bw, steps, 4)
					a := make([]byte, c.aLen)
					for i := range a {
						a[i] = byte(r.IntN(256))
					}
					if rep == 0 {
						// The int16 sums' worst case: every product +255.
						for i := range a {
							a[i] = 255
						}
						for i := range c.w {
							c.w[i] = 1
						}
					}
					want := append([]float32(nil), c.out...)
					got := append([]float32(nil), c.out...)
					dotTileGo(a, c.as, c.offs, c.w, want, c.rows, c.scale, c.bias, c.n, c.flags)
					k.dot(a, c.as, c.offs, c.w, got, c.rows, c.scale, c.bias, c.n, c.flags)
					mag := make([]float32, len(want))
					for i := range mag {
						mag[i] = float32(math.Abs(float64(want[i]))) + float32(math.Abs(float64(c.out[i]))) + float32(steps*4*255)*0.05
					}
					checkOut(t, fmt.Sprintf("%s steps=%d n=%d flags=%d rows=%v", k.name, steps, c.n, c.flags, c.rows), got, want, mag)
				}
			}
		}
	}
}

func TestFmaTileKernels(t *testing.T) {
	if len(kernelSets) == 0 {
		t.Skip("no assembly kernels on this CPU or build")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, ks := range kernelSets {
		for _, k := range ks.fmas {
			for _, steps := range []int{0, 1, 3, 16, 144, 577} {
				for rep := 0; rep < 6; rep++ {
					c := newTileCase(r, k.mr, k.bw, steps, 1)
					a := make([]float32, c.aLen)
					for i := range a {
						a[i] = float32(r.NormFloat64())
					}
					want := append([]float32(nil), c.out...)
					got := append([]float32(nil), c.out...)
					fmaTileGo(a, c.as, c.offs, c.w, want, c.rows, c.scale, c.bias, c.n, c.flags)
					k.fma(a, c.as, c.offs, c.w, got, c.rows, c.scale, c.bias, c.n, c.flags)
					mag := make([]float32, len(want))
					for i := range mag {
						// Sums of steps terms of size ~1 round at ~steps·ε.
						mag[i] = float32(math.Abs(float64(want[i]))) + float32(math.Abs(float64(c.out[i]))) + float32(steps)*0.05
					}
					checkOut(t, fmt.Sprintf("%s steps=%d n=%d flags=%d rows=%v", k.name, steps, c.n, c.flags, c.rows), got, want, mag)
				}
			}
		}
	}
}

// specials are the inputs where element-wise kernels differ most easily:
// NaN, infinities, signed zeros, rounding ties, values past the clamp.
var specials = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0,
	float32(math.Copysign(0, -1)), 0.5, 1.5, 2.5, -0.5, -1.5, 126.5, 127.5, 254.5, 255.5, -127.5, 300, -300, 1e30, -1e30}

func randFloats(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		if r.IntN(8) == 0 {
			x[i] = specials[r.IntN(len(specials))]
		} else {
			x[i] = float32(r.NormFloat64() * 100)
		}
	}
	return x
}

func TestElementwiseKernels(t *testing.T) {
	if len(kernelSets) == 0 {
		t.Skip("no assembly kernels on this CPU or build")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, ks := range kernelSets {
		for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000} {
			x := randFloats(r, n)
			for _, z := range []int32{0, 128} {
				inv := float32(1)
				if z == 0 {
					inv = 0.9
				}
				want := make([]byte, n+8)
				got := make([]byte, n+8)
				for i := range want {
					want[i], got[i] = 0xAB, 0xAB
				}
				quantizeGo(x, want[:n], inv, z)
				ks.quantize(x, got[:n], inv, z)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s quantize n=%d z=%d: byte %d (x=%g) is %d, want %d", ks.name, n, z, i, x[min(i, n-1)], got[i], want[i])
					}
				}
			}
			xs := append([]float32(nil), x...)
			for i := range xs {
				if xs[i] != xs[i] && r.IntN(2) == 0 {
					xs[i] = 1 // also some runs without NaN
				}
			}
			if got, want := ks.absMax(xs), absMaxGo(xs); got != want {
				t.Fatalf("%s absMax n=%d: %g, want %g", ks.name, n, got, want)
			}
			y := randFloats(r, n)
			for _, relu := range []bool{false, true} {
				want := make([]float32, n+4)
				got := make([]float32, n+4)
				for i := n; i < n+4; i++ {
					want[i], got[i] = 42, 42
				}
				addGo(want[:n], x, y, relu)
				ks.add(got[:n], x, y, relu)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
						t.Fatalf("%s add n=%d relu=%v: [%d] = %g, want %g", ks.name, n, relu, i, got[i], want[i])
					}
				}
			}
		}
	}
}
