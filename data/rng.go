package data

import "math/bits"

// rng is splitmix64. It is tiny, has no global state, and seeding a fresh one
// per sample costs nothing, which is what lets every sample's augmentation be a
// pure function of (seed, epoch, position) regardless of which worker runs it.
type rng struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *rng) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// intn returns a uniform integer in [0, n) for n > 0 using Lemire's
// multiply-shift with rejection, so small ranges carry no modulo bias.
func (r *rng) intn(n int) int {
	un := uint64(n)
	hi, lo := bits.Mul64(r.next(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.next(), un)
		}
	}
	return int(hi)
}

// Stream tags keep the permutation and augmentation streams independent even
// when their other inputs coincide.
const (
	tagPerm uint64 = 0x7065726d // "perm"
	tagAug  uint64 = 0x61756720 // "aug "
)

// seedOf hashes its inputs into one 64-bit seed; every input passes through
// the finaliser so nearby seeds and epochs give unrelated streams.
func seedOf(tag, seed, epoch, pos uint64) uint64 {
	h := mix64(tag + golden)
	h = mix64(h ^ mix64(seed+0x632be59bd9b4e019))
	h = mix64(h ^ mix64(epoch+0xd1b54a32d192ed03))
	return mix64(h ^ mix64(pos+0x8cb92ba72f3d8dd7))
}
