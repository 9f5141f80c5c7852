package main

// The "quad" set: F(4×4, 3×3) kernels for planes of 2×2 tiles (h, w in
// 5…8) that take four images at once, so that all eight ymm lanes work
// where the per-plane kernels fill two. Lane order, in 64-bit pairs
// (tx = 0, 1): image 0, 2 in the low 128 bits, 1, 3 in the high ones. With
// that order the row-0 and row-1 results of a ξ become the transformed
// row's 16 floats (image, ty, tx) with one VUNPCKLPD and one VUNPCKHPD, and
// four image rows split into their column phases with eight in-lane
// unpacks. The arithmetic is the per-plane kernels' (bt6all, at4all, a6all,
// b6all), operation for operation and operand for operand, so each lane
// computes what they compute for its tile.

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() {
	sets["quad"] = func() {
		build.ConstraintExpr("amd64,!noasm")
		globals4()
		in4q()
		out4q()
		outT4q()
		inT4q()
	}
}

// headerQ is header for the quad kernels; nosplit false lets a kernel
// have a stack frame larger than the linker allows a NOSPLIT function.
func headerQ(name, sig string, nosplit bool, doc ...string) {
	a := attr.Attribute(0)
	if nosplit {
		a = attr.NOSPLIT
	}
	build.TEXT(name, a, "func("+sig+")")
	build.Pragma("noescape")
	doc[len(doc)-1] += fmt.Sprintf(" Its pure-Go twin is %sGo.", name)
	build.Doc(doc...)
}

// planes returns the addresses of the four planes, stride floats apart.
func planes(name, stride string) [4]reg.GPVirtual {
	var p [4]reg.GPVirtual
	p[0] = base(name)
	s := param(stride)
	build.SHLQ(operand.U8(2), s)
	for g := 1; g < 4; g++ {
		p[g] = build.GP64()
		build.LEAQ(memi(p[g-1], s, 1, 0), p[g])
	}
	return p
}

// rowOff returns r·w·4, the byte offset of image row r; wB holds w·4.
func rowOff(r int, wB reg.GPVirtual) reg.GPVirtual {
	o := build.GP64()
	if r == 0 {
		build.XORQ(o, o)
	} else {
		build.IMUL3Q(operand.U8(uint8(r)), wB, o)
	}
	return o
}

// hiMask loads the lane mask of columns 4…7 (colMask[4:8]) into the low
// half of a register; columns 0…3 always lie inside a plane 5 to 8 wide.
func hiMask() reg.VecVirtual {
	m := ymm()
	build.VMOVUPS(mem(base("mask"), 16), m.AsX())
	return m
}

// splitRows loads the row at byte offset off of the four planes p and
// returns its column phases: lane (g, tx) of P_k is x_g[4tx+k], zero for
// columns past the plane (mx masks columns 4…7).
func splitRows(p [4]reg.GPVirtual, off reg.GPVirtual, mx reg.VecVirtual) [4]reg.VecVirtual {
	var s, t [2]reg.VecVirtual
	for h := 0; h < 2; h++ {
		a, b := p[2*h], p[2*h+1]
		// s = columns 0…3 of images a | b, t = columns 4…7.
		s[h] = ymm()
		build.VBROADCASTF128(memi(a, off, 1, 0), s[h])
		build.VINSERTF128(operand.U8(1), memi(b, off, 1, 0), s[h], s[h])
		// The register allocator takes a write of the low half for a
		// partial one: t is zeroed first (free, a zero idiom) so that
		// its upper half does not count as live from the start.
		t[h] = zero()
		s2 := ymm()
		build.VMASKMOVPS(memi(a, off, 1, 16), mx.AsX(), t[h].AsX())
		build.VMASKMOVPS(memi(b, off, 1, 16), mx.AsX(), s2.AsX())
		build.VINSERTF128(operand.U8(1), s2.AsX(), t[h], t[h])
	}
	// l: x[0] x[4] x[1] x[5] per image, hh: x[2] x[6] x[3] x[7].
	var l, hh [2]reg.VecVirtual
	for h := 0; h < 2; h++ {
		l[h], hh[h] = ymm(), ymm()
		build.VUNPCKLPS(t[h], s[h], l[h])
		build.VUNPCKHPS(t[h], s[h], hh[h])
	}
	o := [4]reg.VecVirtual{ymm(), ymm(), ymm(), ymm()}
	build.VUNPCKLPD(l[1], l[0], o[0])
	build.VUNPCKHPD(l[1], l[0], o[1])
	build.VUNPCKLPD(hh[1], hh[0], o[2])
	build.VUNPCKHPD(hh[1], hh[0], o[3])
	return o
}

// storeRows is splitRows' inverse: it writes the phases y (lane (g, tx) of
// y_k is pixel 4tx+k) as the row at byte offset off of the four planes,
// columns 4…7 under the mask mx.
func storeRows(y [4]reg.VecVirtual, p [4]reg.GPVirtual, off reg.GPVirtual, mx reg.VecVirtual) {
	var l, hh [2]reg.VecVirtual
	for h := 0; h < 2; h++ {
		l[h], hh[h] = ymm(), ymm()
	}
	build.VUNPCKLPD(y[1], y[0], l[0])
	build.VUNPCKHPD(y[1], y[0], l[1])
	build.VUNPCKLPD(y[3], y[2], hh[0])
	build.VUNPCKHPD(y[3], y[2], hh[1])
	for h := 0; h < 2; h++ {
		a, b := p[2*h], p[2*h+1]
		s, t := ymm(), ymm()
		build.VSHUFPS(operand.U8(0x88), hh[h], l[h], s)
		build.VSHUFPS(operand.U8(0xDD), hh[h], l[h], t)
		build.VMOVUPS(s.AsX(), memi(a, off, 1, 0))
		build.VEXTRACTF128(operand.U8(1), s, memi(b, off, 1, 0))
		build.VMASKMOVPS(t.AsX(), mx.AsX(), memi(a, off, 1, 16))
		u := ymm()
		build.VEXTRACTF128(operand.U8(1), t, u.AsX())
		build.VMASKMOVPS(u.AsX(), mx.AsX(), memi(b, off, 1, 16))
	}
}

// shiftUp moves each tile's value to the next tile column: lane (g, 1)
// gets lane (g, 0), lane (g, 0) +0.
func shiftUp(v reg.VecVirtual) reg.VecVirtual {
	y := ymm()
	build.VPSLLQ(operand.U8(32), v, y)
	return y
}

// shiftDown moves each tile's value to the previous tile column: lane
// (g, 0) gets lane (g, 1), lane (g, 1) +0.
func shiftDown(v reg.VecVirtual) reg.VecVirtual {
	y := ymm()
	build.VPSRLQ(operand.U8(32), v, y)
	return y
}

// xiRows returns the address of transformed row ξ = 6i+j given pj, the
// address of row j, and the strides ld6 = 6·ld, ld18, ld30 in bytes.
func xiRow(pj, ld6, ld18, ld30 reg.GPVirtual, i, disp int) operand.Mem {
	switch i {
	case 0:
		return mem(pj, disp)
	case 3:
		return memi(pj, ld18, 1, disp)
	case 5:
		return memi(pj, ld30, 1, disp)
	}
	return memi(pj, ld6, uint8(i), disp)
}

// strides loads the row stride of the named argument in bytes and its
// multiples 6, 18 and 30.
func strides(name string) (ld, ld6, ld18, ld30 reg.GPVirtual) {
	ld = param(name)
	build.SHLQ(operand.U8(2), ld)
	ld6, ld18, ld30 = build.GP64(), build.GP64(), build.GP64()
	build.IMUL3Q(operand.U8(6), ld, ld6)
	build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
	build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
	return
}

// splitTy returns tile row ty's eight tiles (lane order above) of the
// transformed row at m: its 16 floats are (image, ty, tx).
func splitTy(m operand.Mem, ty int) reg.VecVirtual {
	a := load(m)
	y := ymm()
	if ty == 0 {
		build.VUNPCKLPD(m.Offset(32), a, y)
	} else {
		build.VUNPCKHPD(m.Offset(32), a, y)
	}
	return y
}

// joinTy writes tile row 0's v and tile row 1's (at r1) as the transformed
// row at m.
func joinTy(v reg.VecVirtual, r1, m operand.Mem) {
	lo, hi := ymm(), ymm()
	build.VUNPCKLPD(r1, v, lo)
	build.VUNPCKHPD(r1, v, hi)
	build.VMOVUPS(lo, m)
	build.VMOVUPS(hi, m.Offset(32))
}

// skipRow jumps to l when image row r lies past the plane (h ≤ r).
func skipRow(r int, l string) {
	build.CMPQ(addr("h"), operand.U8(uint8(r)))
	build.JLE(operand.LabelRef(l))
}

// in4q: V = Bᵀ d B for the four planes. The six column vectors of each
// image row (lane (g, tx) of column c is x_g[4tx−1+c]) go to tmp, C[r][c]
// at vector 6r+c, rows 0…7 (rows past the plane zero); then the column
// transform of tile row 1 into Q1 (vectors 48…83) and of tile row 0 into
// Q0, which overwrites C column by column as it reads it (vector 6k+c); then
// per k the row transforms, tile row 1's six results kept at vectors
// 36…41 (C's dead rows 6 and 7) and joined with tile row 0's.
func in4q() {
	name := "in4q"
	headerQ(name, "v []float32, ldv int, x []float32, xs, h, w int, mask []int32, tmp []float32", true,
		name+" writes V = Bᵀ d B of F(4×4, 3×3) for the 2×2 tiles of the four h×w planes at x, xs floats apart (h, w in 5…8),",
		"tile (ty, tx) of plane g of row ξ at v[ξ·ldv + 4g + 2ty + tx], using 672 floats of tmp.")
	lbl := func(s string) string { return name + "_" + s }
	p := planes("x", "xs")
	wB := param("w")
	build.SHLQ(operand.U8(2), wB)
	mx := hiMask()
	tp := base("tmp")
	vec := func(k int) operand.Mem { return mem(tp, 32*k) }
	for r := 0; r < 8; r++ {
		if r >= 5 {
			skipRow(r, lbl(fmt.Sprintf("z%d", r)))
		}
		x := splitRows(p, rowOff(r, wB), mx)
		c := [6]reg.VecVirtual{shiftUp(x[3]), x[0], x[1], x[2], x[3], shiftDown(x[0])}
		for k, v := range c {
			build.VMOVUPS(v, vec(6*r+k))
		}
	}
	build.JMP(operand.LabelRef(lbl("cols")))
	for r := 5; r < 8; r++ {
		build.Label(lbl(fmt.Sprintf("z%d", r)))
		z := zero()
		for k := 0; k < 6; k++ {
			build.VMOVUPS(z, vec(6*r+k))
		}
	}
	build.Label(lbl("cols"))
	z := zero()
	for _, ty := range []int{1, 0} {
		for c := 0; c < 6; c++ {
			var d [6]reg.VecVirtual
			for i := range d {
				if r := 4*ty - 1 + i; r < 0 || r > 7 {
					d[i] = z
				} else {
					d[i] = load(vec(6*r + c))
				}
			}
			bt6all(d, func(k int, v reg.VecVirtual) {
				if ty == 1 {
					build.VMOVUPS(v, vec(48+6*k+c))
				} else {
					build.VMOVUPS(v, vec(6*k+c))
				}
			})
		}
	}
	vp := base("v")
	ld := param("ldv")
	build.SHLQ(operand.U8(2), ld)
	for k := 0; k < 6; k++ {
		var s [6]reg.VecVirtual
		for c := range s {
			s[c] = load(vec(48 + 6*k + c))
		}
		bt6all(s, func(j int, v reg.VecVirtual) { build.VMOVUPS(v, vec(36+j)) })
		for c := range s {
			s[c] = load(vec(6*k + c))
		}
		bt6all(s, func(j int, v reg.VecVirtual) {
			joinTy(v, vec(36+j), mem(vp, 0))
			if k < 5 || j < 5 {
				build.ADDQ(ld, vp)
			}
		})
	}
	build.VZEROUPPER()
	build.RET()
}

// out4q: Y = Aᵀ M A + bias for the four planes, per tile row the column
// transforms of the six columns into 24 vectors on the stack, then per
// output row a the row transform, merged into the four planes' rows.
func out4q() {
	name := "out4q"
	headerQ(name, "y []float32, ys int, m []float32, ldm, h, w int, bias float32, mask []int32", false,
		name+" writes Y = Aᵀ M A + bias of F(4×4, 3×3) for the 2×2 tiles of the four h×w planes at y, ys floats apart (h, w in 5…8),",
		"tile (ty, tx) of plane g of M's row ξ at m[ξ·ldm + 4g + 2ty + tx].")
	lbl := func(s string) string { return name + "_" + s }
	q := build.AllocLocal(24 * 32)
	p := planes("y", "ys")
	wB := param("w")
	build.SHLQ(operand.U8(2), wB)
	mx := hiMask()
	bias := ymm()
	build.VBROADCASTSS(addr("bias"), bias)
	ld, ld6, ld18, ld30 := strides("ldm")
	for ty := 0; ty < 2; ty++ {
		pj := base("m")
		for j := 0; j < 6; j++ {
			var x [6]reg.VecVirtual
			for i := range x {
				x[i] = splitTy(xiRow(pj, ld6, ld18, ld30, i, 0), ty)
			}
			for a, v := range at4all(x) {
				build.VMOVUPS(v, q.Offset(32*(6*a+j)))
			}
			if j < 5 {
				build.ADDQ(ld, pj)
			}
		}
		for a := 0; a < 4; a++ {
			r := 4*ty + a
			if r >= 5 {
				skipRow(r, lbl("done"))
			}
			var s [6]reg.VecVirtual
			for j := range s {
				s[j] = load(q.Offset(32 * (6*a + j)))
			}
			y := at4all(s)
			for c := range y {
				y[c] = add(y[c], bias)
			}
			storeRows(y, p, rowOff(r, wB), mx)
		}
	}
	build.Label(lbl("done"))
	build.VZEROUPPER()
	build.RET()
}

// outT4q: dM = A dY Aᵀ for the four planes. Per tile row (1, then 0) the
// row transforms of its four image rows (zeros past the plane) into 24
// vectors of tmp, then the column transforms; tile row 1's 36 results wait
// in tmp (vectors 24…59) for tile row 0's to be joined with them.
func outT4q() {
	name := "outT4q"
	headerQ(name, "dm []float32, ldm int, dy []float32, dys, h, w int, mask []int32, tmp []float32", true,
		name+" writes dM = A dY Aᵀ of F(4×4, 3×3) for the 2×2 tiles of the four h×w planes at dy, dys floats apart (h, w in 5…8),",
		"tile (ty, tx) of plane g of row ξ at dm[ξ·ldm + 4g + 2ty + tx], using 480 floats of tmp.")
	lbl := func(s string) string { return name + "_" + s }
	p := planes("dy", "dys")
	wB := param("w")
	build.SHLQ(operand.U8(2), wB)
	mx := hiMask()
	tp := base("tmp")
	vec := func(k int) operand.Mem { return mem(tp, 32*k) }
	ld, ld6, ld18, ld30 := strides("ldm")
	for _, ty := range []int{1, 0} {
		for a := 0; a < 4; a++ {
			r := 4*ty + a
			var d [4]reg.VecVirtual
			if r < 5 {
				d = splitRows(p, rowOff(r, wB), mx)
			} else {
				d = [4]reg.VecVirtual{zero(), zero(), zero(), zero()}
				skip := lbl(fmt.Sprintf("row%d", r))
				skipRow(r, skip)
				l := splitRows(p, rowOff(r, wB), mx)
				for k := range d {
					build.VMOVAPS(l[k], d[k])
				}
				build.Label(skip)
			}
			a6all(d, func(j int, v reg.VecVirtual) { build.VMOVUPS(v, vec(6*a+j)) })
		}
		var pj reg.GPVirtual
		if ty == 0 {
			pj = base("dm")
		}
		for j := 0; j < 6; j++ {
			var y [4]reg.VecVirtual
			for a := range y {
				y[a] = load(vec(6*a + j))
			}
			a6all(y, func(i int, v reg.VecVirtual) {
				if ty == 1 {
					build.VMOVUPS(v, vec(24+6*i+j))
				} else {
					joinTy(v, vec(24+6*i+j), xiRow(pj, ld6, ld18, ld30, i, 0))
				}
			})
			if ty == 0 && j < 5 {
				build.ADDQ(ld, pj)
			}
		}
	}
	build.VZEROUPPER()
	build.RET()
}

// inT4q: dX = Σ B dV Bᵀ overlap-added for the four planes, as inT4Go does
// per plane: per tile row ty = 0, 1 the column transforms into Q (tmp
// vectors 0…35), then per patch row i the row transform, rows 0 and 1 added
// to the last two of the tile row above (C, vectors 36…47, +0 for ty = 0)
// and kept with rows 2 and 3 in S (vectors 48…53) to make image row
// 4ty−1+i, rows 4 and 5 kept in C. Each image row's pixel 4t takes tile t's
// column 1 and tile t−1's column 5, pixel 4t+3 tile t's column 4 and tile
// t+1's column 0, +0 past the edges. Tile row 2, which has no tiles, only
// reaches image row 7, and only its patch row 0: B·0·Bᵀ's row 0 plus C.
func inT4q() {
	name := "inT4q"
	headerQ(name, "dx []float32, dxs int, dv []float32, ldv, h, w int, mask []int32, tmp []float32", true,
		name+" writes into the four h×w planes at dx, dxs floats apart (h, w in 5…8), the overlap-added B dV Bᵀ of F(4×4, 3×3)",
		"for their 2×2 tiles, tile (ty, tx) of plane g of dV's row ξ at dv[ξ·ldv + 4g + 2ty + tx], using 432 floats of tmp.")
	lbl := func(s string) string { return name + "_" + s }
	p := planes("dx", "dxs")
	wB := param("w")
	build.SHLQ(operand.U8(2), wB)
	mx := hiMask()
	tp := base("tmp")
	vec := func(k int) operand.Mem { return mem(tp, 32*k) }
	ld, ld6, ld18, ld30 := strides("ldv")
	row := func(r int) {
		skip := lbl(fmt.Sprintf("row%d", r))
		if r >= 5 {
			skipRow(r, skip)
		}
		y := [4]reg.VecVirtual{
			add(load(vec(48+1)), shiftUp(load(vec(48+5)))),
			load(vec(48 + 2)),
			load(vec(48 + 3)),
			add(load(vec(48+4)), shiftDown(load(vec(48)))),
		}
		storeRows(y, p, rowOff(r, wB), mx)
		if r >= 5 {
			build.Label(skip)
		}
	}
	for ty := 0; ty < 2; ty++ {
		pj := base("dv")
		for s := 0; s < 6; s++ {
			var d [6]reg.VecVirtual
			for i := range d {
				d[i] = splitTy(xiRow(pj, ld6, ld18, ld30, i, 0), ty)
			}
			b6all(d, func(i int, v reg.VecVirtual) { build.VMOVUPS(v, vec(6*i+s)) })
			if s < 5 {
				build.ADDQ(ld, pj)
			}
		}
		for i := 0; i < 6; i++ {
			if ty == 0 && i == 0 {
				continue // image row −1
			}
			var q [6]reg.VecVirtual
			for s := range q {
				q[s] = load(vec(6*i + s))
			}
			b6all(q, func(j int, v reg.VecVirtual) {
				switch {
				case i < 2:
					var c reg.VecVirtual
					if ty == 0 {
						c = add(v, zero())
					} else {
						c = add(v, load(vec(36+6*i+j)))
					}
					build.VMOVUPS(c, vec(48+j))
				case i < 4:
					build.VMOVUPS(v, vec(48+j))
				default:
					build.VMOVUPS(v, vec(36+6*(i-4)+j))
				}
			})
			if i < 4 {
				row(4*ty - 1 + i)
			}
		}
	}
	// Tile row 2: its column transforms give +0 in Q's row 0 (B·0's row 0
	// is 4·0).
	build.CMPQ(addr("h"), operand.U8(7))
	build.JLE(operand.LabelRef(lbl("done")))
	q0 := mulc(zero(), c4.four)
	b6all([6]reg.VecVirtual{q0, q0, q0, q0, q0, q0}, func(j int, v reg.VecVirtual) {
		build.VMOVUPS(add(v, load(vec(36+j))), vec(48+j))
	})
	row(7)
	build.Label(lbl("done"))
	build.VZEROUPPER()
	build.RET()
}
