package optim

import (
	"math"
	"math/big"
	"testing"
)

func exactFMA32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

func same32(x, y float32) bool {
	return math.Float32bits(x) == math.Float32bits(y) || (x != x && y != y)
}

// Inputs are drawn so that a*b sits near half an ulp of c (or an odd
// multiple), normal and subnormal, where rounding the float64 sum and then
// the float32 result goes wrong; the test insists that such cases occur, so
// it cannot pass vacuously.
func TestFMA32(t *testing.T) {
	x := uint64(88172645463325252)
	rnd := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	naiveWrong := 0
	check := func(a, b, c float32) {
		want := exactFMA32(a, b, c)
		if got := fma32(a, b, c); !same32(got, want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
		if got := fma32Odd(a, b, c); !same32(got, want) {
			t.Fatalf("fma32Odd(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
		if !same32(float32(float64(a)*float64(b)+float64(c)), want) {
			naiveWrong++
		}
	}
	for i := range 100000 {
		// c in [1, 2) scaled to 2^k, k from -150 (subnormal) to 100.
		k := int(rnd()%251) - 150
		c := float32(math.Ldexp(float64(math.Float32frombits(uint32(0x3f800000|rnd()&0x7fffff))), k))
		if i%2 == 1 {
			c = -c
		}
		a := math.Float32frombits(uint32(0x3f800000 | rnd()&0x7fffff))
		// a*b near an odd multiple of half an ulp of c.
		ulp := math.Ldexp(1, max(k, -126)-23)
		target := ulp / 2 * float64(1+2*(rnd()%3))
		if rnd()%2 == 0 {
			target = -target
		}
		b := float32(target / float64(a))
		switch rnd() % 3 {
		case 0:
			b = math.Nextafter32(b, float32(math.Inf(1)))
		case 1:
			b = math.Nextafter32(b, float32(math.Inf(-1)))
		}
		check(a, b, c)
		// And plainly random operands.
		r := func() float32 { return math.Float32frombits(uint32(rnd())&^(0xff<<23) | uint32(100+rnd()%56)<<23) }
		check(r(), r(), r())
	}
	if naiveWrong == 0 {
		t.Error("no double-rounding case generated")
	}
	t.Logf("double rounding would have been wrong %d times", naiveWrong)
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, v := range [][3]float32{
		{0, 5, 0}, {0, -5, 0}, {-1, 1, 1}, {2, 3, 4}, {1e30, 1e30, 1}, {1e-30, 1e-30, 0},
		{1e-30, -1e-30, 0}, {inf, 1, 1}, {inf, 0, 1}, {1, 1, -inf}, {nan, 1, 1},
	} {
		if got, want := fma32(v[0], v[1], v[2]), exactOrIEEE(v); !same32(got, want) {
			t.Errorf("fma32%v = %g, want %g", v, got, want)
		}
	}
}

// exactOrIEEE is exactFMA32 where big.Float can express the operands, and
// the IEEE result for infinities and NaN.
func exactOrIEEE(v [3]float32) float32 {
	for _, f := range v {
		if math.IsInf(float64(f), 0) || f != f {
			return float32(float64(v[0])*float64(v[1]) + float64(v[2]))
		}
	}
	if r := exactFMA32(v[0], v[1], v[2]); r != 0 {
		return r
	}
	// big.Float has no signed zero arithmetic; float64 gets the sign right.
	return float32(float64(v[0])*float64(v[1]) + float64(v[2]))
}
