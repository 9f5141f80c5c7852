package packed

import (
	"math/rand/v2"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range []Packing{Bits, Dense} {
		for _, k := range []int{1, 2, 3, 4} {
			c, err := NewCodec(p, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{0, 1, 3, 4, 5, 7, 9, 24, 25, 31, 100, 1001} {
				lv := make([]int8, n)
				for i := range lv {
					lv[i] = int8(r.IntN(2*k+1) - k)
				}
				b, err := c.Pack(lv)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) != c.Len(n) {
					t.Fatalf("%s k=%d n=%d: %d bytes, Len says %d", p, k, n, len(b), c.Len(n))
				}
				if err := c.Check(b, n); err != nil {
					t.Fatalf("%s k=%d n=%d: %v", p, k, n, err)
				}
				// Decode from every start, as the runtime decodes rows.
				for start := 0; start < n; start += 1 + n/7 {
					got := make([]int8, n-start)
					c.Unpack(b, start, got)
					for i, v := range got {
						if v != lv[start+i] {
							t.Fatalf("%s k=%d n=%d start=%d: level %d is %d, want %d", p, k, n, start, start+i, v, lv[start+i])
						}
					}
				}
			}
		}
	}
}

// TestBase3AllBytes checks the multiply decode for all 243 five-trit values.
func TestBase3AllBytes(t *testing.T) {
	c, _ := NewCodec(Dense, 1)
	for v := 0; v < 243; v++ {
		lv := make([]int8, 5)
		x := v
		for i := 4; i >= 0; i-- {
			lv[i] = int8(x%3) - 1
			x /= 3
		}
		b, _ := c.Pack(lv)
		got := make([]int8, 5)
		c.Unpack(b, 0, got)
		for i := range got {
			if got[i] != lv[i] {
				t.Fatalf("value %d: trits %v, want %v", v, got, lv)
			}
		}
	}
}

func TestCodecDensity(t *testing.T) {
	for _, tc := range []struct {
		p        Packing
		k, n, nb int
	}{
		{Bits, 1, 4, 1}, {Dense, 1, 5, 1}, {Dense, 1, 1000, 200}, {Bits, 2, 8, 3}, {Dense, 2, 24, 7},
	} {
		c, _ := NewCodec(tc.p, tc.k)
		if got := c.Len(tc.n); got != tc.nb {
			t.Errorf("%s k=%d: %d levels take %d bytes, want %d", tc.p, tc.k, tc.n, got, tc.nb)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	c, _ := NewCodec(Bits, 1)
	if err := c.Check([]byte{0xff}, 4); err == nil {
		t.Error("2-bit code 3 accepted")
	}
	if err := c.Check([]byte{0, 0}, 4); err == nil {
		t.Error("wrong length accepted")
	}
	d, _ := NewCodec(Dense, 2)
	if err := d.Check([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 24); err == nil {
		t.Error("base-5 group out of range accepted")
	}
	if _, err := c.Pack([]int8{2}); err == nil {
		t.Error("level 2 packed for t_ex 1")
	}
}
