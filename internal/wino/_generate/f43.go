package main

// The F(4×4, 3×3) kernels. Each works on eight tiles of a tile row at a
// time, one tile per ymm lane. The tiles' columns are four pixels apart:
// 32 consecutive pixels are split into their four column phases (x[4t+k]
// for k = 0…3) by a 4×4 transpose within each 128-bit lane and a VPERMPS,
// and merged back by the inverse. The arithmetic follows the pure-Go twins
// (twins4.go) operation for operation.

import (
	"fmt"
	"math"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// consts4 holds a kernel set's constant vectors: broadcast 2, 4, 8, −4
// and the phase permutations.
type consts4 struct{ two, four, eight, mfour, perm, unperm operand.Mem }

// c4 holds the 32-byte constants; kc is the set the shared arithmetic
// emitters (bt6all, at4all, a6all, b6all) read, c4 unless a set's emitter
// points it at its own (the zmm set's 64-byte ones, cz).
var (
	c4 consts4
	kc = &c4
)

func globals4() {
	f := func(name string, vals [8]uint32) operand.Mem {
		m := build.GLOBL(name, attr.RODATA|attr.NOPTR)
		for i, v := range vals {
			build.DATA(4*i, operand.U32(v))
		}
		return m
	}
	bc := func(name string, x float32) operand.Mem {
		b := math.Float32bits(x)
		return f(name, [8]uint32{b, b, b, b, b, b, b, b})
	}
	c4.two = bc("two", 2)
	c4.four = bc("four", 4)
	c4.eight = bc("eight", 8)
	c4.mfour = bc("mfour", -4)
	// After the in-lane transpose, phase k holds x[4t+k] for
	// t = 0, 2, 4, 6, 1, 3, 5, 7; perm restores the order, unperm undoes it.
	c4.perm = f("perm4", [8]uint32{0, 4, 1, 5, 2, 6, 3, 7})
	c4.unperm = f("unperm4", [8]uint32{0, 2, 4, 6, 1, 3, 5, 7})
}

// rg loads op into a register unless it is one.
func rg(op operand.Op) reg.VecVirtual {
	if v, ok := op.(reg.VecVirtual); ok {
		return v
	}
	y := ymm()
	build.VMOVUPS(op, y)
	return y
}

func addo(a reg.VecVirtual, b operand.Op) reg.VecVirtual {
	y := ymm()
	build.VADDPS(b, a, y)
	return y
}

func subo(a reg.VecVirtual, b operand.Op) reg.VecVirtual {
	y := ymm()
	build.VSUBPS(b, a, y)
	return y
}

func mulc(a reg.VecVirtual, c operand.Mem) reg.VecVirtual {
	y := ymm()
	build.VMULPS(c, a, y)
	return y
}

// like allocates a register of a's width. vadd, vsub and vmul work on
// either width, so that the ymm and zmm kernels share their arithmetic.
func like(a reg.VecVirtual) reg.VecVirtual {
	if a.Size() == 64 {
		return build.ZMM()
	}
	return build.YMM()
}

func vadd(a, b reg.VecVirtual) reg.VecVirtual {
	y := like(a)
	build.VADDPS(b, a, y)
	return y
}

func vsub(a, b reg.VecVirtual) reg.VecVirtual {
	y := like(a)
	build.VSUBPS(b, a, y)
	return y
}

func vmul(a reg.VecVirtual, c operand.Mem) reg.VecVirtual {
	y := like(a)
	build.VMULPS(c, a, y)
	return y
}

// transpose4 transposes the 4×4 blocks of r within each 128-bit lane.
func transpose4(r [4]reg.VecVirtual) [4]reg.VecVirtual {
	t := [4]reg.VecVirtual{ymm(), ymm(), ymm(), ymm()}
	build.VUNPCKLPS(r[1], r[0], t[0])
	build.VUNPCKHPS(r[1], r[0], t[1])
	build.VUNPCKLPS(r[3], r[2], t[2])
	build.VUNPCKHPS(r[3], r[2], t[3])
	o := [4]reg.VecVirtual{ymm(), ymm(), ymm(), ymm()}
	build.VUNPCKLPD(t[2], t[0], o[0])
	build.VUNPCKHPD(t[2], t[0], o[1])
	build.VUNPCKLPD(t[3], t[1], o[2])
	build.VUNPCKHPD(t[3], t[1], o[3])
	return o
}

// split4 turns the 32 consecutive floats q into their phases: phase k
// holds q[4t+k], t = 0…7.
func split4(q [4]reg.VecVirtual, perm reg.VecVirtual) [4]reg.VecVirtual {
	o := transpose4(q)
	for k := range o {
		y := ymm()
		build.VPERMPS(o[k], perm, y)
		o[k] = y
	}
	return o
}

// merge4 is split4's inverse.
func merge4(x [4]reg.VecVirtual, unperm reg.VecVirtual) [4]reg.VecVirtual {
	var t [4]reg.VecVirtual
	for k := range x {
		t[k] = ymm()
		build.VPERMPS(x[k], unperm, t[k])
	}
	return transpose4(t)
}

// inPasses is the transform of in4 and in4p: the column transform of each
// of the six columns (elements col(c, i)) into the 36 vectors at q, then
// the row transform of each row of q into v's rows at p, ld bytes apart.
func inPasses(col func(c, i int) operand.Mem, q, p, ld reg.GPVirtual) {
	for c := 0; c < 6; c++ {
		var d [6]reg.VecVirtual
		for i := range d {
			d[i] = load(col(c, i))
		}
		bt6all(d, func(k int, v reg.VecVirtual) { build.VMOVUPS(v, mem(q, 32*(6*k+c))) })
	}
	for k := 0; k < 6; k++ {
		var s [6]reg.VecVirtual
		for c := range s {
			s[c] = load(mem(q, 32*(6*k+c)))
		}
		bt6all(s, func(j int, v reg.VecVirtual) {
			build.VMOVUPS(v, mem(p, 0))
			if k < 5 || j < 5 {
				build.ADDQ(ld, p)
			}
		})
	}
}

// bt6all is bt6 on registers, each output handed to store as it is made.
func bt6all(d [6]reg.VecVirtual, store func(j int, v reg.VecVirtual)) {
	store(0, vadd(vmul(vsub(d[0], d[2]), kc.four), vsub(d[4], d[2])))
	a := vsub(d[4], vmul(d[2], kc.four))
	b := vsub(d[3], vmul(d[1], kc.four))
	store(1, vadd(a, b))
	store(2, vsub(a, b))
	c := vsub(d[4], d[2])
	e := vmul(vsub(d[3], d[1]), kc.two)
	store(3, vadd(c, e))
	store(4, vsub(c, e))
	store(5, vadd(vmul(vsub(d[1], d[3]), kc.four), vsub(d[5], d[3])))
}

// at4k is output a of Aᵀ m (at4).
func at4k(a int, m func(i int) operand.Op) reg.VecVirtual {
	switch a {
	case 0:
		s1 := addo(rg(m(1)), m(2))
		s2 := addo(rg(m(3)), m(4))
		return add(add(rg(m(0)), s1), s2)
	case 1:
		d1 := subo(rg(m(1)), m(2))
		d2 := subo(rg(m(3)), m(4))
		return add(d1, mulc(d2, c4.two))
	case 2:
		s1 := addo(rg(m(1)), m(2))
		s2 := addo(rg(m(3)), m(4))
		return add(s1, mulc(s2, c4.four))
	}
	d1 := subo(rg(m(1)), m(2))
	d2 := subo(rg(m(3)), m(4))
	return addo(add(d1, mulc(d2, c4.eight)), m(5))
}

// at4all is at4 on registers.
func at4all(m [6]reg.VecVirtual) [4]reg.VecVirtual {
	s1, d1 := vadd(m[1], m[2]), vsub(m[1], m[2])
	s2, d2 := vadd(m[3], m[4]), vsub(m[3], m[4])
	return [4]reg.VecVirtual{
		vadd(vadd(m[0], s1), s2),
		vadd(d1, vmul(d2, kc.two)),
		vadd(s1, vmul(s2, kc.four)),
		vadd(vadd(d1, vmul(d2, kc.eight)), m[5]),
	}
}

// a6all is A y (a6).
func a6all(y [4]reg.VecVirtual, store func(j int, v reg.VecVirtual)) {
	p, q := vadd(y[0], y[2]), vadd(y[1], y[3])
	r := vadd(y[0], vmul(y[2], kc.four))
	s := vadd(vmul(y[1], kc.two), vmul(y[3], kc.eight))
	store(0, y[0])
	store(1, vadd(p, q))
	store(2, vsub(p, q))
	store(3, vadd(r, s))
	store(4, vsub(r, s))
	store(5, y[3])
}

// b6all is B v (b6).
func b6all(v [6]reg.VecVirtual, store func(j int, v reg.VecVirtual)) {
	a, b := vadd(v[1], v[2]), vsub(v[1], v[2])
	c, d := vadd(v[3], v[4]), vsub(v[3], v[4])
	e := vadd(v[0], a)
	store(0, vmul(v[0], kc.four))
	store(1, vsub(vmul(vsub(v[5], b), kc.four), vmul(d, kc.two)))
	store(2, vsub(vmul(e, kc.mfour), vadd(v[0], c)))
	store(3, vadd(vsub(b, v[5]), vmul(vsub(d, vmul(v[5], kc.two)), kc.two)))
	store(4, vadd(e, c))
	store(5, v[5])
}

// loopEnd increments the counter at ctr and jumps to l while it is below
// (or, with le, not above) the value at lim.
func loopEnd(ctr, lim operand.Mem, l string, le bool) {
	build.INCQ(ctr)
	t := build.GP64()
	build.MOVQ(ctr, t)
	build.CMPQ(t, lim)
	if le {
		build.JLE(operand.LabelRef(l))
	} else {
		build.JL(operand.LabelRef(l))
	}
}

// quarters loads the 32 floats at p under the four column masks at mp,
// skipping the quarters that hold no column of the plane (col+8q ≥ w): a
// masked access whose masked-off lanes cross into another page costs a
// microcode assist. col is the first column's index.
func quarters(p, mp, col reg.GPVirtual, l string) [4]reg.VecVirtual {
	q := [4]reg.VecVirtual{ymm(), zero(), zero(), zero()}
	build.VMASKMOVPS(mem(p, 0), load(mem(mp, 0)), q[0])
	for k := 1; k < 4; k++ {
		t := build.GP64()
		build.LEAQ(operand.Mem{Base: col, Disp: 8 * k}, t)
		build.CMPQ(t, addr("w"))
		build.JGE(operand.LabelRef(l))
		build.VMASKMOVPS(mem(p, 32*k), load(mem(mp, 32*k)), q[k])
	}
	build.Label(l)
	return q
}

// storeQuarters is quarters' counterpart for stores.
func storeQuarters(q [4]reg.VecVirtual, p, mp, col reg.GPVirtual, l string) {
	build.VMASKMOVPS(q[0], load(mem(mp, 0)), mem(p, 0))
	for k := 1; k < 4; k++ {
		t := build.GP64()
		build.LEAQ(operand.Mem{Base: col, Disp: 8 * k}, t)
		build.CMPQ(t, addr("w"))
		build.JGE(operand.LabelRef(l))
		build.VMASKMOVPS(q[k], load(mem(mp, 32*k)), mem(p, 32*k))
	}
	build.Label(l)
}

// th4 stores ⌈h/4⌉ and ⌈tw/8⌉ and returns ⌈tw/8⌉ in a register.
func th4(thM, nbM operand.Mem) reg.GPVirtual {
	t := param("h")
	build.ADDQ(operand.U8(3), t)
	build.SHRQ(operand.U8(2), t)
	build.MOVQ(t, thM)
	t = param("tw")
	build.ADDQ(operand.U8(7), t)
	build.SHRQ(operand.U8(3), t)
	build.MOVQ(t, nbM)
	return t
}

// tileOff returns p + 4·(ty·tw + 8b), the first of block b's tiles in a
// transformed row.
func tileOff(p reg.GPVirtual, tyM, bM operand.Mem) {
	t := build.GP64()
	build.MOVQ(tyM, t)
	build.IMULQ(addr("tw"), t)
	u := build.GP64()
	build.MOVQ(bM, u)
	build.SHLQ(operand.U8(3), u)
	build.ADDQ(u, t)
	build.LEAQ(memi(p, t, 4, 0), p)
}

// splitRows4 is the first phase of in4 and in4z: rows 0 … h−1 of x split
// into their column phases in tmp (see in4).
func splitRows4(lbl func(string) string, z, perm reg.VecVirtual, rowBM, lbM, nbM, rM operand.Mem) {
	build.Label(lbl("split"))
	build.MOVQ(operand.U32(0), rM)
	build.Label(lbl("srow"))
	{
		src := base("x")
		t := build.GP64()
		build.MOVQ(rM, t)
		build.IMULQ(addr("w"), t)
		build.LEAQ(memi(src, t, 4, 0), src)
		dst := base("tmp")
		t = build.GP64()
		build.MOVQ(rM, t)
		build.INCQ(t)
		build.IMULQ(rowBM, t)
		build.ADDQ(t, dst)
		lb := build.GP64()
		build.MOVQ(lbM, lb)
		lb3 := build.GP64()
		build.LEAQ(memi(lb, lb, 2, 0), lb3)
		build.VMOVUPS(z, mem(dst, 0)) // P_0[0]
		e := build.GP64()             // P_1[8·nb]
		build.MOVQ(nbM, e)
		build.SHLQ(operand.U8(5), e)
		build.ADDQ(lb, e)
		build.VMOVUPS(z, memi(dst, e, 1, 0))
		mp := base("mask")
		col := build.GP64()
		build.XORQ(col, col)
		cnt := build.GP64()
		build.MOVQ(nbM, cnt)
		build.Label(lbl("sblk"))
		x := split4(quarters(src, mp, col, lbl("sq")), perm)
		build.VMOVUPS(x[0], memi(dst, lb, 1, 0))
		build.VMOVUPS(x[1], memi(dst, lb, 2, 0))
		build.VMOVUPS(x[2], memi(dst, lb3, 1, 0))
		build.VMOVUPS(x[3], mem(dst, 4))
		build.ADDQ(operand.U32(128), src)
		build.ADDQ(operand.U32(128), mp)
		build.ADDQ(operand.U8(32), dst)
		build.ADDQ(operand.U8(32), col)
		build.DECQ(cnt)
		build.JNZ(operand.LabelRef(lbl("sblk")))
	}
	loopEnd(rM, addr("h"), lbl("srow"), false)
}

// in4: V = Bᵀ d B. The plane's rows are first split into their column
// phases in tmp (row r at (r+1)·4L floats, phase k at +k·L, P_k[t] =
// x[4t+k−1], L = 8·nb + 8, zeros outside the plane), so that the six
// columns of eight tiles are the loads P_0…P_3[tx], P_0[tx+1], P_1[tx+1];
// then inPasses.
func in4() {
	name := "in4"
	header(name, "v []float32, ldv int, x []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" writes V = Bᵀ d B of F(4×4, 3×3) for every tile of the h×w plane x, tile (ty, tx) of row ξ at v[ξ·ldv + ty·tw + tx],",
		"in whole blocks of eight tiles, using tmp for the plane split into column phases (see in4Go).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM, rowBM, lbM, rM := local(), local(), local(), local(), local(), local(), local()

	t := th4(thM, nbM)
	// Phase length in bytes 4·(8·nb + 8) = 32·(nb + 1); a row is four.
	build.INCQ(t)
	build.SHLQ(operand.U8(5), t)
	build.MOVQ(t, lbM)
	build.SHLQ(operand.U8(2), t)
	build.MOVQ(t, rowBM)
	z := zero()
	perm := load(c4.perm)

	zeroPadRows(lbl, z, rowBM, thM, rM, 2)

	// Split rows 0 … h−1.
	splitRows4(lbl, z, perm, rowBM, lbM, nbM, rM)

	build.MOVQ(operand.U32(0), tyM)
	build.Label(lbl("ty"))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("b"))
	{
		rowB := build.GP64()
		build.MOVQ(rowBM, rowB)
		rowB3, rowB5 := build.GP64(), build.GP64()
		build.LEAQ(memi(rowB, rowB, 2, 0), rowB3)
		build.LEAQ(memi(rowB, rowB, 4, 0), rowB5)
		// Tmp row 4·ty (image row 4·ty−1) at block b.
		bp := base("tmp")
		t := build.GP64()
		build.MOVQ(tyM, t)
		build.SHLQ(operand.U8(2), t)
		build.IMULQ(rowB, t)
		build.ADDQ(t, bp)
		t = build.GP64()
		build.MOVQ(bM, t)
		build.SHLQ(operand.U8(5), t)
		build.ADDQ(t, bp)
		var cp [4]reg.GPVirtual
		cp[0] = bp
		for k := 1; k < 4; k++ {
			cp[k] = build.GP64()
			build.MOVQ(cp[k-1], cp[k])
			build.ADDQ(lbM, cp[k])
		}
		rowAt := func(p reg.GPVirtual, i, disp int) operand.Mem {
			switch i {
			case 0:
				return mem(p, disp)
			case 3:
				return memi(p, rowB3, 1, disp)
			case 5:
				return memi(p, rowB5, 1, disp)
			}
			return memi(p, rowB, uint8(i), disp)
		}
		cols := [6]struct {
			p    reg.GPVirtual
			disp int
		}{{cp[0], 0}, {cp[1], 0}, {cp[2], 0}, {cp[3], 0}, {cp[0], 4}, {cp[1], 4}}
		ld := param("ldv")
		build.SHLQ(operand.U8(2), ld)
		p := base("v")
		tileOff(p, tyM, bM)
		// Q after the split plane: tmp + (4·th+2)·rowB.
		qb := base("tmp")
		t = build.GP64()
		build.MOVQ(thM, t)
		build.SHLQ(operand.U8(2), t)
		build.ADDQ(operand.U8(2), t)
		build.IMULQ(rowB, t)
		build.ADDQ(t, qb)
		inPasses(func(c, i int) operand.Mem { return rowAt(cols[c].p, i, cols[c].disp) }, qb, p, ld)
	}
	loopEnd(bM, nbM, lbl("b"), false)
	loopEnd(tyM, thM, lbl("ty"), false)
	build.VZEROUPPER()
	build.RET()
}

// out4: Y = Aᵀ M A + bias, one output row a of the tiles at a time: the
// column transform's output a for the six columns, then the row transform,
// merged into 32 pixels and stored under the column masks.
func out4() {
	name := "out4"
	header(name, "y, m []float32, ldm, h, w, tw int, bias float32, mask []int32",
		name+" writes Y = Aᵀ M A + bias of F(4×4, 3×3) for every tile into the h×w plane y, M's row ξ at m[ξ·ldm:].")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM := local(), local(), local(), local()
	th4(thM, nbM)
	build.MOVQ(operand.U32(0), tyM)
	bias := ymm()
	build.VBROADCASTSS(addr("bias"), bias)
	unperm := load(c4.unperm)

	build.Label(lbl("ty"))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("b"))
	q := base("m")
	tileOff(q, tyM, bM)
	ld := param("ldm")
	build.SHLQ(operand.U8(2), ld)
	ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
	build.IMUL3Q(operand.U8(6), ld, ld6)
	build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
	build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
	mp := base("mask")
	t := build.GP64()
	build.MOVQ(bM, t)
	build.SHLQ(operand.U8(7), t)
	build.ADDQ(t, mp)
	col := build.GP64()
	build.MOVQ(bM, col)
	build.SHLQ(operand.U8(5), col)
	// Row 4ty at y + 4·(4ty·w + 32b).
	yp := base("y")
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.SHLQ(operand.U8(2), t)
	build.IMULQ(addr("w"), t)
	build.ADDQ(col, t)
	build.LEAQ(memi(yp, t, 4, 0), yp)
	for a := 0; a < 4; a++ {
		if a > 0 {
			t := build.GP64()
			build.MOVQ(tyM, t)
			build.SHLQ(operand.U8(2), t)
			build.ADDQ(operand.U8(uint8(a)), t)
			build.CMPQ(t, addr("h"))
			build.JGE(operand.LabelRef(lbl("next")))
			w := param("w")
			build.LEAQ(memi(yp, w, 4, 0), yp)
		}
		pp := build.GP64()
		build.MOVQ(q, pp)
		elem := func(i int) operand.Op {
			switch i {
			case 0:
				return mem(pp, 0)
			case 3:
				return memi(pp, ld18, 1, 0)
			case 5:
				return memi(pp, ld30, 1, 0)
			}
			return memi(pp, ld6, uint8(i), 0)
		}
		var s [6]reg.VecVirtual
		for j := 0; j < 6; j++ {
			s[j] = at4k(a, elem)
			if j < 5 {
				build.ADDQ(ld, pp)
			}
		}
		y := at4all(s)
		for c := range y {
			y[c] = add(y[c], bias)
		}
		storeQuarters(merge4(y, unperm), yp, mp, col, fmt.Sprintf("%s_q%d", name, a))
	}
	build.Label(lbl("next"))
	loopEnd(bM, nbM, lbl("b"), false)
	loopEnd(tyM, thM, lbl("ty"), false)
	build.VZEROUPPER()
	build.RET()
}

// outT4: dM = A dY Aᵀ. Each of a tile row's four image rows (zeros past
// the plane) is split into its phases and transformed along the row, the
// 24 results kept in tmp; then the column transform of each of the six
// columns.
func outT4() {
	name := "outT4"
	header(name, "dm []float32, ldm int, dy []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" writes dM = A dY Aᵀ of F(4×4, 3×3) for every tile of the h×w plane dy, tile (ty, tx) of row ξ at dm[ξ·ldm + ty·tw + tx],",
		"in whole blocks of eight tiles, using tmp for 24 vectors (see outT4Go).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM := local(), local(), local(), local()
	th4(thM, nbM)
	build.MOVQ(operand.U32(0), tyM)
	perm := load(c4.perm)

	build.Label(lbl("ty"))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("b"))
	{
		mp := base("mask")
		t := build.GP64()
		build.MOVQ(bM, t)
		build.SHLQ(operand.U8(7), t)
		build.ADDQ(t, mp)
		col := build.GP64()
		build.MOVQ(bM, col)
		build.SHLQ(operand.U8(5), col)
		yp := base("dy")
		t = build.GP64()
		build.MOVQ(tyM, t)
		build.SHLQ(operand.U8(2), t)
		build.IMULQ(addr("w"), t)
		build.ADDQ(col, t)
		build.LEAQ(memi(yp, t, 4, 0), yp)
		tq := base("tmp")
		for a := 0; a < 4; a++ {
			var q [4]reg.VecVirtual
			if a == 0 {
				q = quarters(yp, mp, col, fmt.Sprintf("%s_q%d", name, a))
			} else {
				q = [4]reg.VecVirtual{zero(), zero(), zero(), zero()}
				t := build.GP64()
				build.MOVQ(tyM, t)
				build.SHLQ(operand.U8(2), t)
				build.ADDQ(operand.U8(uint8(a)), t)
				build.CMPQ(t, addr("h"))
				skip := fmt.Sprintf("%s_row%d", name, a)
				build.JGE(operand.LabelRef(skip))
				w := param("w")
				build.LEAQ(memi(yp, w, 4, 0), yp)
				l := quarters(yp, mp, col, fmt.Sprintf("%s_q%d", name, a))
				for k := range q {
					build.VMOVAPS(l[k], q[k])
				}
				build.Label(skip)
			}
			a6all(split4(q, perm), func(j int, v reg.VecVirtual) {
				build.VMOVUPS(v, mem(tq, 32*(6*a+j)))
			})
		}
	}
	{
		dp := base("dm")
		tileOff(dp, tyM, bM)
		ld := param("ldm")
		build.SHLQ(operand.U8(2), ld)
		ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
		build.IMUL3Q(operand.U8(6), ld, ld6)
		build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
		build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
		tq := base("tmp")
		for j := 0; j < 6; j++ {
			var y [4]reg.VecVirtual
			for a := range y {
				y[a] = load(mem(tq, 32*(6*a+j)))
			}
			a6all(y, func(i int, v reg.VecVirtual) {
				var m operand.Mem
				switch i {
				case 0:
					m = mem(dp, 0)
				case 3:
					m = memi(dp, ld18, 1, 0)
				case 5:
					m = memi(dp, ld30, 1, 0)
				default:
					m = memi(dp, ld6, uint8(i), 0)
				}
				build.VMOVUPS(v, m)
			})
			if j < 5 {
				build.ADDQ(ld, dp)
			}
		}
	}
	loopEnd(bM, nbM, lbl("b"), false)
	loopEnd(tyM, thM, lbl("ty"), false)
	build.VZEROUPPER()
	build.RET()
}

// inT4: dX = Σ B dV Bᵀ overlap-added, in the two passes per tile row that
// inT4Go describes. tmp holds S (24 rows of sl floats, each after a leading
// zero), C (12 rows of sl) and the 36 vectors of Q, sl = 8·nb + 8.
func inT4() {
	name := "inT4"
	header(name, "dx, dv []float32, ldv, h, w, tw int, mask []int32, tmp []float32",
		name+" writes into the h×w plane dx the overlap-added B dV Bᵀ of F(4×4, 3×3) for every tile, dV's row ξ at dv[ξ·ldv:];",
		"tmp is scratch (see inT4Go).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM, slM, offM := local(), local(), local(), local(), local(), local()
	rowMask := build.AllocLocal(32)

	t := th4(thM, nbM)
	// sl in bytes: 4·(8·nb + 8).
	build.INCQ(t)
	build.SHLQ(operand.U8(5), t)
	build.MOVQ(t, slM)
	// Clear S and C: 36·sl bytes, a multiple of 32.
	tp := base("tmp")
	n := build.GP64()
	build.IMUL3Q(operand.U8(36), t, n)
	z := zero()
	build.Label(lbl("clear"))
	build.SUBQ(operand.U8(32), n)
	build.VMOVUPS(z, memi(tp, n, 1, 0))
	build.JNZ(operand.LabelRef(lbl("clear")))
	build.MOVQ(operand.U32(0), tyM)

	build.Label(lbl("ty"))
	tileRowMask(lbl, tyM, thM, offM, rowMask)
	build.MOVQ(operand.U32(0), bM)

	build.Label(lbl("p1"))
	{
		mp := base("mask")
		b := build.GP64()
		build.MOVQ(bM, b)
		build.IMUL3Q(operand.U32(160), b, b)
		tiles := load(memi(mp, b, 1, 0))
		tm := ymm()
		build.VANDPS(tiles, load(rowMask), tm)
		ld := param("ldv")
		build.SHLQ(operand.U8(2), ld)
		ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
		build.IMUL3Q(operand.U8(6), ld, ld6)
		build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
		build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
		p := base("dv")
		build.ADDQ(offM, p)
		b = build.GP64()
		build.MOVQ(bM, b)
		build.SHLQ(operand.U8(5), b)
		build.ADDQ(b, p)
		tp := base("tmp")
		qb := build.GP64()
		build.IMUL3Q(operand.U8(36), slM, qb)
		build.ADDQ(tp, qb) // Q after S and C
		for s := 0; s < 6; s++ {
			var d [6]reg.VecVirtual
			for i := range d {
				var m operand.Mem
				switch i {
				case 0:
					m = mem(p, 0)
				case 3:
					m = memi(p, ld18, 1, 0)
				case 5:
					m = memi(p, ld30, 1, 0)
				default:
					m = memi(p, ld6, uint8(i), 0)
				}
				d[i] = ymm()
				build.VANDPS(m, tm, d[i])
			}
			b6all(d, func(i int, v reg.VecVirtual) {
				build.VMOVUPS(v, mem(qb, 32*(6*i+s)))
			})
			if s < 5 {
				build.ADDQ(ld, p)
			}
		}
		// S row (i, j) at tp + (6i+j)·sl + 4 + 32b, C row at tp + (24+6i+j)·sl + 32b.
		sl := build.GP64()
		build.MOVQ(slM, sl)
		bo := build.GP64()
		build.MOVQ(bM, bo)
		build.SHLQ(operand.U8(5), bo)
		build.ADDQ(bo, tp)
		for i := 0; i < 6; i++ {
			var q [6]reg.VecVirtual
			for s := range q {
				q[s] = load(mem(qb, 32*(6*i+s)))
			}
			b6all(q, func(j int, v reg.VecVirtual) {
				row := build.GP64()
				// Column 0 of the tiles past the last is +0 (see inT4Go).
				keep := func(v reg.VecVirtual) reg.VecVirtual {
					if j > 0 {
						return v
					}
					y := ymm()
					build.VANDPS(tiles, v, y)
					return y
				}
				switch {
				case i < 2:
					build.IMUL3Q(operand.U32(uint32(24+6*i+j)), sl, row)
					r := keep(add(v, load(memi(tp, row, 1, 0))))
					build.IMUL3Q(operand.U32(uint32(6*i+j)), sl, row)
					build.VMOVUPS(r, memi(tp, row, 1, 4))
				case i < 4:
					build.IMUL3Q(operand.U32(uint32(6*i+j)), sl, row)
					build.VMOVUPS(keep(v), memi(tp, row, 1, 4))
				default:
					build.IMUL3Q(operand.U32(uint32(24+6*(i-4)+j)), sl, row)
					build.VMOVUPS(v, memi(tp, row, 1, 0))
				}
			})
		}
	}
	loopEnd(bM, nbM, lbl("p1"), false)

	for i := 0; i < 4; i++ {
		skip := fmt.Sprintf("%s_skip%d", name, i)
		r := build.GP64()
		build.MOVQ(tyM, r)
		build.SHLQ(operand.U8(2), r)
		addConst(r, i-1)
		build.CMPQ(r, operand.U8(0))
		build.JL(operand.LabelRef(skip))
		build.CMPQ(r, addr("h"))
		build.JGE(operand.LabelRef(skip))
		build.MOVQ(operand.U32(0), bM)
		loop := fmt.Sprintf("%s_p2_%d", name, i)
		build.Label(loop)
		{
			col := build.GP64()
			build.MOVQ(bM, col)
			build.SHLQ(operand.U8(5), col)
			// Row r at dx + 4·(r·w + 32b).
			dp := base("dx")
			t := build.GP64()
			build.MOVQ(r, t)
			build.IMULQ(addr("w"), t)
			build.ADDQ(col, t)
			build.LEAQ(memi(dp, t, 4, 0), dp)
			tp := base("tmp")
			b := build.GP64()
			build.MOVQ(bM, b)
			build.SHLQ(operand.U8(5), b)
			build.ADDQ(b, tp)
			sl := build.GP64()
			build.MOVQ(slM, sl)
			rowAt := func(k, disp int) operand.Mem {
				if k == 0 {
					return mem(tp, disp)
				}
				o := build.GP64()
				build.IMUL3Q(operand.U32(uint32(k)), sl, o)
				return memi(tp, o, 1, disp)
			}
			// Column 4t: tile t's j=1 + tile t−1's j=5; 4t+3: tile t's
			// j=4 + tile t+1's j=0.
			y := [4]reg.VecVirtual{
				add(load(rowAt(6*i+1, 4)), load(rowAt(6*i+5, 0))),
				load(rowAt(6*i+2, 4)),
				load(rowAt(6*i+3, 4)),
				add(load(rowAt(6*i+4, 4)), load(rowAt(6*i, 8))),
			}
			mp := base("mask")
			mo := build.GP64()
			build.MOVQ(bM, mo)
			build.IMUL3Q(operand.U32(160), mo, mo)
			build.LEAQ(memi(mp, mo, 1, 32), mp)
			storeQuarters(merge4(y, unpermReg()), dp, mp, col, fmt.Sprintf("%s_q%d", name, i))
		}
		loopEnd(bM, nbM, loop, false)
		build.Label(skip)
	}
	loopEnd(tyM, thM, lbl("ty"), true)
	build.VZEROUPPER()
	build.RET()
}

func unpermReg() reg.VecVirtual { return load(c4.unperm) }
