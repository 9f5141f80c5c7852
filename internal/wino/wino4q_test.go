package wino

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// withSpecials replaces about one element in ten of s by NaN, ±Inf or −0.
func withSpecials(r *rand.Rand, s []float32) []float32 {
	sp := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}
	for i := range s {
		if r.IntN(10) == 0 {
			s[i] = sp[r.IntN(len(sp))]
		}
	}
	return s
}

// sameBitsQ is sameBits for the quad tests, whose references are either
// twin or the per-plane path.
func sameBitsQ(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), want %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// rowsQ returns columns 0…15 of the 36 rows ld apart of v, and fails if a
// column between 16 and ld of the first 35 rows lost its marker.
func rowsQ(t *testing.T, what string, v []float32, ld int, marked bool) []float32 {
	t.Helper()
	out := make([]float32, 0, 36*16)
	for xi := 0; xi < 36; xi++ {
		out = append(out, v[xi*ld:xi*ld+16]...)
		if marked && xi < 35 {
			for i := 16; i < ld; i++ {
				if math.Float32bits(v[xi*ld+i]) != marker {
					t.Fatalf("%s: wrote row %d column %d, past the four planes' tiles", what, xi, i)
				}
			}
		}
	}
	return out
}

// planesQ returns the four h·w planes stride apart of s, and fails if a
// float between them lost its marker or one of theirs kept it.
func planesQ(t *testing.T, what string, s []float32, stride, hw int) []float32 {
	t.Helper()
	out := make([]float32, 0, 4*hw)
	for g := 0; g < 4; g++ {
		out = append(out, s[g*stride:g*stride+hw]...)
		for i := g*stride + hw; i < (g+1)*stride && i < len(s); i++ {
			if math.Float32bits(s[i]) != marker {
				t.Fatalf("%s: wrote float %d, between planes", what, i)
			}
		}
	}
	for i, v := range out {
		if math.Float32bits(v) == marker {
			t.Fatalf("%s: pixel %d of plane %d not written", what, i%hw, i/hw)
		}
	}
	return out
}

// TestQuadMatchesPerPlane holds the four-plane methods, their assembly and
// their twins to four calls of the per-plane methods, bit for bit, for every
// plane size they take, on random data with and without NaN, ±Inf and −0.
func TestQuadMatchesPerPlane(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	impls := []struct {
		name string
		ks   kernelsQ
	}{{"asm", asmKernelsQ}, {"twin", goKernelsQ}}
	if !hasAsm {
		impls = impls[1:]
	}
	for h := 5; h <= 8; h++ {
		for w := 5; w <= 8; w++ {
			for _, special := range []bool{false, true} {
				p := plan4(t, h, w)
				if !p.Quad() {
					t.Fatalf("%dx%d: not Quad", h, w)
				}
				// The assembly uses 672 floats of scratch (in4q's).
				if p.ScratchLen() < 672 {
					t.Fatalf("%dx%d: ScratchLen %d below the kernels' 672", h, w, p.ScratchLen())
				}
				hw := h * w
				// Four per-plane calls need their slack past column 15.
				ld := 16 + p.Slack() + r.IntN(9)
				xs := hw + r.IntN(5)
				name := fmt.Sprintf("%dx%d ld=%d stride=%d special=%v", h, w, ld, xs, special)
				data := func(n int) []float32 {
					s := randSlice(r, n)
					if special {
						withSpecials(r, s)
					}
					return s
				}
				x := data(3*xs + hw)
				m := data(36*ld + 16) // the per-plane calls read past column 15
				bias := float32(r.NormFloat64())
				tmp := make([]float32, p.ScratchLen())

				// References: four per-plane calls.
				wantV := make([]float32, 36*ld+16)
				wantDM := make([]float32, 36*ld+16)
				wantY := make([]float32, 4*hw)
				wantDX := make([]float32, 4*hw)
				for g := 0; g < 4; g++ {
					p.In(wantV[4*g:], ld, x[g*xs:g*xs+hw], tmp)
					p.OutT(wantDM[4*g:], ld, x[g*xs:g*xs+hw], tmp)
					p.Out(wantY[g*hw:(g+1)*hw], m[4*g:], ld, bias)
					p.InT(wantDX[g*hw:(g+1)*hw], m[4*g:], ld, tmp)
				}
				want := [4][]float32{rowsQ(t, "", wantV, ld, false), rowsQ(t, "", wantDM, ld, false), wantY, wantDX}
				// The twins are held to the per-plane twins too: with NaNs
				// about, Go's code and the assembly may pick different NaN
				// operands of an addition, so only the assembly matches
				// the per-plane assembly there.
				wantY, wantDX = make([]float32, 4*hw), make([]float32, 4*hw)
				for g := 0; g < 4; g++ {
					goKernels4.in(wantV[4*g:], ld, x[g*xs:g*xs+hw], h, w, p.TW, p.colMask, tmp)
					goKernels4.outT(wantDM[4*g:], ld, x[g*xs:g*xs+hw], h, w, p.TW, p.colMask, tmp)
					goKernels4.out(wantY[g*hw:(g+1)*hw], m[4*g:], ld, h, w, p.TW, bias, p.colMask)
					goKernels4.inT(wantDX[g*hw:(g+1)*hw], m[4*g:], ld, h, w, p.TW, p.dxMask, tmp)
				}
				wantTwin := [4][]float32{rowsQ(t, "", wantV, ld, false), rowsQ(t, "", wantDM, ld, false), wantY, wantDX}
				if !special {
					for k := range want {
						sameBitsQ(t, name+" per-plane twins", wantTwin[k], want[k])
					}
				}

				mq := m[:35*ld+16]
				for _, im := range impls {
					n := name + " " + im.name
					want := want
					if im.name == "twin" {
						want = wantTwin
					}
					v, check := buffer(t, 35*ld+16)
					im.ks.in(v, ld, x, xs, h, w, p.colMask, randSlice(r, p.ScratchLen()))
					check(n + " in")
					sameBitsQ(t, n+" in", rowsQ(t, n+" in", v, ld, true), want[0])

					dm, check := buffer(t, 35*ld+16)
					im.ks.outT(dm, ld, x, xs, h, w, p.colMask, randSlice(r, p.ScratchLen()))
					check(n + " outT")
					sameBitsQ(t, n+" outT", rowsQ(t, n+" outT", dm, ld, true), want[1])

					y, check := buffer(t, 3*xs+hw)
					im.ks.out(y, xs, mq, ld, h, w, bias, p.colMask)
					check(n + " out")
					sameBitsQ(t, n+" out", planesQ(t, n+" out", y, xs, hw), want[2])

					dx, check := buffer(t, 3*xs+hw)
					im.ks.inT(dx, xs, mq, ld, h, w, p.colMask, randSlice(r, p.ScratchLen()))
					check(n + " inT")
					sameBitsQ(t, n+" inT", planesQ(t, n+" inT", dx, xs, hw), want[3])
				}

				// The methods themselves, on exact-length slices.
				v, _ := buffer(t, 35*ld+16)
				p.In4Images(v, ld, x, xs, tmp)
				sameBitsQ(t, name+" In4Images", rowsQ(t, name+" In4Images", v, ld, true), want[0])
				dm, _ := buffer(t, 35*ld+16)
				p.OutT4Images(dm, ld, x, xs, tmp)
				sameBitsQ(t, name+" OutT4Images", rowsQ(t, name+" OutT4Images", dm, ld, true), want[1])
				y, _ := buffer(t, 3*xs+hw)
				p.Out4Images(y, xs, mq, ld, bias)
				sameBitsQ(t, name+" Out4Images", planesQ(t, name+" Out4Images", y, xs, hw), want[2])
				dx, _ := buffer(t, 3*xs+hw)
				p.InT4Images(dx, xs, mq, ld, tmp)
				sameBitsQ(t, name+" InT4Images", planesQ(t, name+" InT4Images", dx, xs, hw), want[3])
			}
		}
	}
}

// TestQuadPanics checks that the four-plane methods refuse plans they do
// not handle, short slices and overlapping strides.
func TestQuadPanics(t *testing.T) {
	p := plan4(t, 8, 7)
	hw, ld := 56, 16
	n := 35*ld + 16
	v, x := make([]float32, n), make([]float32, 3*hw+hw)
	tmp := make([]float32, p.ScratchLen())
	ok := func(what string, f func()) {
		t.Helper()
		defer func() {
			if e := recover(); e != nil {
				t.Fatalf("%s: panicked: %v", what, e)
			}
		}()
		f()
	}
	bad := func(what, msg string, f func()) {
		t.Helper()
		defer func() {
			t.Helper()
			e := recover()
			if e == nil {
				t.Fatalf("%s: no panic", what)
			}
			if s := fmt.Sprint(e); !strings.Contains(s, msg) {
				t.Fatalf("%s: panic %q, want one about %q", what, s, msg)
			}
		}()
		f()
	}
	ok("exact", func() {
		p.In4Images(v, ld, x, hw, tmp)
		p.Out4Images(x, hw, v, ld, 0)
		p.OutT4Images(v, ld, x, hw, tmp)
		p.InT4Images(x, hw, v, ld, tmp)
	})
	bad("In short v", "transformed slice", func() { p.In4Images(v[:n-1], ld, x, hw, tmp) })
	bad("In short x", "plane slice", func() { p.In4Images(v, ld, x[:4*hw-1], hw, tmp) })
	bad("In short tmp", "scratch", func() { p.In4Images(v, ld, x, hw, tmp[:len(tmp)-1]) })
	bad("In ld", "row stride", func() { p.In4Images(v, 15, x, hw, tmp) })
	bad("In stride", "plane stride", func() { p.In4Images(v, ld, x, hw-1, tmp) })
	bad("Out short m", "transformed slice", func() { p.Out4Images(x, hw, v[:n-1], ld, 0) })
	bad("Out short y", "plane slice", func() { p.Out4Images(x[:4*hw-1], hw, v, ld, 0) })
	bad("OutT short dm", "transformed slice", func() { p.OutT4Images(v[:n-1], ld, x, hw, tmp) })
	bad("OutT short dy", "plane slice", func() { p.OutT4Images(v, ld, x[:4*hw-1], hw, tmp) })
	bad("OutT short tmp", "scratch", func() { p.OutT4Images(v, ld, x, hw, tmp[:len(tmp)-1]) })
	bad("InT short dv", "transformed slice", func() { p.InT4Images(x, hw, v[:n-1], ld, tmp) })
	bad("InT short dx", "plane slice", func() { p.InT4Images(x[:4*hw-1], hw, v, ld, tmp) })
	bad("InT stride", "plane stride", func() { p.InT4Images(x, hw-1, v, ld, tmp) })
	for _, s := range [][3]int{{4, 8, 4}, {8, 9, 4}, {9, 8, 4}, {8, 8, 2}} {
		q, _ := NewPlan4(s[0], s[1])
		if s[2] == 2 {
			q, _ = NewPlan(s[0], s[1])
		}
		if q.Quad() {
			t.Fatalf("%v: Quad", s)
		}
		big := make([]float32, 64*64)
		bad(fmt.Sprintf("%v plan", s), "not one of 2×2 tiles", func() { q.In4Images(big, 64, big, 64, big) })
	}
}

// BenchmarkQuad compares the four-plane transforms with four per-plane
// calls ("planes"), per four planes.
func BenchmarkQuad(b *testing.B) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, s := range []int{8, 7} {
		p, _ := NewPlan4(s, s)
		hw, ld := s*s, 16+p.Slack()
		x := randSlice(r, 4*hw)
		v := randSlice(r, 36*ld)
		tmp := make([]float32, p.ScratchLen())
		run := func(name string, quad, planes func()) {
			b.Run(fmt.Sprintf("%dx%d/%s/quad", s, s, name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					quad()
				}
			})
			b.Run(fmt.Sprintf("%dx%d/%s/planes", s, s, name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					planes()
				}
			})
		}
		run("in", func() { p.In4Images(v, ld, x, hw, tmp) }, func() {
			for g := 0; g < 4; g++ {
				p.In(v[4*g:], ld, x[g*hw:], tmp)
			}
		})
		run("out", func() { p.Out4Images(x, hw, v, ld, 0) }, func() {
			for g := 0; g < 4; g++ {
				p.Out(x[g*hw:], v[4*g:], ld, 0)
			}
		})
		run("outT", func() { p.OutT4Images(v, ld, x, hw, tmp) }, func() {
			for g := 0; g < 4; g++ {
				p.OutT(v[4*g:], ld, x[g*hw:], tmp)
			}
		})
		run("inT", func() { p.InT4Images(x, hw, v, ld, tmp) }, func() {
			for g := 0; g < 4; g++ {
				p.InT(x[g*hw:], v[4*g:], ld, tmp)
			}
		})
	}
}
