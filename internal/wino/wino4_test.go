package wino

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var (
	bT4 = [6][6]float64{
		{4, 0, -5, 0, 1, 0},
		{0, -4, -4, 1, 1, 0},
		{0, 4, -4, -1, 1, 0},
		{0, -2, -1, 2, 1, 0},
		{0, 2, -1, -2, 1, 0},
		{0, 4, 0, -5, 0, 1},
	}
	gM4 = [6][3]float64{
		{1.0 / 4, 0, 0},
		{-1.0 / 6, -1.0 / 6, -1.0 / 6},
		{-1.0 / 6, 1.0 / 6, -1.0 / 6},
		{1.0 / 24, 1.0 / 12, 1.0 / 6},
		{1.0 / 24, -1.0 / 12, 1.0 / 6},
		{0, 0, 1},
	}
	aT4 = [4][6]float64{
		{1, 1, 1, 1, 1, 0},
		{0, 1, -1, 2, -2, 0},
		{0, 1, 1, 4, 4, 0},
		{0, 1, -1, 8, -8, 1},
	}
)

// sizes4 covers 1×1, every remainder of the 4-pixel tiles and of the
// 8-tile blocks (tw = 1…9), and the CIFAR ResNet and Fashion-MNIST planes.
var sizes4 = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 16, 28, 29, 32, 33, 35, 36, 37}

func plan4(t *testing.T, h, w int) *Plan {
	t.Helper()
	p, err := NewPlan4(h, w)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTwins4AgainstDefinition checks the F(4×4, 3×3) twins against the
// transforms written as the matrix products, in float64. The tolerance is
// relative to the sums of absolute terms: the transforms round a few times
// on values up to 100× the inputs.
func TestTwins4AgainstDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, h := range sizes4 {
		for _, w := range []int{1, 3, 4, 5, 9, 16, 33, 37} {
			p := plan4(t, h, w)
			ld := p.Tiles() + p.Slack() + 3
			x := randSlice(r, h*w)
			v := make([]float32, 36*ld)
			in4Go(v, ld, x, h, w, p.TW, nil, nil)
			m := randSlice(r, 36*ld)
			y := make([]float32, h*w)
			out4Go(y, m, ld, h, w, p.TW, 0.25, nil)
			dm := make([]float32, 36*ld)
			outT4Go(dm, ld, x, h, w, p.TW, nil, nil)
			dx := make([]float32, h*w)
			inT4Go(dx, m, ld, h, w, p.TW, nil, make([]float32, p.ScratchLen()))
			want := make([]float64, h*w)
			wantAbs := make([]float64, h*w)
			near := func(what string, got, want, abs float64) {
				t.Helper()
				if math.Abs(got-want) > 1e-6*abs+1e-6 {
					t.Fatalf("%dx%d %s: %v, want %v", h, w, what, got, want)
				}
			}
			for ty := 0; ty < p.TH; ty++ {
				for tx := 0; tx < p.TW; tx++ {
					o := ty*p.TW + tx
					var mt [6][6]float64
					for xi := range 36 {
						mt[xi/6][xi%6] = float64(m[xi*ld+o])
					}
					for k := 0; k < 6; k++ {
						for j := 0; j < 6; j++ {
							var sv, av, sdm, adm float64
							for a := 0; a < 6; a++ {
								for b := 0; b < 6; b++ {
									e := bT4[k][a] * pix64(x, h, w, 4*ty-1+a, 4*tx-1+b) * bT4[j][b]
									sv += e
									av += math.Abs(e)
								}
							}
							for a := 0; a < 4; a++ {
								for b := 0; b < 4; b++ {
									e := aT4[a][k] * pix64(x, h, w, 4*ty+a, 4*tx+b) * aT4[b][j]
									sdm += e
									adm += math.Abs(e)
								}
							}
							near(fmt.Sprintf("In tile %d ξ=%d", o, 6*k+j), float64(v[(6*k+j)*ld+o]), sv, av)
							near(fmt.Sprintf("OutT tile %d ξ=%d", o, 6*k+j), float64(dm[(6*k+j)*ld+o]), sdm, adm)
							for a := 0; a < 6; a++ {
								for b := 0; b < 6; b++ {
									rr, cc := 4*ty-1+a, 4*tx-1+b
									if rr >= 0 && rr < h && cc >= 0 && cc < w {
										e := bT4[k][a] * mt[k][j] * bT4[j][b]
										want[rr*w+cc] += e
										wantAbs[rr*w+cc] += math.Abs(e)
									}
								}
							}
						}
					}
					for a := 0; a < 4; a++ {
						for b := 0; b < 4; b++ {
							rr, cc := 4*ty+a, 4*tx+b
							if rr >= h || cc >= w {
								continue
							}
							s, abs := 0.25, 0.25
							for k := 0; k < 6; k++ {
								for j := 0; j < 6; j++ {
									e := aT4[a][k] * mt[k][j] * aT4[b][j]
									s += e
									abs += math.Abs(e)
								}
							}
							near(fmt.Sprintf("Out (%d,%d)", rr, cc), float64(y[rr*w+cc]), s, abs)
						}
					}
				}
			}
			for i := range want {
				near(fmt.Sprintf("InT pixel %d", i), float64(dx[i]), want[i], wantAbs[i])
			}
		}
	}
}

// TestWeights4 checks Weights4 against G w Gᵀ and WeightsT4 as its adjoint,
// with fewer pairs than a chunk of them and with several chunks and a
// remainder.
func TestWeights4(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, s := range [][2]int{{3, 5}, {5, 13}} {
		testWeights4(t, r, s[0], s[1])
	}
}

func testWeights4(t *testing.T, r *rand.Rand, out, in int) {
	w := randSlice(r, out*in*9)
	u := make([]float32, 36*out*in)
	Weights4(u, w, out, in)
	du := randSlice(r, 36*out*in)
	dw := make([]float32, out*in*9)
	WeightsT4(dw, du, out, in)
	var lhs, rhs float64
	for o := 0; o < out; o++ {
		for c := 0; c < in; c++ {
			g := w[(o*in+c)*9:]
			for k := 0; k < 6; k++ {
				for j := 0; j < 6; j++ {
					var s float64
					for a := 0; a < 3; a++ {
						for b := 0; b < 3; b++ {
							s += gM4[k][a] * float64(g[3*a+b]) * gM4[j][b]
						}
					}
					i := ((6*k+j)*out+o)*in + c
					if math.Abs(float64(u[i])-s) > 1e-6 {
						t.Fatalf("U[%d] = %v, want %v", i, u[i], s)
					}
					lhs += float64(u[i]) * float64(du[i])
				}
			}
		}
	}
	for i := range w {
		rhs += float64(w[i]) * float64(dw[i])
	}
	if math.Abs(lhs-rhs) > 1e-5*math.Abs(lhs)+1e-5 {
		t.Fatalf("⟨U, dU⟩ = %v but ⟨w, dw⟩ = %v", lhs, rhs)
	}
}

// TestAdjoints4 checks the data transforms pairwise in float64:
// ⟨In(x), dV⟩ = ⟨x, InT(dV)⟩ and ⟨Out(M), dY⟩ = ⟨M, OutT(dY)⟩ over the
// tiles, the identities backpropagation relies on.
func TestAdjoints4(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, s := range [][2]int{{1, 1}, {5, 7}, {8, 8}, {14, 14}, {13, 37}, {32, 32}} {
		h, w := s[0], s[1]
		p := plan4(t, h, w)
		ld := p.Tiles() + p.Slack()
		n := p.span(ld)
		tmp := make([]float32, p.ScratchLen())
		x, dy := randSlice(r, h*w), randSlice(r, h*w)
		m, dv := randSlice(r, n), randSlice(r, n)
		v, dm := make([]float32, n), make([]float32, n)
		y, dx := make([]float32, h*w), make([]float32, h*w)
		p.In(v, ld, x, tmp)
		p.InT(dx, dv, ld, tmp)
		p.Out(y, m, ld, 0)
		p.OutT(dm, ld, dy, tmp)
		dot := func(a, b []float32, rows bool) (s, abs float64) {
			for i := range a {
				if rows && i%ld >= p.Tiles() {
					continue
				}
				e := float64(a[i]) * float64(b[i])
				s += e
				abs += math.Abs(e)
			}
			return s, abs
		}
		l1, a1 := dot(v[:36*ld-ld+p.Tiles()], dv, true)
		r1, _ := dot(x, dx, false)
		if math.Abs(l1-r1) > 1e-6*a1 {
			t.Errorf("%dx%d: ⟨In x, dV⟩ = %v, ⟨x, InT dV⟩ = %v", h, w, l1, r1)
		}
		l2, a2 := dot(y, dy, false)
		r2, _ := dot(m[:36*ld-ld+p.Tiles()], dm, true)
		if math.Abs(l2-r2) > 1e-6*a2 {
			t.Errorf("%dx%d: ⟨Out M, dY⟩ = %v, ⟨M, OutT dY⟩ = %v", h, w, l2, r2)
		}
	}
}

// TestKernels4MatchTwins holds the F(4×4, 3×3) assembly to the twins bit
// for bit, as TestKernelsMatchTwins does F(2×2, 3×3)'s.
func TestKernels4MatchTwins(t *testing.T) {
	if !hasAsm {
		t.Skip("no assembly kernels on this machine or build")
	}
	r := rand.New(rand.NewPCG(17, 18))
	for _, h := range sizes4 {
		for _, w := range sizes4 {
			p := plan4(t, h, w)
			ld := p.Tiles() + p.Slack() + r.IntN(9)
			nT := p.span(ld)
			name := fmt.Sprintf("F4 %dx%d ld=%d", h, w, ld)
			x := randSlice(r, h*w)
			bias := float32(r.NormFloat64())

			asm := asmKernels4
			if p.packed {
				asm = asmKernels4p
			}
			var v [2][]float32
			for k, ks := range []kernels4{asm, goKernels4} {
				var check func(string)
				v[k], check = buffer(t, nT)
				ks.in(v[k], ld, x, h, w, p.TW, p.colMask, randSlice(r, p.ScratchLen()))
				check(name + " in")
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
			sameBits(t, name+" in", rows(v[0]), rows(v[1]))

			m := randSlice(r, nT)
			for xi := 0; xi < 36; xi++ {
				for i := p.Tiles(); i < ld && xi*ld+i < nT; i++ {
					m[xi*ld+i] = float32(math.NaN())
				}
			}
			var y, dm, dx [2][]float32
			for k, ks := range []kernels4{asm, goKernels4} {
				var check func(string)
				y[k], check = buffer(t, h*w)
				ks.out(y[k], m, ld, h, w, p.TW, bias, p.colMask)
				check(name + " out")
				dm[k], check = buffer(t, nT)
				ks.outT(dm[k], ld, x, h, w, p.TW, p.colMask, randSlice(r, p.ScratchLen()))
				check(name + " outT")
				dx[k], check = buffer(t, h*w)
				ks.inT(dx[k], m, ld, h, w, p.TW, p.dxMask, randSlice(r, p.ScratchLen()))
				check(name + " inT")
			}
			sameBits(t, name+" out", y[0], y[1])
			sameBits(t, name+" outT", rows(dm[0]), rows(dm[1]))
			sameBits(t, name+" inT", dx[0], dx[1])
			for i := range y[0] {
				for _, s := range [][]float32{y[0], dx[0]} {
					if math.Float32bits(s[i]) == marker || math.IsNaN(float64(s[i])) {
						t.Fatalf("%s out/inT: pixel %d not written or NaN", name, i)
					}
				}
			}
		}
	}
}

func TestNewPlan4Errors(t *testing.T) {
	for _, s := range [][2]int{{0, 3}, {3, 0}, {-1, 1}} {
		if _, err := NewPlan4(s[0], s[1]); err == nil {
			t.Errorf("NewPlan4(%d, %d) gave no error", s[0], s[1])
		}
	}
}

func BenchmarkTransforms4(b *testing.B) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, s := range []int{32, 28, 16, 14, 8, 7} {
		for _, m := range []int{2, 4} {
			p, _ := NewPlan(s, s)
			if m == 4 {
				p, _ = NewPlan4(s, s)
			}
			ld := p.Tiles() + p.Slack()
			x := randSlice(r, s*s)
			v := randSlice(r, p.span(ld))
			tmp := make([]float32, p.ScratchLen())
			b.Run(fmt.Sprintf("F%d/%dx%d/in", m, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p.In(v, ld, x, tmp)
				}
			})
			b.Run(fmt.Sprintf("F%d/%dx%d/out", m, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p.Out(x, v, ld, 0)
				}
			})
			b.Run(fmt.Sprintf("F%d/%dx%d/outT", m, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p.OutT(v, ld, x, tmp)
				}
			})
			b.Run(fmt.Sprintf("F%d/%dx%d/inT", m, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p.InT(x, v, ld, tmp)
				}
			})
		}
	}
}

func BenchmarkWeights4(b *testing.B) {
	r := rand.New(rand.NewPCG(21, 22))
	const out, in = 64, 64
	w := randSlice(r, out*in*9)
	u := make([]float32, 36*out*in)
	b.Run("Weights4", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Weights4(u, w, out, in)
		}
	})
	b.Run("WeightsT4", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			WeightsT4(w, u, out, in)
		}
	})
	b.Run("Weights", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Weights(u, w, out, in)
		}
	})
	b.Run("WeightsT", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			WeightsT(w, u, out, in)
		}
	})
}

// TestTransformWeightsRange checks that ranges of pairs, in any split,
// write exactly what the whole transform does, for both tile sizes.
func TestTransformWeightsRange(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	const out, in = 7, 11
	w := randSlice(r, out*in*9)
	for _, m := range []int{2, 4} {
		p, _ := NewPlan(8, 8)
		if m == 4 {
			p, _ = NewPlan4(8, 8)
		}
		n := p.Rows() * out * in
		want, got := make([]float32, n), make([]float32, n)
		p.TransformWeights(want, w, out, in)
		dwWant, dwGot := make([]float32, out*in*9), make([]float32, out*in*9)
		p.TransformWeightsT(dwWant, want, out, in)
		for _, cuts := range [][]int{{0, 77}, {0, 1, 40, 77}, {0, 33, 34, 76, 77}} {
			for i := range got {
				got[i] = float32(math.NaN())
			}
			for i := range dwGot {
				dwGot[i] = float32(math.NaN())
			}
			for c := 1; c < len(cuts); c++ {
				p.TransformWeightsRange(got, w, out, in, cuts[c-1], cuts[c])
				p.TransformWeightsTRange(dwGot, want, out, in, cuts[c-1], cuts[c])
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("F%d cuts %v: u[%d] = %v, want %v", m, cuts, i, got[i], want[i])
				}
			}
			for i := range dwWant {
				if math.Float32bits(dwGot[i]) != math.Float32bits(dwWant[i]) {
					t.Fatalf("F%d cuts %v: dw[%d] = %v, want %v", m, cuts, i, dwGot[i], dwWant[i])
				}
			}
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("F%d: a range past the weight did not panic", m)
				}
			}()
			p.TransformWeightsRange(got, w, out, in, 5, out*in+1)
		}()
	}
}
