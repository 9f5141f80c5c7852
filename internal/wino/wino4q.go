package wino

//go:generate go run -C _generate . -set quad -out ../wino_quad_amd64.s -stubs ../wino_quad_amd64_stubs.go -pkg wino

import "fmt"

// Planes 5 to 8 pixels on a side (CIFAR ResNet's 8×8, Fashion-MNIST's 7×7)
// have only 2×2 tiles of F(4×4, 3×3), so the per-plane kernels, eight tiles
// of a tile row per vector, leave six of the eight lanes idle. The *4Images
// methods take four planes (four images of one channel) at once: a vector
// holds the two tiles of one tile row of all four, and the two tile rows are
// joined at the end into the transformed rows' order (image, ty, tx), so that
// the four images' tiles sit side by side where four per-plane calls would
// put them. Each tile gets the per-plane kernels' operations in their order,
// so the results agree bit for bit with four per-plane calls.
//
// Transformed rows: the methods touch columns 0…15 of each row ξ and
// nothing past them; a caller whose last images go through the per-plane
// methods still needs Slack after those.

// kernelsQ is one implementation of the four-plane transforms.
type kernelsQ struct {
	in   func(v []float32, ldv int, x []float32, xs, h, w int, mask []int32, tmp []float32)
	out  func(y []float32, ys int, m []float32, ldm, h, w int, bias float32, mask []int32)
	outT func(dm []float32, ldm int, dy []float32, dys, h, w int, mask []int32, tmp []float32)
	inT  func(dx []float32, dxs int, dv []float32, ldv, h, w int, mask []int32, tmp []float32)
}

var goKernelsQ = kernelsQ{in: in4qGo, out: out4qGo, outT: outT4qGo, inT: inT4qGo}

// Quad reports whether the plan is F(4×4, 3×3) with 2×2 tiles (h, w in
// 5…8), the plans the *4Images methods take.
func (p *Plan) Quad() bool { return p.M == 4 && p.TH == 2 && p.TW == 2 }

// checkQuad panics, as an out-of-range index would, unless the plan is a
// Quad one, the transformed rows (16 floats each, ld apart) fit in nt
// floats, and four planes stride floats apart fit in np.
func (p *Plan) checkQuad(what string, ld, nt, stride, np int) {
	if !p.Quad() {
		panic(fmt.Sprintf("wino.%s: plan %d×%d (F(%d×%d, 3×3)) is not one of 2×2 tiles of F(4×4, 3×3)", what, p.H, p.W, p.M, p.M))
	}
	if ld < 16 {
		panic(fmt.Sprintf("wino.%s: row stride %d below the 16 tiles of four planes", what, ld))
	}
	if nt < 35*ld+16 {
		panic(fmt.Sprintf("wino.%s: transformed slice of %d floats, need %d", what, nt, 35*ld+16))
	}
	hw := p.H * p.W
	if stride < hw {
		panic(fmt.Sprintf("wino.%s: plane stride %d below the plane's %d floats", what, stride, hw))
	}
	if np < 3*stride+hw {
		panic(fmt.Sprintf("wino.%s: plane slice of %d floats, need %d", what, np, 3*stride+hw))
	}
}

// In4Images does what p.In(v[4g:], ldv, x[g·xs:], tmp) does for g = 0…3,
// writing columns 0…15 of v's rows only: tile (ty, tx) of plane g at
// v[ξ·ldv + 4g + 2ty + tx]. tmp is scratch of ScratchLen floats.
func (p *Plan) In4Images(v []float32, ldv int, x []float32, xs int, tmp []float32) {
	p.checkQuad("In4Images", ldv, len(v), xs, len(x))
	p.checkTmp("In4Images", tmp)
	activeQ.in(v, ldv, x, xs, p.H, p.W, p.colMask, tmp)
}

// Out4Images does what p.Out(y[g·ys:], m[4g:], ldm, bias) does for
// g = 0…3, reading columns 0…15 of m's rows only.
func (p *Plan) Out4Images(y []float32, ys int, m []float32, ldm int, bias float32) {
	p.checkQuad("Out4Images", ldm, len(m), ys, len(y))
	activeQ.out(y, ys, m, ldm, p.H, p.W, bias, p.colMask)
}

// OutT4Images does what p.OutT(dm[4g:], ldm, dy[g·dys:], tmp) does for
// g = 0…3, writing columns 0…15 of dm's rows only.
func (p *Plan) OutT4Images(dm []float32, ldm int, dy []float32, dys int, tmp []float32) {
	p.checkQuad("OutT4Images", ldm, len(dm), dys, len(dy))
	p.checkTmp("OutT4Images", tmp)
	activeQ.outT(dm, ldm, dy, dys, p.H, p.W, p.colMask, tmp)
}

// InT4Images does what p.InT(dx[g·dxs:], dv[4g:], ldv, tmp) does for
// g = 0…3, reading columns 0…15 of dv's rows only.
func (p *Plan) InT4Images(dx []float32, dxs int, dv []float32, ldv int, tmp []float32) {
	p.checkQuad("InT4Images", ldv, len(dv), dxs, len(dx))
	p.checkTmp("InT4Images", tmp)
	activeQ.inT(dx, dxs, dv, ldv, p.H, p.W, p.colMask, tmp)
}

// in4qGo is in4Go's tile computation for the four planes' 2×2 tiles, with
// no writes past them.
func in4qGo(v []float32, ldv int, x []float32, xs, h, w int, _ []int32, _ []float32) {
	for g := 0; g < 4; g++ {
		xg := x[g*xs : g*xs+h*w]
		for ty := 0; ty < 2; ty++ {
			for tx := 0; tx < 2; tx++ {
				var s [6][6]float32
				for p := 0; p < 6; p++ {
					var c [6]float32
					for i := range c {
						c[i] = pix(xg, h, w, 4*ty-1+i, 4*tx-1+p)
					}
					t := bt6(c)
					for k := range t {
						s[k][p] = t[k]
					}
				}
				o := 4*g + 2*ty + tx
				for k := 0; k < 6; k++ {
					t := bt6(s[k])
					for j := range t {
						v[(6*k+j)*ldv+o] = t[j]
					}
				}
			}
		}
	}
}

// out4qGo is four calls of out4Go, which reads the tiles only.
func out4qGo(y []float32, ys int, m []float32, ldm, h, w int, bias float32, mask []int32) {
	for g := 0; g < 4; g++ {
		out4Go(y[g*ys:], m[4*g:], ldm, h, w, 2, bias, mask)
	}
}

// outT4qGo is outT4Go's tile computation for the four planes' 2×2 tiles,
// with no writes past them.
func outT4qGo(dm []float32, ldm int, dy []float32, dys, h, w int, _ []int32, _ []float32) {
	for g := 0; g < 4; g++ {
		dg := dy[g*dys : g*dys+h*w]
		for ty := 0; ty < 2; ty++ {
			for tx := 0; tx < 2; tx++ {
				var r [4][6]float32
				for a := 0; a < 4; a++ {
					var d [4]float32
					for c := range d {
						d[c] = pix(dg, h, w, 4*ty+a, 4*tx+c)
					}
					r[a] = a6(d)
				}
				o := 4*g + 2*ty + tx
				for j := 0; j < 6; j++ {
					t := a6([4]float32{r[0][j], r[1][j], r[2][j], r[3][j]})
					for i := range t {
						dm[(6*i+j)*ldm+o] = t[i]
					}
				}
			}
		}
	}
}

// inT4qGo is four calls of inT4Go, which reads the tiles only.
func inT4qGo(dx []float32, dxs int, dv []float32, ldv, h, w int, mask []int32, tmp []float32) {
	for g := 0; g < 4; g++ {
		inT4Go(dx[g*dxs:], dv[4*g:], ldv, h, w, 2, mask, tmp)
	}
}
