// Package rng is a small seeded generator (splitmix64) so that weight
// initialisation and data order depend only on the seed, never on global
// state or the Go version's math/rand stream.
package rng

import "math"

// Rand is a splitmix64 generator; the zero value is usable.
type Rand struct{ state uint64 }

// New seeds a generator.
func New(seed uint64) *Rand { return &Rand{state: seed} }

// Uint64 returns the next 64 random bits.
func (r *Rand) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Float64 is uniform in [0, 1).
func (r *Rand) Float64() float64 { return float64(r.Uint64()>>11) / (1 << 53) }

// Normal is a standard normal sample (Box–Muller).
func (r *Rand) Normal() float64 {
	u := r.Float64()
	for u == 0 {
		u = r.Float64()
	}
	v := r.Float64()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*v)
}
