package optim

import "math"

const expMask = 0x7ff << 52

// fma32 returns a*b+c rounded once to float32, as the vfmadd instructions in
// torch's CPU kernels do. Go has no float32 FMA, and rounding the float64 sum
// and then again to float32 can be off by one in the last bit, so the float64
// sum is rounded to odd first: with 53 >= 2*24+2 bits that makes the second
// rounding correct. Branch-free because the inexact/direction tests are coin
// flips that a predictor would miss half the time.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact: 24+24 significant bits fit in 53
	cc := float64(c)
	s := p + cc
	// TwoSum: e is exactly (p + cc) - s.
	bb := s - p
	e := (p - (s - bb)) + (cc - bb)
	sb := math.Float64bits(s)
	if sb&expMask == expMask {
		return float32(s) // Inf or NaN: e is NaN and carries nothing
	}
	eb := math.Float64bits(e)
	inexact := (eb<<1 | -(eb << 1)) >> 63
	// Round to odd = truncate toward zero, then set the last bit if inexact;
	// s was rounded away from zero exactly when e's sign differs from s's.
	away := inexact & (sb>>63 ^ eb>>63)
	return float32(math.Float64frombits((sb - away) | inexact))
}

// sqrt32 is the correctly rounded float32 square root (the float64 root
// rounds correctly to float32 for the same 53 >= 2*24+2 reason).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
