package wino

import "fmt"

// F(4×4, 3×3) uses Lavin and Gray's matrices for the points 0, ±1, ±2, ∞:
//
//	Bᵀ = [4  0 −5  0 1 0]   G = [ ¼     0     0 ]   Aᵀ = [1 1  1 1  1 0]
//	     [0 −4 −4  1 1 0]       [−⅙   −⅙    −⅙ ]        [0 1 −1 2 −2 0]
//	     [0  4 −4 −1 1 0]       [−⅙    ⅙    −⅙ ]        [0 1  1 4  4 0]
//	     [0 −2 −1  2 1 0]       [1/24  1/12  ⅙ ]        [0 1 −1 8 −8 1]
//	     [0  2 −1 −2 1 0]       [1/24 −1/12  ⅙ ]
//	     [0  4  0 −5 0 1]       [ 0     0     1 ]
//
// Tile (ty, tx) reads the 6×6 patch whose top-left pixel is (4ty−1, 4tx−1)
// and makes the 4×4 outputs at (4ty, 4tx); th = ⌈h/4⌉, tw = ⌈w/4⌉. The 36
// transformed rows are ξ = 6i+j. The data transforms multiply by powers of
// two only (5 = 4+1 is split, so that every product is exact and a fused
// multiply-add, which Go may emit, rounds as the separate operations do);
// the ⅙ and 1/24 of G are confined to the weights, transformed in float64
// and rounded once. The assembly (see _generate) works on eight tiles of a
// row at a time; their columns are four pixels apart, so each plane row is
// split into its four column phases on the way in and merged again on the
// way out.
//
// F(4×4, 3×3) needs 36 products per 16 outputs instead of 64, but its
// transforms scale values by up to ~100 (Bᵀ's rows sum to 10 in absolute
// value, Aᵀ's to 19), so a float32 result carries rounding of about 1e-6
// to 1e-5 of its magnitude where F(2×2, 3×3)'s carries 1e-7 to 1e-6.

// kernels4 is one implementation of the F(4×4, 3×3) per-plane transforms.
type kernels4 struct {
	in   func(v []float32, ldv int, x []float32, h, w, tw int, mask []int32, tmp []float32)
	out  func(y, m []float32, ldm, h, w, tw int, bias float32, mask []int32)
	outT func(dm []float32, ldm int, dy []float32, h, w, tw int, mask []int32, tmp []float32)
	inT  func(dx, dv []float32, ldv, h, w, tw int, mask []int32, tmp []float32)
}

var goKernels4 = kernels4{in: in4Go, out: out4Go, outT: outT4Go, inT: inT4Go}

// The packed kernels (tw = 4) compute every tile with the same operations
// as the others, so the same twins stand for both.
var goKernels4p = goKernels4

// kernels returns the F(4×4, 3×3) implementation in use for the plan.
func (p *Plan) kernels4() *kernels4 {
	if p.packed {
		return &active4p
	}
	return &active4
}

// NewPlan4 returns the F(4×4, 3×3) plan of an h×w plane, h, w ≥ 1. Its
// lane masks cover blocks of eight tiles, 32 columns:
// colMask 4 vectors per block, columns 32b+l inside [0, w);
// dxMask 5 vectors per block, tile 8b+l < tw, then colMask's four.
func NewPlan4(h, w int) (*Plan, error) {
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("wino: plane %d×%d: sizes must be at least 1", h, w)
	}
	p := &Plan{H: h, W: w, TH: (h + 3) / 4, TW: (w + 3) / 4, M: 4}
	p.nb = (p.TW + 7) / 8
	if p.TW == 4 {
		p.packed = true
		// Lanes 0–3 of a vector are tile row 2u and lanes 4–7 tile row
		// 2u+1, which is why the kernels need tw = 4 exactly: the eight
		// tiles are then consecutive. colMask: two vectors for columns
		// 0…15, twice (the rows of both tile rows). dxMask: the first two
		// of those, then per pair of tile rows u = 0 … th/2 (InT runs one
		// tile row past the last) the tiles that exist.
		p.colMask = make([]int32, 32)
		for l := 0; l < 32; l++ {
			if l%16 < w {
				p.colMask[l] = -1
			}
		}
		np := (p.TH + 2) / 2
		p.dxMask = make([]int32, 16+8*np)
		copy(p.dxMask, p.colMask[:16])
		for u := 0; u < np; u++ {
			for l := 0; l < 8; l++ {
				if 2*u+l/4 < p.TH {
					p.dxMask[16+8*u+l] = -1
				}
			}
		}
		return p, nil
	}
	p.colMask = make([]int32, 32*p.nb)
	p.dxMask = make([]int32, 40*p.nb)
	for b := 0; b < p.nb; b++ {
		for l := 0; l < 32; l++ {
			if 32*b+l < w {
				p.colMask[32*b+l] = -1
				p.dxMask[40*b+8+l] = -1
			}
		}
		for l := 0; l < 8; l++ {
			if 8*b+l < p.TW {
				p.dxMask[40*b+l] = -1
			}
		}
	}
	return p, nil
}

// scratchLen4 covers In's split plane (4·th+2 rows of four phases of
// l floats) and its 36 vectors Q, InT's 24 rows S and 12 rows C of l floats
// and its 36 vectors Q, and OutT's 24 vectors; the vectors are zmm-sized
// and S twice as long for the AVX-512 kernels (wino_z.go), whose InT keeps
// two tile rows' S.
func (p *Plan) scratchLen4() int {
	if p.packed {
		// In: 8·⌈th/2⌉−1 rows of six phases of eight floats (the
		// last row unwritten: Q follows it); InT: 72 vectors; OutT: 24.
		return max((8*((p.TH+1)/2)-1)*48+36*8, 72*8)
	}
	l := 8*p.nb + 8
	return max((4*p.TH+2)*4*l+36*16, 60*l+36*16)
}

// Weights4 writes U = G w Gᵀ of F(4×4, 3×3) for every (o, c) pair of an
// out×in×3×3 weight w into u, element ξ of pair (o, c) at u[(ξ·out+o)·in+c]:
// the 36 matrices U_ξ = out×in of the products. It computes in float64 and
// rounds each element once.
func Weights4(u, w []float32, out, in int) { weights4(u, w, out*in, 0, out*in) }

// weights4 is Weights4 for the pairs k = o·in+c in [lo, hi) of n.
func weights4(u, w []float32, n, lo, hi int) {
	_ = u[36*n-1]
	_ = w[9*n-1]
	// Chunks of pairs go through buf so that u is written a row at a
	// time: its 36 rows are often a power of two apart, and writing them
	// element by element thrashed the L1 sets (4× slower).
	const chunk = 32
	var buf [36][chunk]float32
	for k0 := lo; k0 < hi; k0 += chunk {
		m := min(chunk, hi-k0)
		for l := 0; l < m; l++ {
			g := w[9*(k0+l):][:9]
			var t [6][3]float64 // G g
			for j := 0; j < 3; j++ {
				t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j] = g6(float64(g[j]), float64(g[3+j]), float64(g[6+j]))
			}
			for i := 0; i < 6; i++ {
				a, b, c, d, e, f := g6(t[i][0], t[i][1], t[i][2])
				buf[6*i][l], buf[6*i+1][l], buf[6*i+2][l] = float32(a), float32(b), float32(c)
				buf[6*i+3][l], buf[6*i+4][l], buf[6*i+5][l] = float32(d), float32(e), float32(f)
			}
		}
		for xi := range buf {
			copy(u[xi*n+k0:xi*n+k0+m], buf[xi][:m])
		}
	}
}

// g6 is G x for a 3-vector x.
func g6(x0, x1, x2 float64) (a, b, c, d, e, f float64) {
	const sixth, twelfth, twentyfourth = 1.0 / 6, 1.0 / 12, 1.0 / 24
	return 0.25 * x0, -sixth * (x0 + x1 + x2), -sixth * (x0 - x1 + x2),
		twentyfourth*x0 + twelfth*x1 + sixth*x2, twentyfourth*x0 - twelfth*x1 + sixth*x2, x2
}

// gT3 is Gᵀ y for a 6-vector y.
func gT3(y0, y1, y2, y3, y4, y5 float64) (a, b, c float64) {
	const sixth, twelfth, twentyfourth = 1.0 / 6, 1.0 / 12, 1.0 / 24
	return 0.25*y0 - sixth*(y1+y2) + twentyfourth*(y3+y4),
		sixth*(y2-y1) + twelfth*(y3-y4),
		-sixth*(y1+y2) + sixth*(y3+y4) + y5
}

// WeightsT4 writes dw = Gᵀ dU G, the adjoint of Weights4: du in Weights4'
// layout, dw out×in×3×3, overwritten.
func WeightsT4(dw, du []float32, out, in int) { weightsT4(dw, du, out*in, 0, out*in) }

// weightsT4 is WeightsT4 for the pairs k = o·in+c in [lo, hi) of n.
func weightsT4(dw, du []float32, n, lo, hi int) {
	_ = du[36*n-1]
	_ = dw[9*n-1]
	// Read through buf a row at a time, as Weights4 writes.
	const chunk = 32
	var buf [36][chunk]float32
	for k0 := lo; k0 < hi; k0 += chunk {
		m := min(chunk, hi-k0)
		for xi := range buf {
			copy(buf[xi][:m], du[xi*n+k0:xi*n+k0+m])
		}
		for l := 0; l < m; l++ {
			var t [3][6]float64 // Gᵀ dU
			for j := 0; j < 6; j++ {
				t[0][j], t[1][j], t[2][j] = gT3(float64(buf[j][l]), float64(buf[6+j][l]), float64(buf[12+j][l]),
					float64(buf[18+j][l]), float64(buf[24+j][l]), float64(buf[30+j][l]))
			}
			g := dw[9*(k0+l):][:9]
			for a := 0; a < 3; a++ {
				x, y, z := gT3(t[a][0], t[a][1], t[a][2], t[a][3], t[a][4], t[a][5])
				g[3*a], g[3*a+1], g[3*a+2] = float32(x), float32(y), float32(z)
			}
		}
	}
}

// TransformWeights writes the plan's U of w (Weights or Weights4), u of
// Rows·out·in floats.
func (p *Plan) TransformWeights(u, w []float32, out, in int) {
	p.TransformWeightsRange(u, w, out, in, 0, out*in)
}

// TransformWeightsRange is TransformWeights for the (o, c) pairs
// k = o·in+c in [lo, hi) only, so that disjoint ranges can run at once.
func (p *Plan) TransformWeightsRange(u, w []float32, out, in, lo, hi int) {
	checkPairs(out, in, lo, hi)
	if p.M == 4 {
		weights4(u, w, out*in, lo, hi)
		return
	}
	weights(u, w, out*in, lo, hi)
}

func checkPairs(out, in, lo, hi int) {
	if lo < 0 || hi < lo || hi > out*in {
		panic(fmt.Sprintf("wino: pairs [%d, %d) outside the %d×%d weight", lo, hi, out, in))
	}
}

// TransformWeightsT writes the plan's dw of du (WeightsT or WeightsT4).
func (p *Plan) TransformWeightsT(dw, du []float32, out, in int) {
	p.TransformWeightsTRange(dw, du, out, in, 0, out*in)
}

// TransformWeightsTRange is TransformWeightsT for the pairs in [lo, hi).
func (p *Plan) TransformWeightsTRange(dw, du []float32, out, in, lo, hi int) {
	checkPairs(out, in, lo, hi)
	if p.M == 4 {
		weightsT4(dw, du, out*in, lo, hi)
		return
	}
	weightsT(dw, du, out*in, lo, hi)
}
