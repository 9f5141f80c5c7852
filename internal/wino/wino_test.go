package wino

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var (
	bT = [4][4]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}
	gM = [4][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	aT = [2][4]float64{{1, 1, 1, 0}, {0, 1, -1, -1}}
)

// sizes covers 1×1, odd and even planes, every remainder of the 8-tile
// blocks (tw = 1…9, 16, 17) and the CIFAR ResNet planes.
var sizes = []int{1, 2, 3, 4, 5, 7, 8, 9, 14, 15, 16, 17, 18, 31, 32, 33, 34}

const marker = 0x7fc0dead

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// buffer returns n floats holding the marker inside guard floats that hold
// it too; check fails if a guard changed.
func buffer(t *testing.T, n int) ([]float32, func(string)) {
	const guard = 16
	buf := make([]float32, n+2*guard)
	for i := range buf {
		buf[i] = math.Float32frombits(marker)
	}
	return buf[guard : guard+n : guard+n], func(what string) {
		t.Helper()
		for i := 0; i < guard; i++ {
			if math.Float32bits(buf[i]) != marker || math.Float32bits(buf[n+guard+i]) != marker {
				t.Fatalf("%s: wrote outside its slice", what)
			}
		}
	}
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), twin gives %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func plan(t *testing.T, h, w int) *Plan {
	t.Helper()
	p, err := NewPlan(h, w)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pix64(x []float32, h, w, r, c int) float64 {
	if r < 0 || r >= h || c < 0 || c >= w {
		return 0
	}
	return float64(x[r*w+c])
}

// TestTwinsAgainstDefinition checks the twins against the transforms
// written as the matrix products, in float64.
func TestTwinsAgainstDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, h := range sizes {
		for _, w := range []int{1, 2, 5, 8, 17, 32} {
			p := plan(t, h, w)
			ld := p.Tiles() + p.Slack() + 3
			x := randSlice(r, h*w)
			v := make([]float32, 16*ld)
			inGo(v, ld, x, h, w, p.TW, nil, nil)
			m := randSlice(r, 16*ld)
			y := make([]float32, h*w)
			outGo(y, m, ld, h, w, p.TW, 0.25, nil)
			dm := make([]float32, 16*ld)
			outTGo(dm, ld, x, h, w, p.TW, nil)
			dx := make([]float32, h*w)
			inTGo(dx, m, ld, h, w, p.TW, nil, make([]float32, p.ScratchLen()))
			want := make([]float64, h*w)
			for ty := 0; ty < p.TH; ty++ {
				for tx := 0; tx < p.TW; tx++ {
					o := ty*p.TW + tx
					var mt [4][4]float64
					for xi := range 16 {
						mt[xi/4][xi%4] = float64(m[xi*ld+o])
					}
					for k := 0; k < 4; k++ {
						for j := 0; j < 4; j++ {
							var sv, sdm float64
							for a := 0; a < 4; a++ {
								for b := 0; b < 4; b++ {
									sv += bT[k][a] * pix64(x, h, w, 2*ty-1+a, 2*tx-1+b) * bT[j][b]
								}
							}
							for a := 0; a < 2; a++ {
								for b := 0; b < 2; b++ {
									sdm += aT[a][k] * pix64(x, h, w, 2*ty+a, 2*tx+b) * aT[b][j]
								}
							}
							if got := float64(v[(4*k+j)*ld+o]); math.Abs(got-sv) > 1e-5 {
								t.Fatalf("%dx%d In tile %d ξ=%d: %v, want %v", h, w, o, 4*k+j, got, sv)
							}
							if got := float64(dm[(4*k+j)*ld+o]); math.Abs(got-sdm) > 1e-5 {
								t.Fatalf("%dx%d OutT tile %d ξ=%d: %v, want %v", h, w, o, 4*k+j, got, sdm)
							}
							// B dV Bᵀ scattered over the tile's patch.
							for a := 0; a < 4; a++ {
								for b := 0; b < 4; b++ {
									rr, cc := 2*ty-1+a, 2*tx-1+b
									if rr >= 0 && rr < h && cc >= 0 && cc < w {
										want[rr*w+cc] += bT[k][a] * mt[k][j] * bT[j][b]
									}
								}
							}
						}
					}
					for a := 0; a < 2; a++ {
						for b := 0; b < 2; b++ {
							rr, cc := 2*ty+a, 2*tx+b
							if rr >= h || cc >= w {
								continue
							}
							s := 0.25
							for k := 0; k < 4; k++ {
								for j := 0; j < 4; j++ {
									s += aT[a][k] * mt[k][j] * aT[b][j]
								}
							}
							if got := float64(y[rr*w+cc]); math.Abs(got-s) > 1e-5 {
								t.Fatalf("%dx%d Out (%d,%d): %v, want %v", h, w, rr, cc, got, s)
							}
						}
					}
				}
			}
			for i := range want {
				if math.Abs(float64(dx[i])-want[i]) > 1e-5 {
					t.Fatalf("%dx%d InT pixel %d: %v, want %v", h, w, i, dx[i], want[i])
				}
			}
		}
	}
}

// TestWeights checks Weights against G w Gᵀ and WeightsT as its adjoint:
// ⟨Weights(w), du⟩ = ⟨w, WeightsT(du)⟩.
func TestWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const out, in = 3, 5
	w := randSlice(r, out*in*9)
	u := make([]float32, 16*out*in)
	Weights(u, w, out, in)
	du := randSlice(r, 16*out*in)
	dw := make([]float32, out*in*9)
	WeightsT(dw, du, out, in)
	var lhs, rhs float64
	for o := 0; o < out; o++ {
		for c := 0; c < in; c++ {
			g := w[(o*in+c)*9:]
			for k := 0; k < 4; k++ {
				for j := 0; j < 4; j++ {
					var s float64
					for a := 0; a < 3; a++ {
						for b := 0; b < 3; b++ {
							s += gM[k][a] * float64(g[3*a+b]) * gM[j][b]
						}
					}
					i := ((4*k+j)*out+o)*in + c
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

// TestKernelsMatchTwins holds the assembly to the twins bit for bit, over
// the whole transformed rows (slack included) and the planes, inside guards;
// the slack the kernels read holds NaNs, which must not reach the outputs.
func TestKernelsMatchTwins(t *testing.T) {
	if !hasAsm {
		t.Skip("no assembly kernels on this machine or build")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, h := range sizes {
		for _, w := range sizes {
			p := plan(t, h, w)
			ld := p.Tiles() + p.Slack() + r.IntN(9)
			nT := p.span(ld)
			name := fmt.Sprintf("%dx%d ld=%d", h, w, ld)
			x := randSlice(r, h*w)
			bias := float32(r.NormFloat64())

			var v [2][]float32
			for k, ks := range []kernels{asmKernels, goKernels} {
				var check func(string)
				v[k], check = buffer(t, nT)
				ks.in(v[k], ld, x, h, w, p.TW, p.colMask, randSlice(r, p.ScratchLen()))
				check(name + " in")
			}
			sameBits(t, name+" in", v[0], v[1])

			m := randSlice(r, nT)
			for xi := 0; xi < 16; xi++ {
				for i := p.Tiles(); i < ld && xi*ld+i < nT; i++ {
					m[xi*ld+i] = float32(math.NaN())
				}
			}
			var y, dm, dx [2][]float32
			for k, ks := range []kernels{asmKernels, goKernels} {
				var check func(string)
				y[k], check = buffer(t, h*w)
				ks.out(y[k], m, ld, h, w, p.TW, bias, p.colMask)
				check(name + " out")
				dm[k], check = buffer(t, nT)
				ks.outT(dm[k], ld, x, h, w, p.TW, p.colMask)
				check(name + " outT")
				dx[k], check = buffer(t, h*w)
				tmp := randSlice(r, p.ScratchLen())
				ks.inT(dx[k], m, ld, h, w, p.TW, p.dxMask, tmp)
				check(name + " inT")
			}
			sameBits(t, name+" out", y[0], y[1])
			sameBits(t, name+" outT", dm[0], dm[1])
			sameBits(t, name+" inT", dx[0], dx[1])
			for i, v := range dx[0] {
				if math.Float32bits(v) == marker || math.IsNaN(float64(v)) {
					t.Fatalf("%s inT: pixel %d not written or NaN", name, i)
				}
			}
		}
	}
}

func TestNewPlanErrors(t *testing.T) {
	for _, s := range [][2]int{{0, 3}, {3, 0}, {-1, 1}} {
		if _, err := NewPlan(s[0], s[1]); err == nil {
			t.Errorf("NewPlan(%d, %d) gave no error", s[0], s[1])
		}
	}
}

func BenchmarkTransforms(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range []int{32, 16, 8} {
		p, _ := NewPlan(s, s)
		ld := p.Tiles() + p.Slack()
		x := randSlice(r, s*s)
		v := randSlice(r, p.span(ld))
		tmp := make([]float32, p.ScratchLen())
		for _, ks := range []struct {
			name string
			k    kernels
		}{{"asm", asmKernels}, {"go", goKernels}} {
			b.Run(fmt.Sprintf("%s/%dx%d/in", ks.name, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					ks.k.in(v, ld, x, s, s, p.TW, p.colMask, tmp)
				}
			})
			b.Run(fmt.Sprintf("%s/%dx%d/out", ks.name, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					ks.k.out(x, v, ld, s, s, p.TW, 0, p.colMask)
				}
			})
			b.Run(fmt.Sprintf("%s/%dx%d/outT", ks.name, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					ks.k.outT(v, ld, x, s, s, p.TW, p.colMask)
				}
			})
			b.Run(fmt.Sprintf("%s/%dx%d/inT", ks.name, s, s), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					ks.k.inT(x, v, ld, s, s, p.TW, p.dxMask, tmp)
				}
			})
		}
	}
}
