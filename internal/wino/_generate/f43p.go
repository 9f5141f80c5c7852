package main

// The packed F(4×4, 3×3) kernels, for planes whose tile rows hold four
// tiles (13 to 16 pixels wide): lanes 0–3 of each vector are tile row 2u
// and lanes 4–7 tile row 2u+1, so that the eight tiles of a vector are
// consecutive in the transformed rows and no lane idles. The arithmetic of
// each tile is the unpacked kernels', so the same twins stand for both.

import (
	"fmt"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// sharedTwins names the kernels whose twin is another kernel's.
var sharedTwins = map[string]string{"in4p": "in4", "out4p": "out4", "outT4p": "outT4", "inT4p": "inT4"}

// pairs stores ⌈th/2⌉ (+1 with extra) at npM.
func pairs(npM operand.Mem, extra bool) {
	t := param("h")
	build.ADDQ(operand.U8(3), t)
	build.SHRQ(operand.U8(2), t) // th
	if extra {
		build.ADDQ(operand.U8(2), t)
	} else {
		build.INCQ(t)
	}
	build.SHRQ(operand.U8(1), t)
	build.MOVQ(t, npM)
}

// rowPtr returns base + 4·(row·w), row = 8u + k.
func rowPtr(name string, uM operand.Mem, k int) (reg.GPVirtual, reg.GPVirtual) {
	p := base(name)
	r := build.GP64()
	build.MOVQ(uM, r)
	build.SHLQ(operand.U8(3), r)
	addConst(r, k)
	t := build.GP64()
	build.MOVQ(r, t)
	build.IMULQ(addr("w"), t)
	build.LEAQ(memi(p, t, 4, 0), p)
	return p, r
}

// halfRow loads columns 0…15 of the row at p under the masks at mp (the
// second half only where w > 8) into lo and hi.
func halfRow(p, mp reg.GPVirtual, lo, hi reg.VecVirtual, l string) {
	build.VMASKMOVPS(mem(p, 0), load(mem(mp, 0)), lo)
	build.CMPQ(addr("w"), operand.U8(8))
	build.JLE(operand.LabelRef(l))
	build.VMASKMOVPS(mem(p, 32), load(mem(mp, 32)), hi)
	build.Label(l)
}

func storeHalfRow(lo, hi reg.VecVirtual, p, mp reg.GPVirtual, l string) {
	build.VMASKMOVPS(lo, load(mem(mp, 0)), mem(p, 0))
	build.CMPQ(addr("w"), operand.U8(8))
	build.JLE(operand.LabelRef(l))
	build.VMASKMOVPS(hi, load(mem(mp, 32)), mem(p, 32))
	build.Label(l)
}

// in4p: the plane's rows are split into six column phases of four tiles
// (P_p[t] = x[4t+p−1]) in tmp, tmp row R (48 floats, phase p at 8p) holding
// image row R−1 in lanes 0–3 and image row R+3 in lanes 4–7: one split of
// the two rows' 32 pixels, with the outer phases made by lane shifts within
// each half. Tile row pair u then reads tmp rows 8u … 8u+5.
func in4p() {
	name := "in4p"
	header(name, "v []float32, ldv int, x []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" is in4 for planes with four tiles per tile row, two tile rows per vector (see in4Go).")
	lbl := func(s string) string { return name + "_" + s }
	npM, uM, rM, endM := local(), local(), local(), local()
	pairs(npM, false)
	t := build.GP64()
	build.MOVQ(npM, t)
	build.SHLQ(operand.U8(3), t)
	build.SUBQ(operand.U8(2), t)
	build.MOVQ(t, endM) // tmp rows 0 … 8·np−3
	perm := load(c4.perm)

	build.MOVQ(operand.U32(0), rM)
	build.Label(lbl("srow"))
	{
		// Rows 8u+6 and 8u+7 are read by no tile row pair.
		t := build.GP64()
		build.MOVQ(rM, t)
		build.ANDQ(operand.U8(7), t)
		build.CMPQ(t, operand.U8(6))
		build.JGE(operand.LabelRef(lbl("snext")))
		q := [4]reg.VecVirtual{zero(), zero(), zero(), zero()}
		for half, k := range []int{-1, 3} {
			skip := fmt.Sprintf("%s_skip%d", name, half)
			r := build.GP64()
			build.MOVQ(rM, r)
			addConst(r, k)
			if k < 0 {
				build.CMPQ(r, operand.U8(0))
				build.JL(operand.LabelRef(skip))
			}
			build.CMPQ(r, addr("h"))
			build.JGE(operand.LabelRef(skip))
			src := base("x")
			build.IMULQ(addr("w"), r)
			build.LEAQ(memi(src, r, 4, 0), src)
			l := [2]reg.VecVirtual{ymm(), zero()}
			halfRow(src, base("mask"), l[0], l[1], fmt.Sprintf("%s_h%d", name, half))
			build.VMOVAPS(l[0], q[2*half])
			build.VMOVAPS(l[1], q[2*half+1])
			build.Label(skip)
		}
		x := split4(q, perm)
		ph := [6]reg.VecVirtual{ymm(), x[0], x[1], x[2], x[3], ymm()}
		build.VPSLLDQ(operand.U8(4), x[3], ph[0])
		build.VPSRLDQ(operand.U8(4), x[0], ph[5])
		dst := base("tmp")
		t = build.GP64()
		build.MOVQ(rM, t)
		build.IMUL3Q(operand.U32(192), t, t)
		build.ADDQ(t, dst)
		for k, y := range ph {
			build.VMOVUPS(y, mem(dst, 32*k))
		}
	}
	build.Label(lbl("snext"))
	loopEnd(rM, endM, lbl("srow"), true)

	build.MOVQ(operand.U32(0), uM)
	build.Label(lbl("u"))
	{
		bp := base("tmp")
		t := build.GP64()
		build.MOVQ(uM, t)
		build.IMUL3Q(operand.U32(8*192), t, t)
		build.ADDQ(t, bp)
		ld := param("ldv")
		build.SHLQ(operand.U8(2), ld)
		p := base("v")
		t = build.GP64()
		build.MOVQ(uM, t)
		build.SHLQ(operand.U8(5), t)
		build.ADDQ(t, p)
		// Q after the split rows: tmp + (8·np−2)·192.
		qb := base("tmp")
		t = build.GP64()
		build.MOVQ(endM, t)
		build.INCQ(t)
		build.IMUL3Q(operand.U32(192), t, t)
		build.ADDQ(t, qb)
		inPasses(func(c, i int) operand.Mem { return mem(bp, 192*i+32*c) }, qb, p, ld)
	}
	loopEnd(uM, npM, lbl("u"), false)
	build.VZEROUPPER()
	build.RET()
}

// out4p: out4 for pairs of tile rows; a merged vector's first 16 pixels
// go to image row 8u+a, the others to image row 8u+4+a.
func out4p() {
	name := "out4p"
	header(name, "y, m []float32, ldm, h, w, tw int, bias float32, mask []int32",
		name+" is out4 for planes with four tiles per tile row, two tile rows per vector.")
	lbl := func(s string) string { return name + "_" + s }
	npM, uM := local(), local()
	pairs(npM, false)
	bias := ymm()
	build.VBROADCASTSS(addr("bias"), bias)
	unperm := load(c4.unperm)
	build.MOVQ(operand.U32(0), uM)
	build.Label(lbl("u"))
	q := base("m")
	t := build.GP64()
	build.MOVQ(uM, t)
	build.SHLQ(operand.U8(5), t)
	build.ADDQ(t, q)
	ld := param("ldm")
	build.SHLQ(operand.U8(2), ld)
	ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
	build.IMUL3Q(operand.U8(6), ld, ld6)
	build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
	build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
	for a := 0; a < 4; a++ {
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
		o := merge4(y, unperm)
		for half := 0; half < 2; half++ {
			skip := fmt.Sprintf("%s_skip%d_%d", name, a, half)
			yp, r := rowPtr("y", uM, 4*half+a)
			build.CMPQ(r, addr("h"))
			build.JGE(operand.LabelRef(skip))
			storeHalfRow(o[2*half], o[2*half+1], yp, base("mask"), fmt.Sprintf("%s_h%d_%d", name, a, half))
			build.Label(skip)
		}
	}
	loopEnd(uM, npM, lbl("u"), false)
	build.VZEROUPPER()
	build.RET()
}

// outT4p: outT4 for pairs of tile rows.
func outT4p() {
	name := "outT4p"
	header(name, "dm []float32, ldm int, dy []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" is outT4 for planes with four tiles per tile row, two tile rows per vector.")
	lbl := func(s string) string { return name + "_" + s }
	npM, uM := local(), local()
	pairs(npM, false)
	perm := load(c4.perm)
	build.MOVQ(operand.U32(0), uM)
	build.Label(lbl("u"))
	tq := base("tmp")
	for a := 0; a < 4; a++ {
		q := [4]reg.VecVirtual{zero(), zero(), zero(), zero()}
		for half := 0; half < 2; half++ {
			skip := fmt.Sprintf("%s_skip%d_%d", name, a, half)
			yp, r := rowPtr("dy", uM, 4*half+a)
			build.CMPQ(r, addr("h"))
			build.JGE(operand.LabelRef(skip))
			halfRow(yp, base("mask"), q[2*half], q[2*half+1], fmt.Sprintf("%s_h%d_%d", name, a, half))
			build.Label(skip)
		}
		a6all(split4(q, perm), func(j int, v reg.VecVirtual) {
			build.VMOVUPS(v, mem(tq, 32*(6*a+j)))
		})
	}
	dp := base("dm")
	t := build.GP64()
	build.MOVQ(uM, t)
	build.SHLQ(operand.U8(5), t)
	build.ADDQ(t, dp)
	ld := param("ldm")
	build.SHLQ(operand.U8(2), ld)
	ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
	build.IMUL3Q(operand.U8(6), ld, ld6)
	build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
	build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
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
	loopEnd(uM, npM, lbl("u"), false)
	build.VZEROUPPER()
	build.RET()
}

// inT4p: inT4 for pairs of tile rows u = 0 … ⌊th/2⌋, tile rows past the
// last masked to zero by the plan's per-pair masks. The carry between the
// two halves of a vector and from the previous pair is a VPERM2F128 of the
// previous and the current patch rows 4 and 5; the neighbours' columns are
// lane shifts within each half, which bring in the +0 of the tiles outside
// the row. tmp holds S (24 vectors), C (12) and Q (36).
func inT4p() {
	name := "inT4p"
	header(name, "dx, dv []float32, ldv, h, w, tw int, mask []int32, tmp []float32",
		name+" is inT4 for planes with four tiles per tile row, two tile rows per vector.")
	lbl := func(s string) string { return name + "_" + s }
	npM, uM := local(), local()
	pairs(npM, true)
	const sOff, cOff, qOff = 0, 24 * 32, 36 * 32
	tp := base("tmp")
	z := zero()
	for k := 0; k < 12; k++ {
		build.VMOVUPS(z, mem(tp, cOff+32*k))
	}
	build.MOVQ(operand.U32(0), uM)
	build.Label(lbl("u"))
	{
		mp := base("mask")
		t := build.GP64()
		build.MOVQ(uM, t)
		build.SHLQ(operand.U8(5), t)
		tm := load(memi(mp, t, 1, 64))
		// Pairs past the tiles read tile row 0's memory, masked off.
		p := base("dv")
		th := param("h")
		build.ADDQ(operand.U8(3), th)
		build.SHRQ(operand.U8(2), th)
		u2 := build.GP64()
		build.MOVQ(uM, u2)
		build.SHLQ(operand.U8(1), u2)
		build.CMPQ(u2, th)
		build.JGE(operand.LabelRef(lbl("row0")))
		build.ADDQ(t, p)
		build.Label(lbl("row0"))
		ld := param("ldv")
		build.SHLQ(operand.U8(2), ld)
		ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
		build.IMUL3Q(operand.U8(6), ld, ld6)
		build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
		build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
		tp := base("tmp")
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
				build.VMOVUPS(v, mem(tp, qOff+32*(6*i+s)))
			})
			if s < 5 {
				build.ADDQ(ld, p)
			}
		}
		rowT := func(i int) [6]reg.VecVirtual {
			var q [6]reg.VecVirtual
			for s := range q {
				q[s] = load(mem(tp, qOff+32*(6*i+s)))
			}
			return q
		}
		// Rows 4 and 5 first: the carry K = (previous C's high lanes,
		// this C's low lanes) waits in S rows 0 and 1, the new C goes to C.
		for i := 4; i < 6; i++ {
			b6all(rowT(i), func(j int, v reg.VecVirtual) {
				c := mem(tp, cOff+32*(6*(i-4)+j))
				k := ymm()
				build.VPERM2F128(operand.U8(0x21), v, load(c), k)
				build.VMOVUPS(v, c)
				build.VMOVUPS(k, mem(tp, sOff+32*(6*(i-4)+j)))
			})
		}
		for i := 0; i < 4; i++ {
			b6all(rowT(i), func(j int, v reg.VecVirtual) {
				s := mem(tp, sOff+32*(6*i+j))
				if i < 2 {
					v = add(v, load(s))
				}
				build.VMOVUPS(v, s)
			})
		}
		for i := 0; i < 4; i++ {
			sv := func(j int) reg.VecVirtual { return load(mem(tp, sOff+32*(6*i+j))) }
			sh5, sh0 := ymm(), ymm()
			build.VPSLLDQ(operand.U8(4), sv(5), sh5)
			build.VPSRLDQ(operand.U8(4), sv(0), sh0)
			// Column 4t: tile t's j=1 + tile t−1's j=5; 4t+3: tile t's
			// j=4 + tile t+1's j=0.
			y := [4]reg.VecVirtual{add(sv(1), sh5), sv(2), sv(3), add(sv(4), sh0)}
			o := merge4(y, unpermReg())
			for half := 0; half < 2; half++ {
				skip := fmt.Sprintf("%s_skip%d_%d", name, i, half)
				dp, r := rowPtr("dx", uM, 4*half+i-1)
				build.CMPQ(r, operand.U8(0))
				build.JL(operand.LabelRef(skip))
				build.CMPQ(r, addr("h"))
				build.JGE(operand.LabelRef(skip))
				storeHalfRow(o[2*half], o[2*half+1], dp, base("mask"), fmt.Sprintf("%s_h%d_%d", name, i, half))
				build.Label(skip)
			}
		}
	}
	loopEnd(uM, npM, lbl("u"), false)
	build.VZEROUPPER()
	build.RET()
}
