// Package wino holds the tile transforms of Winograd's minimal filtering
// algorithms F(2×2, 3×3) and F(4×4, 3×3) (Lavin and Gray, "Fast Algorithms
// for Convolutional Neural Networks", 2016) for a 3×3 convolution with
// stride 1 and padding 1, and their adjoints for training. This comment
// describes F(2×2, 3×3), NewPlan's; wino4.go describes F(4×4, 3×3),
// NewPlan4's, which has the same API with 6×6 tiles and 36 rows ξ:
//
//	forward   V = Bᵀ d B   (In)      Y = Aᵀ M A   (Out)
//	backward  dM = A dY Aᵀ (OutT)    dX += B dV Bᵀ, overlap-added (InT)
//	weights   U = G w Gᵀ   (Weights) dw = Gᵀ dU G (WeightsT)
//
// with the matrices
//
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//	G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//	Aᵀ = [1 1 1 0; 0 1 −1 −1]
//
// An h×w plane is cut into th×tw tiles (th = ⌈h/2⌉, tw = ⌈w/2⌉); tile
// (ty, tx) reads the 4×4 input patch whose top-left pixel is
// (2ty−1, 2tx−1), zero outside the plane, and makes the 2×2 outputs at
// (2ty, 2tx); outputs past the plane's edge are dropped. Transformed
// planes are 16 rows ξ = 4i+j (row ξ at offset ξ·ld), each holding the
// tiles row-major at ty·tw+tx, the layout of the 16 matrix products
// M_ξ = U_ξ · V_ξ that replace the convolution's.
//
// The per-tile transforms multiply by 0 and ±1 only, so they are exact
// sums and differences; on amd64 CPUs with AVX2 they run as assembly
// generated with avo (see _generate; `go generate` rebuilds it), eight tiles
// of a row per vector, and elsewhere, or with the build tag noasm, as
// pure-Go twins that perform the same operations in the same order: the two
// agree bit for bit.
//
// In and OutT write, and Out and InT read, up to Plan.Slack floats past the
// last tile of each row ξ (whole vectors of eight tiles); the caller gives
// every row that room (ld ≥ tiles + Slack) and ignores what is there.
// The functions panic, like an out-of-range index, when a slice is too
// short for the plan: the assembly would otherwise read or write past it.
package wino

//go:generate go run -C _generate . -out ../wino_amd64.s -stubs ../wino_amd64_stubs.go -pkg wino

import "fmt"

// kernels is one implementation of the per-plane transforms: the assembly
// or the twins. mask is the plan's table for that transform.
type kernels struct {
	in   func(v []float32, ldv int, x []float32, h, w, tw int, mask []int32, tmp []float32)
	out  func(y, m []float32, ldm, h, w, tw int, bias float32, mask []int32)
	outT func(dm []float32, ldm int, dy []float32, h, w, tw int, mask []int32)
	inT  func(dx, dv []float32, ldv, h, w, tw int, mask []int32, tmp []float32)
}

var goKernels = kernels{in: inGo, out: outGo, outT: outTGo, inT: inTGo}

// Asm reports whether the assembly kernels are in use.
func Asm() bool { return hasAsm }

// Plan holds the tiling of an h×w plane and the lane masks the assembly
// uses at the plane's edges, so that a call computes nothing but the tiles.
type Plan struct {
	H, W   int
	TH, TW int // tile rows and columns
	M      int // outputs per tile side: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3)
	nb     int // 8-tile blocks per tile row
	// packed: an F(4×4, 3×3) plan with tw = 4 (planes 13 to 16 wide),
	// whose kernels put two tile rows in each vector so as not to leave
	// half of its lanes idle.
	packed bool
	// Lane masks (−1 or 0), eight int32 per ymm, per 8-tile block b:
	// colMask 2 vectors: columns 16b+l, 16b+8+l inside [0, w)
	// dxMask  3 vectors: tile 8b+l < tw, then colMask's two
	colMask, dxMask []int32
}

// NewPlan returns the plan of an h×w plane, h, w ≥ 1.
func NewPlan(h, w int) (*Plan, error) {
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("wino: plane %d×%d: sizes must be at least 1", h, w)
	}
	p := &Plan{H: h, W: w, TH: (h + 1) / 2, TW: (w + 1) / 2, M: 2}
	p.nb = (p.TW + 7) / 8
	p.colMask = make([]int32, 16*p.nb)
	p.dxMask = make([]int32, 24*p.nb)
	for b := 0; b < p.nb; b++ {
		for l := 0; l < 16; l++ {
			if 16*b+l < w {
				p.colMask[16*b+l] = -1
				p.dxMask[24*b+8+l] = -1
			}
		}
		for l := 0; l < 8; l++ {
			if 8*b+l < p.TW {
				p.dxMask[24*b+l] = -1
			}
		}
	}
	return p, nil
}

// Rows is the number of transformed rows ξ, (M+2)²: 16 or 36, the
// number of matrix products.
func (p *Plan) Rows() int { return (p.M + 2) * (p.M + 2) }

// Tiles is the number of tiles of the plane, th·tw.
func (p *Plan) Tiles() int { return p.TH * p.TW }

// Slack is how many floats past the last tile of a transformed row the
// transforms may touch.
func (p *Plan) Slack() int { return 8*p.nb - p.TW }

// ScratchLen is the length of the scratch In and InT need: In keeps the
// plane's rows there split into even and odd columns, with a border of
// zeros, so that each tile column is a contiguous vector.
func (p *Plan) ScratchLen() int {
	if p.M == 4 {
		return p.scratchLen4()
	}
	l := 8*p.nb + 8
	return max((2*p.TH+2)*2*l, 16*l+128)
}

func (p *Plan) span(ld int) int { return (p.Rows()-1)*ld + (p.TH-1)*p.TW + 8*p.nb }

func (p *Plan) check(what string, ld, nt, np int) {
	if ld < p.Tiles()+p.Slack() {
		panic(fmt.Sprintf("wino.%s: row stride %d below tiles+slack %d", what, ld, p.Tiles()+p.Slack()))
	}
	if nt < p.span(ld) {
		panic(fmt.Sprintf("wino.%s: transformed slice of %d floats, need %d", what, nt, p.span(ld)))
	}
	if np < p.H*p.W {
		panic(fmt.Sprintf("wino.%s: plane slice of %d floats, need %d", what, np, p.H*p.W))
	}
}

// In writes V = Bᵀ d B of every tile of the h×w plane x into the Rows rows of
// v (row ξ at v[ξ·ldv:]); tmp is scratch of ScratchLen floats.
func (p *Plan) In(v []float32, ldv int, x, tmp []float32) {
	p.check("In", ldv, len(v), len(x))
	p.checkTmp("In", tmp)
	if p.M == 4 {
		p.kernels4().in(v, ldv, x, p.H, p.W, p.TW, p.colMask, tmp)
		return
	}
	active.in(v, ldv, x, p.H, p.W, p.TW, p.colMask, tmp)
}

func (p *Plan) checkTmp(what string, tmp []float32) {
	if len(tmp) < p.ScratchLen() {
		panic(fmt.Sprintf("wino.%s: scratch of %d floats, need %d", what, len(tmp), p.ScratchLen()))
	}
}

// Out writes Y = Aᵀ M A + bias of every tile into the h×w plane y, M being
// the Rows rows of m (row ξ at m[ξ·ldm:]).
func (p *Plan) Out(y, m []float32, ldm int, bias float32) {
	p.check("Out", ldm, len(m), len(y))
	if p.M == 4 {
		p.kernels4().out(y, m, ldm, p.H, p.W, p.TW, bias, p.colMask)
		return
	}
	active.out(y, m, ldm, p.H, p.W, p.TW, bias, p.colMask)
}

// OutT writes dM = A dY Aᵀ of every tile of the h×w plane dy into the Rows
// rows of dm, outputs past the plane's edge reading as zero: the adjoint of
// Out without the bias. tmp is scratch of ScratchLen floats.
func (p *Plan) OutT(dm []float32, ldm int, dy, tmp []float32) {
	p.check("OutT", ldm, len(dm), len(dy))
	p.checkTmp("OutT", tmp)
	if p.M == 4 {
		p.kernels4().outT(dm, ldm, dy, p.H, p.W, p.TW, p.colMask, tmp)
		return
	}
	active.outT(dm, ldm, dy, p.H, p.W, p.TW, p.colMask)
}

// InT writes into the h×w plane dx the sum over the tiles of B dV Bᵀ, each
// (M+2)×(M+2) patch added at the pixels its tile read: the adjoint of In. dx is
// overwritten, not accumulated into; tmp is scratch of ScratchLen floats.
func (p *Plan) InT(dx, dv []float32, ldv int, tmp []float32) {
	p.check("InT", ldv, len(dv), len(dx))
	p.checkTmp("InT", tmp)
	if p.M == 4 {
		p.kernels4().inT(dx, dv, ldv, p.H, p.W, p.TW, p.dxMask, tmp)
		return
	}
	active.inT(dx, dv, ldv, p.H, p.W, p.TW, p.dxMask, tmp)
}

// Weights writes U = G w Gᵀ for every (o, c) pair of an out×in×3×3 weight
// w into u, U's element ξ of pair (o, c) at u[(ξ·out+o)·in+c]: the 16
// matrices U_ξ = out×in of the products.
func Weights(u, w []float32, out, in int) { weights(u, w, out*in, 0, out*in) }

// weights is Weights for the pairs k = o·in+c in [lo, hi) of n.
func weights(u, w []float32, n, lo, hi int) {
	_ = u[16*n-1]
	_ = w[9*n-1]
	for k := lo; k < hi; k++ {
		g := w[k*9:][:9]
		// t = G g: 4×3.
		var t [4][3]float32
		for j := 0; j < 3; j++ {
			g0, g1, g2 := g[j], g[3+j], g[6+j]
			t[0][j] = g0
			t[1][j] = 0.5 * (g0 + g1 + g2)
			t[2][j] = 0.5 * (g0 - g1 + g2)
			t[3][j] = g2
		}
		for i := 0; i < 4; i++ {
			r0, r1, r2 := t[i][0], t[i][1], t[i][2]
			e := 4*i*n + k
			u[e] = r0
			u[e+n] = 0.5 * (r0 + r1 + r2)
			u[e+2*n] = 0.5 * (r0 - r1 + r2)
			u[e+3*n] = r2
		}
	}
}

// WeightsT writes dw = Gᵀ dU G, the adjoint of Weights: du in Weights'
// layout, dw out×in×3×3, overwritten.
func WeightsT(dw, du []float32, out, in int) { weightsT(dw, du, out*in, 0, out*in) }

// weightsT is WeightsT for the pairs k = o·in+c in [lo, hi) of n.
func weightsT(dw, du []float32, n, lo, hi int) {
	_ = du[16*n-1]
	_ = dw[9*n-1]
	for k := lo; k < hi; k++ {
		var d [4][4]float32
		for xi := 0; xi < 16; xi++ {
			d[xi/4][xi%4] = du[xi*n+k]
		}
		// t = Gᵀ d: 3×4.
		var t [3][4]float32
		for j := 0; j < 4; j++ {
			h1, h2 := 0.5*d[1][j], 0.5*d[2][j]
			t[0][j] = d[0][j] + h1 + h2
			t[1][j] = h1 - h2
			t[2][j] = h1 + h2 + d[3][j]
		}
		g := dw[k*9:][:9]
		for i := 0; i < 3; i++ {
			h1, h2 := 0.5*t[i][1], 0.5*t[i][2]
			g[3*i] = t[i][0] + h1 + h2
			g[3*i+1] = h1 - h2
			g[3*i+2] = h1 + h2 + t[i][3]
		}
	}
}
