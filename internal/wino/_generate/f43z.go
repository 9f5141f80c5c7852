package main

// The AVX-512 F(4×4, 3×3) kernels (set "z"). They do the arithmetic of the
// AVX2 kernels of f43.go, operation for operation, on zmm registers whose
// low half is tile row ty and high half tile row ty+1: sixteen tiles per
// instruction where the plane is 32 or 28 pixels wide. The parts that work
// along a plane row (the column-phase split and merge, masked loads and
// stores) stay eight lanes wide, as do a last tile row without a partner.
//
// Only EVEX-encodable instructions touch registers that may live in the
// upper sixteen (the allocator hands them out once the lower ones are
// taken); VEX-only ones (VMASKMOVPS) appear only in the parts with few live
// registers, which the allocator keeps in the lower sixteen, and the
// masked accesses of the zmm parts use opmask registers instead.

import (
	"fmt"
	"math"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

var cz consts4

func init() {
	sets["z"] = func() {
		build.ConstraintExpr("amd64,!noasm")
		globals4()
		globalsZ()
		in4z()
		out4z()
		outT4z()
		inT4z()
	}
	for _, k := range []string{"in4", "out4", "outT4", "inT4"} {
		sharedTwins[k+"z"] = k
	}
}

// globalsZ defines the 64-byte constants of the zmm code; an eight-lane
// instruction reads the first half of the same symbol.
func globalsZ() {
	f := func(name string, vals [16]uint32) operand.Mem {
		m := build.GLOBL(name, attr.RODATA|attr.NOPTR)
		for i, v := range vals {
			build.DATA(4*i, operand.U32(v))
		}
		return m
	}
	bc := func(name string, x float32) operand.Mem {
		var v [16]uint32
		for i := range v {
			v[i] = math.Float32bits(x)
		}
		return f(name, v)
	}
	cz.two = bc("ztwo", 2)
	cz.four = bc("zfour", 4)
	cz.eight = bc("zeight", 8)
	cz.mfour = bc("zmfour", -4)
	// perm4 and unperm4 of f43.go within each half.
	cz.perm = f("zperm4", [16]uint32{0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15})
	cz.unperm = f("zunperm4", [16]uint32{0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15})
	kc = &cz
}

func zload(m operand.Mem) reg.VecVirtual {
	z := build.ZMM()
	build.VMOVUPS(m, z)
	return z
}

// pairLoad loads the eight floats at lo into the low half and those at hi
// into the high half of a zmm.
func pairLoad(lo, hi operand.Mem) reg.VecVirtual {
	y, z := build.YMM(), build.ZMM()
	build.VMOVUPS(lo, y)
	build.VINSERTF32X8(operand.U8(1), hi, y.AsZ(), z)
	return z
}

// pairStore stores the halves of z at lo and hi, in that order: a tile
// row's last block spills into the next row's first, which must win.
func pairStore(z reg.VecVirtual, lo, hi operand.Mem) {
	build.VMOVUPS(z.AsY(), lo)
	build.VEXTRACTF32X8(operand.U8(1), z, hi)
}

// at4kz is at4k of f43.go: output a of Aᵀ m.
func at4kz(a int, m func(i int) reg.VecVirtual) reg.VecVirtual {
	switch a {
	case 0:
		s1 := vadd(m(1), m(2))
		s2 := vadd(m(3), m(4))
		return vadd(vadd(m(0), s1), s2)
	case 1:
		d1 := vsub(m(1), m(2))
		d2 := vsub(m(3), m(4))
		return vadd(d1, vmul(d2, cz.two))
	case 2:
		s1 := vadd(m(1), m(2))
		s2 := vadd(m(3), m(4))
		return vadd(s1, vmul(s2, cz.four))
	}
	d1 := vsub(m(1), m(2))
	d2 := vsub(m(3), m(4))
	return vadd(vadd(d1, vmul(d2, cz.eight)), m(5))
}

// transpose4z is transpose4 of f43.go for either width: the unpacks work
// within each 128-bit lane.
func transpose4z(r [4]reg.VecVirtual) [4]reg.VecVirtual {
	t := [4]reg.VecVirtual{like(r[0]), like(r[0]), like(r[0]), like(r[0])}
	build.VUNPCKLPS(r[1], r[0], t[0])
	build.VUNPCKHPS(r[1], r[0], t[1])
	build.VUNPCKLPS(r[3], r[2], t[2])
	build.VUNPCKHPS(r[3], r[2], t[3])
	o := [4]reg.VecVirtual{like(r[0]), like(r[0]), like(r[0]), like(r[0])}
	build.VUNPCKLPD(t[2], t[0], o[0])
	build.VUNPCKHPD(t[2], t[0], o[1])
	build.VUNPCKLPD(t[3], t[1], o[2])
	build.VUNPCKHPD(t[3], t[1], o[3])
	return o
}

// split4z is split4 of f43.go on zmm: each half is split on its own.
func split4z(q [4]reg.VecVirtual, perm reg.VecVirtual) [4]reg.VecVirtual {
	o := transpose4z(q)
	for k := range o {
		y := like(o[k])
		build.VPERMPS(o[k], perm, y)
		o[k] = y
	}
	return o
}

// merge4z is split4z's inverse.
func merge4z(x [4]reg.VecVirtual, unperm reg.VecVirtual) [4]reg.VecVirtual {
	var t [4]reg.VecVirtual
	for k := range x {
		t[k] = like(x[k])
		build.VPERMPS(x[k], unperm, t[k])
	}
	return transpose4z(t)
}

// colKeys loads the four column masks of a 32-column block at mp into
// opmask registers.
func colKeys(mp reg.GPVirtual, disp int) [4]reg.OpmaskVirtual {
	var k [4]reg.OpmaskVirtual
	for q := range k {
		k[q] = build.K()
		y := build.YMM()
		build.VMOVUPS(mem(mp, disp+32*q), y)
		build.VPMOVD2M(y, k[q])
	}
	return k
}

// quartersK is quarters of f43.go with opmask registers: the 32 floats at
// p into four ymm, zero outside the plane, skipping the quarters past w.
func quartersK(p, col reg.GPVirtual, k [4]reg.OpmaskVirtual, l string) [4]reg.VecVirtual {
	q := [4]reg.VecVirtual{build.YMM(), zero(), zero(), zero()}
	build.VMOVUPS_Z(mem(p, 0), k[0], q[0])
	for i := 1; i < 4; i++ {
		t := build.GP64()
		build.LEAQ(operand.Mem{Base: col, Disp: 8 * i}, t)
		build.CMPQ(t, addr("w"))
		build.JGE(operand.LabelRef(l))
		build.VMOVUPS_Z(mem(p, 32*i), k[i], q[i])
	}
	build.Label(l)
	return q
}

// storeQuartersK is quartersK's counterpart for stores, of ymm views.
func storeQuartersK(q [4]reg.Register, p, col reg.GPVirtual, k [4]reg.OpmaskVirtual, l string) {
	build.VMOVUPS(q[0], k[0], mem(p, 0))
	for i := 1; i < 4; i++ {
		t := build.GP64()
		build.LEAQ(operand.Mem{Base: col, Disp: 8 * i}, t)
		build.CMPQ(t, addr("w"))
		build.JGE(operand.LabelRef(l))
		build.VMOVUPS(q[i], k[i], mem(p, 32*i))
	}
	build.Label(l)
}

// highHalves extracts the high halves of x into ymm registers.
func highHalves(x [4]reg.VecVirtual) [4]reg.Register {
	var o [4]reg.Register
	for i := range x {
		y := build.YMM()
		build.VEXTRACTF32X8(operand.U8(1), x[i], y)
		o[i] = y
	}
	return o
}

func lowHalves(x [4]reg.VecVirtual) [4]reg.Register {
	var o [4]reg.Register
	for i := range x {
		o[i] = x[i].AsY()
	}
	return o
}

// pairRows emits the loop over tile row pairs (ty, ty+1), ty = 0, 2, …
// while ty+1 < lim (lim = th, or th+1 with withLast), blocks b from the
// last to the first (so that a tile row's spill into the next row's first
// block is overwritten by that block), calling pair; then, if a tile row
// is left (ty = lim−1), the blocks of it with single.
func pairRows(lbl func(string) string, tyM, limM, nbM, bM operand.Mem, pair, single func()) {
	build.MOVQ(operand.U32(0), tyM)
	build.Label(lbl("ty2"))
	t := build.GP64()
	build.MOVQ(tyM, t)
	build.INCQ(t)
	build.CMPQ(t, limM)
	build.JGE(operand.LabelRef(lbl("tail")))
	t = build.GP64()
	build.MOVQ(nbM, t)
	build.DECQ(t)
	build.MOVQ(t, bM)
	build.Label(lbl("b2"))
	pair()
	build.DECQ(bM)
	build.JGE(operand.LabelRef(lbl("b2")))
	build.ADDQ(operand.U8(2), tyM)
	build.JMP(operand.LabelRef(lbl("ty2")))
	build.Label(lbl("tail"))
	if single == nil {
		return
	}
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.CMPQ(t, limM)
	build.JGE(operand.LabelRef(lbl("done")))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("b1"))
	single()
	loopEnd(bM, nbM, lbl("b1"), false)
	build.Label(lbl("done"))
}

// in4z is in4 with the transform of two tile rows per zmm.
func in4z() {
	name := "in4z"
	header(name, "v []float32, ldv int, x []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" is in4 on AVX-512, two tile rows per zmm; its Q takes 36 zmm (see in4Go).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM, rowBM, lbM, rM := local(), local(), local(), local(), local(), local(), local()

	t := th4(thM, nbM)
	build.INCQ(t)
	build.SHLQ(operand.U8(5), t)
	build.MOVQ(t, lbM)
	build.SHLQ(operand.U8(2), t)
	build.MOVQ(t, rowBM)
	z := zero()
	perm := load(c4.perm)
	zeroPadRows(lbl, z, rowBM, thM, rM, 2)
	splitRows4(lbl, z, perm, rowBM, lbM, nbM, rM)

	body := func(pair bool) {
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
		if !pair {
			var cp [4]reg.GPVirtual
			cp[0] = bp
			for k := 1; k < 4; k++ {
				cp[k] = build.GP64()
				build.MOVQ(cp[k-1], cp[k])
				build.ADDQ(lbM, cp[k])
			}
			cols := [6]struct {
				p    reg.GPVirtual
				disp int
			}{{cp[0], 0}, {cp[1], 0}, {cp[2], 0}, {cp[3], 0}, {cp[0], 4}, {cp[1], 4}}
			inPasses(func(c, i int) operand.Mem { return rowAt(cols[c].p, i, cols[c].disp) }, qb, p, ld)
			return
		}
		for c := 0; c < 6; c++ {
			// Phase c mod 4, one tile on for c ≥ 4; tile row ty+1 four
			// tmp rows further.
			pc := build.GP64()
			build.MOVQ(bp, pc)
			for k := 0; k < c%4; k++ {
				build.ADDQ(lbM, pc)
			}
			pc4 := build.GP64()
			build.LEAQ(memi(pc, rowB, 4, 0), pc4)
			disp := 4 * (c / 4)
			var d [6]reg.VecVirtual
			for i := range d {
				d[i] = pairLoad(rowAt(pc, i, disp), rowAt(pc4, i, disp))
			}
			bt6all(d, func(k int, v reg.VecVirtual) { build.VMOVUPS(v, mem(qb, 64*(6*k+c))) })
		}
		tw4 := param("tw")
		build.SHLQ(operand.U8(2), tw4)
		rows := func(whole bool) {
			for k := 0; k < 6; k++ {
				var s [6]reg.VecVirtual
				for c := range s {
					s[c] = zload(mem(qb, 64*(6*k+c)))
				}
				bt6all(s, func(j int, v reg.VecVirtual) {
					if whole {
						build.VMOVUPS(v, mem(p, 0))
					} else {
						pairStore(v, mem(p, 0), memi(p, tw4, 1, 0))
					}
					if k < 5 || j < 5 {
						build.ADDQ(ld, p)
					}
				})
			}
		}
		// With eight tiles per row the sixteen are consecutive.
		build.CMPQ(tw4, operand.U8(32))
		build.JNE(operand.LabelRef(lbl("halves")))
		rows(true)
		build.JMP(operand.LabelRef(lbl("rowsdone")))
		build.Label(lbl("halves"))
		rows(false)
		build.Label(lbl("rowsdone"))
	}
	pairRows(lbl, tyM, thM, nbM, bM, func() { body(true) }, func() { body(false) })
	build.VZEROUPPER()
	build.RET()
}

// inT4z is inT4 with pass 1 on two tile rows per zmm: the tile rows
// (ty, ty+1), ty = 0, 2, … up to th (th + 1 tile rows, the last reading
// dV = 0, and a row th+1 past it when th is even, which reads zeros too and
// whose outputs lie past the plane). S holds both rows of a pair: row
// (i, j) of tile row ty at (6i+j)·2sl, of ty+1 at (6i+j)·2sl + sl; then C
// (12 rows of sl) and Q (36 zmm). C carries the last two patch rows from
// tile row ty into ty+1 within the zmm (the high half of the carry is the
// low half of the pair's own rows 4, 5) and from ty+1 into the next pair
// through memory.
func inT4z() {
	name := "inT4z"
	header(name, "dx, dv []float32, ldv, h, w, tw int, mask []int32, tmp []float32",
		name+" is inT4 on AVX-512, two tile rows per zmm in its first pass; its tmp holds 48 rows S, 12 rows C and 36 zmm (see inT4Go).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM, slM := local(), local(), local(), local(), local()

	t := th4(thM, nbM)
	build.INCQ(t)
	build.SHLQ(operand.U8(5), t)
	build.MOVQ(t, slM)
	// Clear S and C: 60·sl bytes, a multiple of 64.
	tp := base("tmp")
	n := build.GP64()
	build.IMUL3Q(operand.U8(60), t, n)
	z := zero()
	build.Label(lbl("clear"))
	build.SUBQ(operand.U8(64), n)
	build.VMOVUPS(z.AsZ(), memi(tp, n, 1, 0))
	build.JNZ(operand.LabelRef(lbl("clear")))
	build.MOVQ(operand.U32(0), tyM)

	build.Label(lbl("ty"))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("p1"))
	{
		// Tile rows ty and ty+1: dV at their first tile where they exist,
		// else at tile 0 under an all-zero mask.
		var off [2]reg.GPVirtual
		var rowK [2]reg.OpmaskVirtual
		mp := base("mask")
		b := build.GP64()
		build.MOVQ(bM, b)
		build.IMUL3Q(operand.U32(160), b, b)
		tiles := load(memi(mp, b, 1, 0))
		for h := 0; h < 2; h++ {
			r := build.GP64()
			build.MOVQ(tyM, r)
			addConst(r, h)
			off[h] = build.GP64()
			build.MOVQ(r, off[h])
			build.IMULQ(addr("tw"), off[h])
			build.SHLQ(operand.U8(2), off[h])
			rowK[h] = build.K()
			build.VPMOVD2M(tiles, rowK[h])
			ok := fmt.Sprintf("%s_rowok%d", name, h)
			build.CMPQ(r, thM)
			build.JL(operand.LabelRef(ok))
			build.XORQ(off[h], off[h])
			build.KXORW(rowK[h], rowK[h], rowK[h])
			build.Label(ok)
		}
		ld := param("ldv")
		build.SHLQ(operand.U8(2), ld)
		ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
		build.IMUL3Q(operand.U8(6), ld, ld6)
		build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
		build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
		p := base("dv")
		bo := build.GP64()
		build.MOVQ(bM, bo)
		build.SHLQ(operand.U8(5), bo)
		build.ADDQ(bo, p)
		// The second row's pointer relative to the first.
		dp := build.GP64()
		build.MOVQ(off[1], dp)
		build.SUBQ(off[0], dp)
		build.ADDQ(off[0], p)
		tp := base("tmp")
		qb := build.GP64()
		build.IMUL3Q(operand.U8(60), slM, qb)
		build.ADDQ(tp, qb) // Q after S and C
		elem := func(q reg.GPVirtual, i int) operand.Mem {
			switch i {
			case 0:
				return mem(q, 0)
			case 3:
				return memi(q, ld18, 1, 0)
			case 5:
				return memi(q, ld30, 1, 0)
			}
			return memi(q, ld6, uint8(i), 0)
		}
		for s := 0; s < 6; s++ {
			p2 := build.GP64()
			build.LEAQ(memi(p, dp, 1, 0), p2)
			var d [6]reg.VecVirtual
			for i := range d {
				// Masked-off lanes read +0, as VANDPS gives in inT4.
				d[i] = build.ZMM()
				lo := build.YMM()
				build.VMOVUPS_Z(elem(p, i), rowK[0], lo)
				hi := build.YMM()
				build.VMOVUPS_Z(elem(p2, i), rowK[1], hi)
				build.VINSERTF32X8(operand.U8(1), hi, lo.AsZ(), d[i])
			}
			b6all(d, func(i int, v reg.VecVirtual) {
				build.VMOVUPS(v, mem(qb, 64*(6*i+s)))
			})
			if s < 5 {
				build.ADDQ(ld, p)
			}
		}
		// Column 0 of the tiles past the last is +0 (see inT4Go).
		tilesZ := build.ZMM()
		build.VINSERTF32X8(operand.U8(1), tiles, tiles.AsZ(), tilesZ)
		keep := func(j int, v reg.VecVirtual) reg.VecVirtual {
			if j > 0 {
				return v
			}
			y := build.ZMM()
			build.VANDPS(tilesZ, v, y)
			return y
		}
		sl := build.GP64()
		build.MOVQ(slM, sl)
		build.ADDQ(bo, tp)
		// S row (i, j) of the pair's first tile row at tp + (6i+j)·2sl + 4 +
		// 32b, of the second sl further; C row at tp + (48+6i+j)·sl + 32b.
		rowOff := func(k int) reg.GPVirtual {
			r := build.GP64()
			build.IMUL3Q(operand.U32(uint32(k)), sl, r)
			return r
		}
		sStore := func(i, j int, v reg.VecVirtual) {
			r := rowOff(2 * (6*i + j))
			r1 := rowOff(2*(6*i+j) + 1)
			pairStore(v, memi(tp, r, 1, 4), memi(tp, r1, 1, 4))
		}
		// Rows 4 and 5 first: their low halves complete the carry that
		// the second tile row's rows 0 and 1 add; the carries wait in Q's
		// rows 4 and 5, read by then.
		for _, i := range []int{4, 5, 0, 1, 2, 3} {
			var q [6]reg.VecVirtual
			for s := range q {
				q[s] = zload(mem(qb, 64*(6*i+s)))
			}
			b6all(q, func(j int, v reg.VecVirtual) {
				switch {
				case i >= 4:
					c := rowOff(48 + 6*(i-4) + j)
					carry := build.ZMM()
					prev := build.YMM()
					build.VMOVUPS(memi(tp, c, 1, 0), prev)
					build.VINSERTF32X8(operand.U8(1), v.AsY(), prev.AsZ(), carry)
					build.VMOVUPS(carry, mem(qb, 64*(6*i+j)))
					build.VEXTRACTF32X8(operand.U8(1), v, memi(tp, c, 1, 0))
				case i < 2:
					sStore(i, j, keep(j, vadd(v, zload(mem(qb, 64*(6*(i+4)+j))))))
				default:
					sStore(i, j, keep(j, v))
				}
			})
		}
	}
	loopEnd(bM, nbM, lbl("p1"), false)

	// Pass 2 on both tile rows of the pair at once: row 4ty−1+i in the low
	// halves, 4ty+3+i in the high halves.
	for i := 0; i < 4; i++ {
		build.MOVQ(operand.U32(0), bM)
		loop := fmt.Sprintf("%s_p2_%d", name, i)
		build.Label(loop)
		{
			col := build.GP64()
			build.MOVQ(bM, col)
			build.SHLQ(operand.U8(5), col)
			tp := base("tmp")
			b := build.GP64()
			build.MOVQ(bM, b)
			build.SHLQ(operand.U8(5), b)
			build.ADDQ(b, tp)
			sl := build.GP64()
			build.MOVQ(slM, sl)
			pl := func(k, disp int) reg.VecVirtual {
				var m [2]operand.Mem
				for h := range m {
					if k == 0 && h == 0 {
						m[h] = mem(tp, disp)
						continue
					}
					o := build.GP64()
					build.IMUL3Q(operand.U32(uint32(2*k+h)), sl, o)
					m[h] = memi(tp, o, 1, disp)
				}
				return pairLoad(m[0], m[1])
			}
			// Column 4t: tile t's j=1 + tile t−1's j=5; 4t+3: tile t's
			// j=4 + tile t+1's j=0.
			y := [4]reg.VecVirtual{
				vadd(pl(6*i+1, 4), pl(6*i+5, 0)),
				pl(6*i+2, 4),
				pl(6*i+3, 4),
				vadd(pl(6*i+4, 4), pl(6*i, 8)),
			}
			m := merge4z(y, zload(cz.unperm))
			mp := base("mask")
			mo := build.GP64()
			build.MOVQ(bM, mo)
			build.IMUL3Q(operand.U32(160), mo, mo)
			build.ADDQ(mo, mp)
			keys := colKeys(mp, 32)
			for h := 0; h < 2; h++ {
				skip := fmt.Sprintf("%s_skip%d_%d", name, h, i)
				r := build.GP64()
				build.MOVQ(tyM, r)
				build.SHLQ(operand.U8(2), r)
				addConst(r, 4*h+i-1)
				build.CMPQ(r, operand.U8(0))
				build.JL(operand.LabelRef(skip))
				build.CMPQ(r, addr("h"))
				build.JGE(operand.LabelRef(skip))
				// Row r at dx + 4·(r·w + 32b).
				dp := base("dx")
				build.IMULQ(addr("w"), r)
				build.ADDQ(col, r)
				build.LEAQ(memi(dp, r, 4, 0), dp)
				halves := lowHalves(m)
				if h == 1 {
					halves = highHalves(m)
				}
				storeQuartersK(halves, dp, col, keys, fmt.Sprintf("%s_q%d_%d", name, h, i))
				build.Label(skip)
			}
		}
		loopEnd(bM, nbM, loop, false)
	}
	build.ADDQ(operand.U8(2), tyM)
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.CMPQ(t, thM)
	build.JLE(operand.LabelRef(lbl("ty")))
	build.VZEROUPPER()
	build.RET()
}

// out4z is out4 on two tile rows per zmm: output row a of tile row ty in
// the low half, of ty+1 in the high half.
func out4z() {
	name := "out4z"
	header(name, "y, m []float32, ldm, h, w, tw int, bias float32, mask []int32",
		name+" is out4 on AVX-512, two tile rows per zmm.")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM := local(), local(), local(), local()
	th4(thM, nbM)
	biasZ := build.ZMM()
	build.VBROADCASTSS(addr("bias"), biasZ)
	unpermZ := zload(cz.unperm)

	// whole: the pair's sixteen tiles are consecutive (tw = 8).
	body := func(pair, whole bool) {
		sfx := fmt.Sprintf("_%v_%v", pair, whole)
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
		keys := colKeys(mp, 0)
		col := build.GP64()
		build.MOVQ(bM, col)
		build.SHLQ(operand.U8(5), col)
		// Row 4ty at y + 4·(4ty·w + 32b); 4ty+4 at 16w bytes further.
		yp := base("y")
		t = build.GP64()
		build.MOVQ(tyM, t)
		build.SHLQ(operand.U8(2), t)
		build.IMULQ(addr("w"), t)
		build.ADDQ(col, t)
		build.LEAQ(memi(yp, t, 4, 0), yp)
		for a := 0; a < 4; a++ {
			if a > 0 {
				if !pair {
					t := build.GP64()
					build.MOVQ(tyM, t)
					build.SHLQ(operand.U8(2), t)
					build.ADDQ(operand.U8(uint8(a)), t)
					build.CMPQ(t, addr("h"))
					build.JGE(operand.LabelRef(lbl("next" + sfx)))
				}
				w := param("w")
				build.LEAQ(memi(yp, w, 4, 0), yp)
			}
			pp := build.GP64()
			build.MOVQ(q, pp)
			var pp2 reg.GPVirtual
			if pair && !whole {
				pp2 = param("tw")
				build.LEAQ(memi(q, pp2, 4, 0), pp2)
			}
			at := func(p reg.GPVirtual, i int) operand.Mem {
				switch i {
				case 0:
					return mem(p, 0)
				case 3:
					return memi(p, ld18, 1, 0)
				case 5:
					return memi(p, ld30, 1, 0)
				}
				return memi(p, ld6, uint8(i), 0)
			}
			elem := func(i int) reg.VecVirtual {
				switch {
				case !pair:
					return load(at(pp, i))
				case whole:
					return zload(at(pp, i))
				}
				return pairLoad(at(pp, i), at(pp2, i))
			}
			var s [6]reg.VecVirtual
			for j := 0; j < 6; j++ {
				s[j] = at4kz(a, elem)
				if j < 5 {
					build.ADDQ(ld, pp)
					if pp2 != nil {
						build.ADDQ(ld, pp2)
					}
				}
			}
			y := at4all(s)
			bias, unperm := biasZ, unpermZ
			if !pair {
				bias, unperm = biasZ.AsY().(reg.VecVirtual), unpermZ.AsY().(reg.VecVirtual)
			}
			for c := range y {
				y[c] = vadd(y[c], bias)
			}
			m := merge4z(y, unperm)
			storeQuartersK(lowHalves(m), yp, col, keys, fmt.Sprintf("%s_q%d%s", name, a, sfx))
			if !pair {
				continue
			}
			skip := fmt.Sprintf("%s_hi%d%s", name, a, sfx)
			t := build.GP64()
			build.MOVQ(tyM, t)
			build.SHLQ(operand.U8(2), t)
			build.ADDQ(operand.U8(uint8(4+a)), t)
			build.CMPQ(t, addr("h"))
			build.JGE(operand.LabelRef(skip))
			yp4 := param("w")
			build.SHLQ(operand.U8(4), yp4)
			build.ADDQ(yp, yp4)
			storeQuartersK(highHalves(m), yp4, col, keys, fmt.Sprintf("%s_qh%d%s", name, a, sfx))
			build.Label(skip)
		}
		build.Label(lbl("next" + sfx))
	}
	pairRows(lbl, tyM, thM, nbM, bM, func() {
		t := param("tw")
		build.CMPQ(t, operand.U8(8))
		build.JNE(operand.LabelRef(lbl("halves")))
		body(true, true)
		build.JMP(operand.LabelRef(lbl("pdone")))
		build.Label(lbl("halves"))
		body(true, false)
		build.Label(lbl("pdone"))
	}, func() { body(false, false) })
	build.VZEROUPPER()
	build.RET()
}

// outT4z is outT4 on two tile rows per zmm: image rows 4ty+a and 4ty+4+a
// split and transformed together, tmp holding 24 zmm.
func outT4z() {
	name := "outT4z"
	header(name, "dm []float32, ldm int, dy []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" is outT4 on AVX-512, two tile rows per zmm; its tmp holds 24 zmm (see outT4Go).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM := local(), local(), local(), local()
	th4(thM, nbM)
	permZ := zload(cz.perm)

	body := func(pair, whole bool) {
		sfx := fmt.Sprintf("_%v_%v", pair, whole)
		vs := 32 // bytes per vector in tmp
		if pair {
			vs = 64
		}
		{
			mp := base("mask")
			t := build.GP64()
			build.MOVQ(bM, t)
			build.SHLQ(operand.U8(7), t)
			build.ADDQ(t, mp)
			keys := colKeys(mp, 0)
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
				// Row 4ty+a: in the plane for a = 0, and for every a of a
				// pair's first tile row.
				var lo [4]reg.VecVirtual
				if a == 0 || pair {
					if a > 0 {
						w := param("w")
						build.LEAQ(memi(yp, w, 4, 0), yp)
					}
					lo = quartersK(yp, col, keys, fmt.Sprintf("%s_q%d%s", name, a, sfx))
				} else {
					lo = [4]reg.VecVirtual{zero(), zero(), zero(), zero()}
					t := build.GP64()
					build.MOVQ(tyM, t)
					build.SHLQ(operand.U8(2), t)
					build.ADDQ(operand.U8(uint8(a)), t)
					build.CMPQ(t, addr("h"))
					skip := fmt.Sprintf("%s_row%d%s", name, a, sfx)
					build.JGE(operand.LabelRef(skip))
					w := param("w")
					build.LEAQ(memi(yp, w, 4, 0), yp)
					l := quartersK(yp, col, keys, fmt.Sprintf("%s_q%d%s", name, a, sfx))
					for k := range lo {
						build.VMOVAPS(l[k], lo[k])
					}
					build.Label(skip)
				}
				x := lo
				perm := permZ.AsY().(reg.VecVirtual)
				if pair {
					// Row 4ty+4+a, zero past the plane.
					hi := [4]reg.VecVirtual{zero(), zero(), zero(), zero()}
					t := build.GP64()
					build.MOVQ(tyM, t)
					build.SHLQ(operand.U8(2), t)
					build.ADDQ(operand.U8(uint8(4+a)), t)
					build.CMPQ(t, addr("h"))
					skip := fmt.Sprintf("%s_hrow%d%s", name, a, sfx)
					build.JGE(operand.LabelRef(skip))
					yp4 := param("w")
					build.SHLQ(operand.U8(4), yp4)
					build.ADDQ(yp, yp4)
					l := quartersK(yp4, col, keys, fmt.Sprintf("%s_qh%d%s", name, a, sfx))
					for k := range hi {
						build.VMOVAPS(l[k], hi[k])
					}
					build.Label(skip)
					for k := range x {
						x[k] = build.ZMM()
						build.VINSERTF32X8(operand.U8(1), hi[k], lo[k].AsZ(), x[k])
					}
					perm = permZ
				}
				a6all(split4z(x, perm), func(j int, v reg.VecVirtual) {
					build.VMOVUPS(v, mem(tq, vs*(6*a+j)))
				})
			}
		}
		dp := base("dm")
		tileOff(dp, tyM, bM)
		var dp2 reg.GPVirtual
		if pair && !whole {
			dp2 = param("tw")
			build.LEAQ(memi(dp, dp2, 4, 0), dp2)
		}
		ld := param("ldm")
		build.SHLQ(operand.U8(2), ld)
		ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
		build.IMUL3Q(operand.U8(6), ld, ld6)
		build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
		build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
		tq := base("tmp")
		at := func(p reg.GPVirtual, i int) operand.Mem {
			switch i {
			case 0:
				return mem(p, 0)
			case 3:
				return memi(p, ld18, 1, 0)
			case 5:
				return memi(p, ld30, 1, 0)
			}
			return memi(p, ld6, uint8(i), 0)
		}
		for j := 0; j < 6; j++ {
			var y [4]reg.VecVirtual
			for a := range y {
				if pair {
					y[a] = zload(mem(tq, vs*(6*a+j)))
				} else {
					y[a] = load(mem(tq, vs*(6*a+j)))
				}
			}
			a6all(y, func(i int, v reg.VecVirtual) {
				switch {
				case !pair || whole:
					build.VMOVUPS(v, at(dp, i))
				default:
					pairStore(v, at(dp, i), at(dp2, i))
				}
			})
			if j < 5 {
				build.ADDQ(ld, dp)
				if dp2 != nil {
					build.ADDQ(ld, dp2)
				}
			}
		}
	}
	pairRows(lbl, tyM, thM, nbM, bM, func() {
		t := param("tw")
		build.CMPQ(t, operand.U8(8))
		build.JNE(operand.LabelRef(lbl("halves")))
		body(true, true)
		build.JMP(operand.LabelRef(lbl("pdone")))
		build.Label(lbl("halves"))
		body(true, false)
		build.Label(lbl("pdone"))
	}, func() { body(false, false) })
	build.VZEROUPPER()
	build.RET()
}
