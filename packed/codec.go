package packed

import (
	"fmt"
	"math/bits"
)

// Packing selects how weight levels are laid out in bytes.
type Packing string

// The packings. Bits gives every weight a fixed-width field (2 bits for
// plain ternary, 4 per byte); Dense stores base-(2k+1) digits in the fewest
// bytes a group allows (5 trits per byte for plain ternary, since 3^5 = 243 ≤ 256).
const (
	Bits  Packing = "2bit"
	Dense Packing = "base3"
)

// ParsePacking accepts the CLI names.
func ParsePacking(s string) (Packing, error) {
	switch Packing(s) {
	case Bits, Dense:
		return Packing(s), nil
	}
	return "", fmt.Errorf("%w: packing %q (valid: 2bit, base3)", ErrInvalid, s)
}

// Codec packs and unpacks signed levels in [-k, k] (base 2k+1).
//
// Bits: digit d = level+k in a field of ceil(log2(base)) bits, fields filled
// from the least significant bit of each byte and allowed to straddle bytes.
//
// Dense: digits are grouped, g digits per nb bytes (the best g/nb for nb ≤ 8),
// each group the little-endian integer Σ d_i·base^i. For base 3 a group is
// one byte and is stored as q = ceil(v·256/243) instead of v, so that digit i
// (most significant first) is ((q·3^i mod 256)·3) >> 8: a decode with two
// multiplies and no division (the idea of llama.cpp's TQ1_0).
type Codec struct {
	Packing Packing
	Base    int // 2k+1
	width   uint
	g, nb   int
	limit   uint64 // base^g: a dense group value must be below it
}

// NewCodec returns the codec for t_ex = k levels.
func NewCodec(p Packing, k int) (*Codec, error) {
	if k < 1 || k > 7 {
		return nil, fmt.Errorf("%w: t_ex %d out of range 1..7", ErrInvalid, k)
	}
	c := &Codec{Packing: p, Base: 2*k + 1}
	switch p {
	case Bits:
		c.width = uint(bits.Len(uint(c.Base - 1)))
	case Dense:
		for nb := 1; nb <= 8; nb++ {
			g, lim := digitsIn(c.Base, nb)
			if c.g == 0 || g*c.nb > c.g*nb {
				c.g, c.nb, c.limit = g, nb, lim
			}
		}
	default:
		return nil, fmt.Errorf("%w: packing %q", ErrInvalid, p)
	}
	return c, nil
}

// digitsIn is the largest g with base^g ≤ 2^(8·nb), and base^g.
func digitsIn(base, nb int) (int, uint64) {
	g, p := 0, uint64(1)
	for {
		hi, lo := bits.Mul64(p, uint64(base))
		if hi != 0 || (nb < 8 && lo > uint64(1)<<(8*nb)) {
			return g, p
		}
		g, p = g+1, lo
	}
}

// Len is the number of bytes n levels occupy.
func (c *Codec) Len(n int) int {
	if c.Packing == Bits {
		return int((uint64(n)*uint64(c.width) + 7) / 8)
	}
	return (n + c.g - 1) / c.g * c.nb
}

// Pack encodes levels (each in [-k, k]) into Len(len(levels)) bytes.
func (c *Codec) Pack(levels []int8) ([]byte, error) {
	k := c.Base / 2
	out := make([]byte, c.Len(len(levels)))
	for _, l := range levels {
		if int(l) < -k || int(l) > k {
			return nil, fmt.Errorf("%w: level %d outside [-%d, %d]", ErrInvalid, l, k, k)
		}
	}
	if c.Packing == Bits {
		for i, l := range levels {
			d := uint(int(l) + k)
			pos := uint(i) * c.width
			for b := uint(0); b < c.width; b++ {
				if d>>b&1 != 0 {
					out[(pos+b)/8] |= 1 << ((pos + b) % 8)
				}
			}
		}
		return out, nil
	}
	for gi := 0; gi*c.g < len(levels); gi++ {
		grp := levels[gi*c.g : min((gi+1)*c.g, len(levels))]
		var v uint64
		for i := len(grp) - 1; i >= 0; i-- {
			v = v*uint64(c.Base) + uint64(int(grp[i])+k)
		}
		dst := out[gi*c.nb : (gi+1)*c.nb]
		if c.Base == 3 {
			// Digits go most significant first for the multiply decode.
			v = 0
			for i := 0; i < 5; i++ {
				var d uint64 = 1 // pad with level 0
				if i < len(grp) {
					d = uint64(int(grp[i]) + 1)
				}
				v = v*3 + d
			}
			dst[0] = byte((v*256 + 242) / 243)
			continue
		}
		for b := range dst {
			dst[b] = byte(v >> (8 * b))
		}
	}
	return out, nil
}

// Check reports packed data that no Pack call produces for n levels: a bit
// field or dense group out of range. Unpack then never yields a level
// outside [-k, k].
func (c *Codec) Check(p []byte, n int) error {
	if len(p) != c.Len(n) {
		return fmt.Errorf("%w: %d packed bytes for %d weights, want %d", ErrCorrupt, len(p), n, c.Len(n))
	}
	if c.Packing == Bits {
		buf := make([]int8, min(n, 4096))
		for s := 0; s < n; s += len(buf) {
			m := min(len(buf), n-s)
			if !c.unpackBits(p, s, buf[:m]) {
				return fmt.Errorf("%w: weight code out of range", ErrCorrupt)
			}
		}
		return nil
	}
	if c.Base == 3 {
		// Every byte decodes to five valid trits except those the
		// rounding of ceil(v·256/243) never produces; those decode to
		// another v, which is harmless, so any byte is accepted.
		return nil
	}
	for gi := 0; gi < len(p)/c.nb; gi++ {
		if c.group(p[gi*c.nb:]) >= c.limit {
			return fmt.Errorf("%w: weight group out of range", ErrCorrupt)
		}
	}
	return nil
}

func (c *Codec) group(p []byte) uint64 {
	var v uint64
	for b := c.nb - 1; b >= 0; b-- {
		v = v<<8 | uint64(p[b])
	}
	return v
}

var pow3 = [5]byte{1, 3, 9, 27, 81}

// Unpack writes levels start … start+len(dst)-1 of p into dst. p must have
// passed Check; a dense group beyond base^g (only reachable with unchecked
// data) decodes to clamped levels rather than panicking.
func (c *Codec) Unpack(p []byte, start int, dst []int8) {
	if c.Packing == Bits {
		c.unpackBits(p, start, dst)
		return
	}
	k := int8(c.Base / 2)
	i := 0
	for i < len(dst) {
		pos := start + i
		gi, off := pos/c.g, pos%c.g
		if c.Base == 3 {
			q := p[gi]
			for ; off < 5 && i < len(dst); off++ {
				dst[i] = int8((uint16(q*pow3[off])*3)>>8) - 1
				i++
			}
			continue
		}
		v := c.group(p[gi*c.nb:])
		for j := 0; j < off; j++ {
			v /= uint64(c.Base)
		}
		for ; off < c.g && i < len(dst); off++ {
			d := int8(v % uint64(c.Base))
			v /= uint64(c.Base)
			dst[i] = min(d-k, k)
			i++
		}
	}
}

// unpackBits reports false if a field is out of range (and clamps it).
func (c *Codec) unpackBits(p []byte, start int, dst []int8) bool {
	k := c.Base / 2
	ok := true
	mask := uint(1)<<c.width - 1
	if c.width == 2 {
		for i := range dst {
			pos := start + i
			d := int(p[pos>>2]>>(2*(pos&3))) & 3
			if d > 2 {
				ok, d = false, 2
			}
			dst[i] = int8(d - 1)
		}
		return ok
	}
	for i := range dst {
		pos := uint(start+i) * c.width
		lo := uint(p[pos/8])
		if pos/8+1 < uint(len(p)) {
			lo |= uint(p[pos/8+1]) << 8
		}
		d := int(lo>>(pos%8)) & int(mask)
		if d > 2*k {
			ok, d = false, 2*k
		}
		dst[i] = int8(d - k)
	}
	return ok
}
