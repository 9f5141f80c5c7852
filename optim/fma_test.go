package optim

import (
	"math"
	"math/big"
	"testing"
)

func exactFMA32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// Inputs are drawn so that a*b sits near half an ulp of c, where rounding the
// float64 sum and then the float32 result goes wrong; the test insists that
// such cases occur, so it cannot pass vacuously.
func TestFMA32(t *testing.T) {
	x := uint64(88172645463325252)
	rnd := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	naiveWrong := 0
	for i := range 200000 {
		c := math.Float32frombits(uint32(0x3f800000 | rnd()&0x7fffff)) // [1, 2)
		if i%2 == 1 {
			c = -c
		}
		a := math.Float32frombits(uint32(0x3f800000 | rnd()&0x7fffff))
		// a*b within a few float64 ulps of 2^-24 or its odd multiples.
		half := math.Ldexp(1, -24) * float64(1+2*(rnd()%3))
		b := float32(half / float64(a))
		if rnd()%2 == 0 {
			b = math.Nextafter32(b, 1)
		}
		want := exactFMA32(a, b, c)
		if got := fma32(a, b, c); got != want {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
		if float32(float64(a)*float64(b)+float64(c)) != want {
			naiveWrong++
		}
	}
	if naiveWrong == 0 {
		t.Error("no double-rounding case generated")
	}
	t.Logf("double rounding would have been wrong %d times", naiveWrong)
	for _, v := range [][3]float32{{0, 5, -0}, {2, 3, 4}, {1e30, 1e30, 1}, {-1, 1, 1}, {1e-30, 1e-30, 0}} {
		if got, want := fma32(v[0], v[1], v[2]), exactFMA32(v[0], v[1], v[2]); got != want && !(math.IsInf(float64(got), 0) && math.IsInf(float64(want), 0)) {
			t.Errorf("fma32%v = %g, want %g", v, got, want)
		}
	}
}
