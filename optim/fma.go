package optim

import "math"

// fma32 returns a*b+c rounded once to float32, as the vfmadd instructions in
// torch's CPU kernels do; Go has no float32 FMA.
//
// a*b is exact in float64 (24+24 significant bits), so s below is the sum
// rounded once to float64. Rounding s again to float32 gives the correctly
// rounded result unless s landed exactly on a float32 midpoint: no other
// float32 rounding boundary can lie between the exact sum and its nearest
// float64. For a normal float32 result that is the 29 low mantissa bits
// reading 1<<28; results in float32's subnormal range, where the midpoints
// sit elsewhere, also take the careful path. Both are rare, so the branch is
// predicted and the common case costs a multiply and an add.
func fma32(a, b, c float32) float32 {
	s := float64(a)*float64(b) + float64(c)
	sb := math.Float64bits(s)
	if sb&(1<<29-1) != 1<<28 && (sb&expMask >= minNormal32 || s == 0) {
		return float32(s)
	}
	return fma32Odd(a, b, c)
}

const (
	expMask     = 0x7ff << 52
	minNormal32 = (1023 - 126) << 52 // float64 exponent field of 2^-126
)

// fma32Odd rounds the float64 sum to odd first: with 53 >= 2*24+2 bits the
// second rounding, to float32, is then correct whatever the first did.
func fma32Odd(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	cc := float64(c)
	s := p + cc
	// TwoSum: e is exactly (p + cc) - s.
	bb := s - p
	e := (p - (s - bb)) + (cc - bb)
	sb := math.Float64bits(s)
	if e == 0 || sb&expMask == expMask {
		return float32(s) // exact, or Inf/NaN where e carries nothing
	}
	eb := math.Float64bits(e)
	// Round to odd = truncate toward zero, then set the last bit. s was
	// rounded away from zero exactly when e's sign differs from s's.
	away := sb>>63 ^ eb>>63
	return float32(math.Float64frombits((sb - away) | 1))
}

// sqrt32 is the correctly rounded float32 square root (the float64 root
// rounds correctly to float32 for the same 53 >= 2*24+2 reason).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
