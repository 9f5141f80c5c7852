package wino

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// zFor returns the AVX-512 kernels and the AVX2 ones of the plan, skipping
// the test where this build or CPU has no AVX-512 kernels.
func zFor(t testing.TB, p *Plan) (z, avx2 kernels4) {
	t.Helper()
	if zKernels4 == nil {
		t.Skip("no AVX-512 kernels on this machine or build")
	}
	if p.packed {
		return *zKernels4p, asmKernels4p
	}
	return *zKernels4, asmKernels4
}

// sameBitsOrNaN is sameBits where any NaN matches any NaN: the twins and
// the assembly may pass on different NaN payloads.
func sameBitsOrNaN(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if math.IsNaN(float64(g)) && math.IsNaN(float64(w)) {
			continue
		}
		if math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("%s: [%d] = %v (%#x), want %v (%#x)", what, i, g, math.Float32bits(g), w, math.Float32bits(w))
		}
	}
}

// scratch returns a plan's scratch of exactly ScratchLen floats holding
// random values inside guards, so that a kernel that relies on its
// contents or needs more of it fails.
func scratch(t *testing.T, r *rand.Rand, p *Plan) ([]float32, func(string)) {
	tmp, check := buffer(t, p.ScratchLen())
	copy(tmp, randSlice(r, len(tmp)))
	return tmp, check
}

// TestKernels4ZMatch holds the AVX-512 kernels to the AVX2 kernels and to
// the twins, bit for bit, on every plane of 1 to 34 rows and columns, with
// random, NaN and infinite inputs, guards around every output and scratch,
// and the slack (which the AVX2 kernels and the twins fill alike) compared
// too.
func TestKernels4ZMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for h := 1; h <= 34; h++ {
		for w := 1; w <= 34; w++ {
			p := plan4(t, h, w)
			z, avx2 := zFor(t, p)
			for _, special := range []bool{false, true} {
				testKernels4Z(t, r, p, z, avx2, special)
			}
		}
	}
}

func testKernels4Z(t *testing.T, r *rand.Rand, p *Plan, z, avx2 kernels4, special bool) {
	h, w := p.H, p.W
	ld := p.Tiles() + p.Slack() + r.IntN(9)
	nT := p.span(ld)
	name := fmt.Sprintf("F4 %dx%d ld=%d special=%v", h, w, ld, special)
	x := randSlice(r, h*w)
	m := randSlice(r, nT)
	if special {
		for _, s := range [][]float32{x, m} {
			for k := 0; k < 1+len(s)/50; k++ {
				s[r.IntN(len(s))] = [...]float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}[r.IntN(4)]
			}
		}
	}
	// What lies past the tiles of a row must not reach any output.
	for xi := 0; xi < 36; xi++ {
		for i := p.Tiles(); i < ld && xi*ld+i < nT; i++ {
			m[xi*ld+i] = float32(math.NaN())
		}
	}
	bias := float32(r.NormFloat64())
	sets := []kernels4{z, avx2, goKernels4}
	var v, y, dm, dx [3][]float32
	for k, ks := range sets {
		var check func(string)
		tmp, checkTmp := scratch(t, r, p)
		v[k], check = buffer(t, nT)
		ks.in(v[k], ld, x, h, w, p.TW, p.colMask, tmp)
		check(name + " in")
		checkTmp(fmt.Sprint(name, " in scratch set ", k))
		y[k], check = buffer(t, h*w)
		ks.out(y[k], m, ld, h, w, p.TW, bias, p.colMask)
		check(name + " out")
		tmp, checkTmp = scratch(t, r, p)
		dm[k], check = buffer(t, nT)
		ks.outT(dm[k], ld, x, h, w, p.TW, p.colMask, tmp)
		check(name + " outT")
		checkTmp(name + " outT scratch")
		tmp, checkTmp = scratch(t, r, p)
		dx[k], check = buffer(t, h*w)
		ks.inT(dx[k], m, ld, h, w, p.TW, p.dxMask, tmp)
		check(name + " inT")
		checkTmp(name + " inT scratch")
	}
	// The packed kernels write no slack, the twins do.
	rows := func(s []float32) []float32 {
		if !p.packed {
			return s
		}
		c := append([]float32(nil), s...)
		for i := range c {
			if i%ld >= p.Tiles() {
				c[i] = 0
			}
		}
		return c
	}
	for _, c := range []struct {
		what string
		s    [3][]float32
		rows bool
	}{{"in", v, true}, {"out", y, false}, {"outT", dm, true}, {"inT", dx, false}} {
		a, b, g := c.s[0], c.s[1], c.s[2]
		if c.rows {
			a, b, g = rows(a), rows(b), rows(g)
		}
		// The same instructions in the same order: even NaN payloads agree.
		sameBits(t, name+" "+c.what+" vs AVX2", a, b)
		sameBitsOrNaN(t, name+" "+c.what+" vs twin", a, g)
		if c.rows {
			continue
		}
		for i, e := range a {
			if math.Float32bits(e) == marker || (!special && math.IsNaN(float64(e))) {
				t.Fatalf("%s %s: pixel %d not written or NaN", name, c.what, i)
			}
		}
	}
}

// TestPlan4UsesZ checks that the plan's kernels are the AVX-512 ones where
// they exist (unless TNN_WINO=avx2 chose otherwise), through the Plan API
// with scratch of exactly ScratchLen floats.
func TestPlan4UsesZ(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, s := range [][2]int{{32, 32}, {28, 28}, {7, 30}, {33, 5}} {
		p := plan4(t, s[0], s[1])
		z, _ := zFor(t, p)
		ld := p.Tiles() + p.Slack()
		x := randSlice(r, p.H*p.W)
		tmp, checkTmp := scratch(t, r, p)
		v, check := buffer(t, p.span(ld))
		p.In(v, ld, x, tmp)
		check("In")
		checkTmp("In scratch")
		want := make([]float32, p.span(ld))
		z.in(want, ld, x, p.H, p.W, p.TW, p.colMask, tmp)
		sameBits(t, fmt.Sprintf("%dx%d In", p.H, p.W), v, want)
		dx, check := buffer(t, p.H*p.W)
		p.InT(dx, v, ld, tmp)
		check("InT")
		checkTmp("InT scratch")
		wantDx := make([]float32, p.H*p.W)
		inT4Go(wantDx, v, ld, p.H, p.W, p.TW, nil, make([]float32, p.ScratchLen()))
		sameBits(t, fmt.Sprintf("%dx%d InT", p.H, p.W), dx, wantDx)
	}
}

// BenchmarkTransforms4Z runs each AVX-512 kernel and its AVX2 twin in turn
// on the same plane, for their ratio.
func BenchmarkTransforms4Z(b *testing.B) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, s := range []int{32, 28, 16, 14} {
		p, _ := NewPlan4(s, s)
		z, avx2 := zFor(b, p)
		benchPair(b, r, p, avx2, z)
	}
}

// benchPair times the four kernels of an AVX2 and an AVX-512 set on plan
// p's plane, one after the other per kernel.
func benchPair(b *testing.B, r *rand.Rand, p *Plan, avx2, z kernels4) {
	s := p.H
	ld := p.Tiles() + p.Slack()
	x := randSlice(r, p.H*p.W)
	v := randSlice(r, p.span(ld))
	tmp := make([]float32, p.ScratchLen())
	impls := []struct {
		name string
		ks   kernels4
	}{{"avx2", avx2}, {"avx512", z}}
	kernels := []struct {
		name string
		run  func(ks kernels4)
	}{
		{"in", func(ks kernels4) { ks.in(v, ld, x, p.H, p.W, p.TW, p.colMask, tmp) }},
		{"out", func(ks kernels4) { ks.out(x, v, ld, p.H, p.W, p.TW, 0, p.colMask) }},
		{"outT", func(ks kernels4) { ks.outT(v, ld, x, p.H, p.W, p.TW, p.colMask, tmp) }},
		{"inT", func(ks kernels4) { ks.inT(x, v, ld, p.H, p.W, p.TW, p.dxMask, tmp) }},
	}
	for _, k := range kernels {
		for _, im := range impls {
			b.Run(fmt.Sprintf("%dx%d/%s/%s", s, p.W, k.name, im.name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					k.run(im.ks)
				}
			})
		}
	}
}
