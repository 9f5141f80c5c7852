package optim

// madd is torch's c.add(a, alpha=b): one fused multiply-add in both its
// vectorised and (GCC-contracted) scalar code, checked against torch 1.13's
// AVX2 build element by element in TestTorchParity.
func madd(a, b, c float32) float32 { return fma32(a, b, c) }

// mcmul is torch's v.addcmul_(g, g, value=s), computed as v + (s*g)*g with
// the final multiply and add fused.
func mcmul(s, g, v float32) float32 { return fma32(float32(s*g), g, v) }
