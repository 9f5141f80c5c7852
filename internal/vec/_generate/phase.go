package main

// The "phase" set: the kernels behind the im2col and col2im of stride-2
// convolutions (vec_phase_amd64.s). Splitting each image row into its even
// and odd columns once turns every strided gather of im2col into a plain
// copy of a phase row, and every strided scatter-add of col2im into a plain
// vector add, followed by one interleave back.

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { sets["phase"] = phaseSet }

// laneMaskTbl holds 8 all-ones lanes then 8 zero lanes: the 8 lanes from
// 8−k are the mask of the first k lanes, for every k in 0..8.
var laneMaskTbl operand.Mem

func phaseSet() {
	build.ConstraintExpr("amd64,!noasm")
	laneMaskTbl = build.GLOBL("lanemask", attr.RODATA|attr.NOPTR)
	for i := 0; i < 16; i++ {
		v := uint32(0)
		if i < 8 {
			v = 0xffffffff
		}
		build.DATA(4*i, operand.U32(v))
	}
	splitPhases()
	mergePhases()
	rowsKernel("copyRows", false)
	rowsKernel("addRows", true)
}

// laneMask returns the mask of the first k lanes, 0 ≤ k ≤ 8. k is clobbered.
func laneMask(k reg.GPVirtual) reg.VecVirtual {
	build.NEGQ(k)
	build.ADDQ(operand.U8(8), k)
	tb := build.GP64()
	build.LEAQ(laneMaskTbl, tb)
	m := build.YMM()
	build.VMOVUPS(operand.Mem{Base: tb, Index: k, Scale: 4}, m)
	return m
}

// pairMasks returns the masks that handle the r < 16 floats left at the end
// of an interleaved row: the first min(r, 8) lanes and the next max(r−8, 0)
// (the two 8-float halves of the interleaved side), and the first ⌈r/2⌉ and
// ⌊r/2⌋ lanes (the even and odd sides).
func pairMasks(w reg.GPVirtual) (m1, m2, me, mo reg.VecVirtual) {
	r := build.GP64()
	build.MOVQ(w, r)
	build.ANDQ(operand.U8(15), r)
	k1, k2, ke, ko := build.GP64(), build.GP64(), build.GP64(), build.GP64()
	build.MOVQ(operand.U32(8), k1)
	build.CMPQ(r, k1)
	build.CMOVQLT(r, k1)
	build.MOVQ(r, k2)
	build.SUBQ(k1, k2)
	build.LEAQ(operand.Mem{Base: r, Disp: 1}, ke)
	build.SHRQ(operand.U8(1), ke)
	build.MOVQ(r, ko)
	build.SHRQ(operand.U8(1), ko)
	return laneMask(k1), laneMask(k2), laneMask(ke), laneMask(ko)
}

// phaseParams loads the byte sizes the two phase kernels share.
func phaseParams() (w, lpB, p0B reg.GPVirtual) {
	w, lpB, p0B = build.GP64(), build.GP64(), build.GP64()
	build.Load(build.Param("w"), w)
	build.Load(build.Param("lp"), lpB)
	build.SHLQ(operand.U8(2), lpB)
	build.Load(build.Param("p0"), p0B)
	build.SHLQ(operand.U8(2), p0B)
	return
}

// splitPhases: VSHUFPS picks the even (or odd) lanes of two 8-float blocks
// a, b as [a0 a2 b0 b2 | a4 a6 b4 b6] per 128-bit half, and VPERMPD puts the
// 64-bit pairs back in order.
func splitPhases() {
	name := "splitPhases"
	header(name, "dst, src []float32, w, rows, lp, p0 int",
		name+" writes, for each of rows rows of w floats of src, a dst row of 2·lp floats:",
		"zeros, except the even columns at [p0, p0+⌈w/2⌉) and the odd ones at [lp+p0, lp+p0+⌊w/2⌋).")
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }
	dp, sp := loadBase("dst"), loadBase("src")
	rows := build.GP64()
	build.Load(build.Param("rows"), rows)
	w, lpB, p0B := phaseParams()
	m1, m2, me, mo := pairMasks(w)
	// The zero fill of a row: 2·lp floats, blocks of 8 then a masked rest.
	zk := build.GP64()
	build.Load(build.Param("lp"), zk)
	build.ANDQ(operand.U8(3), zk)
	build.SHLQ(operand.U8(1), zk)
	zm := laneMask(zk)
	zero := zeroY()

	build.TESTQ(rows, rows)
	build.JZ(lbl("done"))
	build.Label(name + "_row")
	off, n := build.GP64(), build.GP64()
	build.XORQ(off, off)
	build.MOVQ(lpB, n)
	build.SHLQ(operand.U8(1), n) // bytes of the row
	build.Label(name + "_zero")
	build.CMPQ(n, operand.U8(32))
	build.JL(lbl("zrest"))
	build.VMOVUPS(zero, at(dp, off, 0))
	build.ADDQ(operand.U8(32), off)
	build.SUBQ(operand.U8(32), n)
	build.JMP(lbl("zero"))
	// The rest of a row of at least 8 floats is a plain store of its last
	// 8, overlapping the blocks before; only shorter rows take the mask.
	build.Label(name + "_zrest")
	build.TESTQ(n, n)
	build.JZ(lbl("data"))
	build.TESTQ(off, off)
	build.JZ(lbl("zmask"))
	build.VMOVUPS(zero, operand.Mem{Base: dp, Index: lpB, Scale: 2, Disp: -32})
	build.JMP(lbl("data"))
	build.Label(name + "_zmask")
	build.VMASKMOVPS(zero, zm, at(dp, off, 0))

	build.Label(name + "_data")
	e, o, s := build.GP64(), build.GP64(), build.GP64()
	build.LEAQ(at(dp, p0B, 0), e)
	build.LEAQ(at(e, lpB, 0), o)
	build.MOVQ(sp, s)
	build.MOVQ(w, n)
	split := func(a, b reg.VecVirtual) (ev, od reg.VecVirtual) {
		ev, od = build.YMM(), build.YMM()
		build.VSHUFPS(operand.U8(0x88), b, a, ev)
		build.VSHUFPS(operand.U8(0xdd), b, a, od)
		build.VPERMPD(operand.U8(0xd8), ev, ev)
		build.VPERMPD(operand.U8(0xd8), od, od)
		return
	}
	build.Label(name + "_blk")
	build.CMPQ(n, operand.U8(16))
	build.JL(lbl("tail"))
	a, b := build.YMM(), build.YMM()
	build.VMOVUPS(operand.Mem{Base: s}, a)
	build.VMOVUPS(operand.Mem{Base: s, Disp: 32}, b)
	ev, od := split(a, b)
	build.VMOVUPS(ev, operand.Mem{Base: e})
	build.VMOVUPS(od, operand.Mem{Base: o})
	build.ADDQ(operand.U8(64), s)
	build.ADDQ(operand.U8(32), e)
	build.ADDQ(operand.U8(32), o)
	build.SUBQ(operand.U8(16), n)
	build.JMP(lbl("blk"))

	build.Label(name + "_tail")
	build.TESTQ(n, n)
	build.JZ(lbl("next"))
	a, b = build.YMM(), build.YMM()
	build.VMASKMOVPS(operand.Mem{Base: s}, m1, a)
	build.VMASKMOVPS(operand.Mem{Base: s, Disp: 32}, m2, b)
	ev, od = split(a, b)
	build.VMASKMOVPS(ev, me, operand.Mem{Base: e})
	build.VMASKMOVPS(od, mo, operand.Mem{Base: o})

	build.Label(name + "_next")
	build.LEAQ(operand.Mem{Base: dp, Index: lpB, Scale: 2}, dp)
	build.LEAQ(operand.Mem{Base: sp, Index: w, Scale: 4}, sp)
	build.DECQ(rows)
	build.JNZ(lbl("row"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// mergePhases: VUNPCKLPS/VUNPCKHPS interleave 8 evens e and 8 odds o as
// [e0 o0 e1 o1 | e4 o4 e5 o5] and [e2 o2 e3 o3 | e6 o6 e7 o7]; VPERM2F128
// joins their low halves and their high halves.
func mergePhases() {
	name := "mergePhases"
	header(name, "dst, src []float32, w, rows, lp, p0 int",
		name+" is the inverse of splitPhases: for each of rows src rows of 2·lp floats, it writes",
		"a dst row of w floats, column 2j from src[p0+j] and column 2j+1 from src[lp+p0+j].")
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }
	dp, sp := loadBase("dst"), loadBase("src")
	rows := build.GP64()
	build.Load(build.Param("rows"), rows)
	w, lpB, p0B := phaseParams()
	m1, m2, me, mo := pairMasks(w)

	build.TESTQ(rows, rows)
	build.JZ(lbl("done"))
	build.Label(name + "_row")
	e, o, d, n := build.GP64(), build.GP64(), build.GP64(), build.GP64()
	build.LEAQ(at(sp, p0B, 0), e)
	build.LEAQ(at(e, lpB, 0), o)
	build.MOVQ(dp, d)
	build.MOVQ(w, n)
	merge := func(ev, od reg.VecVirtual) (r0, r1 reg.VecVirtual) {
		lo, hi := build.YMM(), build.YMM()
		build.VUNPCKLPS(od, ev, lo)
		build.VUNPCKHPS(od, ev, hi)
		r0, r1 = build.YMM(), build.YMM()
		build.VPERM2F128(operand.U8(0x20), hi, lo, r0)
		build.VPERM2F128(operand.U8(0x31), hi, lo, r1)
		return
	}
	build.Label(name + "_blk")
	build.CMPQ(n, operand.U8(16))
	build.JL(lbl("tail"))
	ev, od := build.YMM(), build.YMM()
	build.VMOVUPS(operand.Mem{Base: e}, ev)
	build.VMOVUPS(operand.Mem{Base: o}, od)
	r0, r1 := merge(ev, od)
	build.VMOVUPS(r0, operand.Mem{Base: d})
	build.VMOVUPS(r1, operand.Mem{Base: d, Disp: 32})
	build.ADDQ(operand.U8(32), e)
	build.ADDQ(operand.U8(32), o)
	build.ADDQ(operand.U8(64), d)
	build.SUBQ(operand.U8(16), n)
	build.JMP(lbl("blk"))

	build.Label(name + "_tail")
	build.TESTQ(n, n)
	build.JZ(lbl("next"))
	ev, od = build.YMM(), build.YMM()
	build.VMASKMOVPS(operand.Mem{Base: e}, me, ev)
	build.VMASKMOVPS(operand.Mem{Base: o}, mo, od)
	r0, r1 = merge(ev, od)
	build.VMASKMOVPS(r0, m1, operand.Mem{Base: d})
	build.VMASKMOVPS(r1, m2, operand.Mem{Base: d, Disp: 32})

	build.Label(name + "_next")
	build.LEAQ(operand.Mem{Base: sp, Index: lpB, Scale: 2}, sp)
	build.LEAQ(operand.Mem{Base: dp, Index: w, Scale: 4}, dp)
	build.DECQ(rows)
	build.JNZ(lbl("row"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// rowsKernel emits copyRows (dst row = src row) or addRows (dst row +=
// src row, the dst value as the first operand, as Go's += has it) over rows
// of n floats at independent strides: blocks of 8, then a masked rest.
func rowsKernel(name string, add bool) {
	what := "sets dst[r*dstStride+j] = src[r*srcStride+j]"
	if add {
		what = "adds src[r*srcStride+j] to dst[r*dstStride+j]"
	}
	header(name, "dst, src []float32, n, rows, dstStride, srcStride int",
		name+" "+what+" for r < rows, j < n.")
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }
	dp, sp := loadBase("dst"), loadBase("src")
	rows, nB, dsB, ssB := build.GP64(), build.GP64(), build.GP64(), build.GP64()
	build.Load(build.Param("rows"), rows)
	build.Load(build.Param("n"), nB)
	build.Load(build.Param("dstStride"), dsB)
	build.SHLQ(operand.U8(2), dsB)
	build.Load(build.Param("srcStride"), ssB)
	build.SHLQ(operand.U8(2), ssB)
	k := build.GP64()
	build.MOVQ(nB, k)
	build.ANDQ(operand.U8(7), k)
	m := laneMask(k)
	build.SHLQ(operand.U8(2), nB)

	body := func(off reg.GPVirtual, mask reg.VecVirtual) {
		v := load(at(sp, off, 0), mask)
		if add {
			d := load(at(dp, off, 0), mask)
			build.VADDPS(v, d, v)
		}
		store(v, at(dp, off, 0), mask)
	}
	build.TESTQ(rows, rows)
	build.JZ(lbl("done"))
	// Rows of one or two whole blocks, the output rows of the CIFAR
	// ResNet's stride-2 layers (8 and 16 floats), get loops of their own:
	// the general one spends more instructions on its control than on the
	// copy.
	for _, blocks := range []int{1, 2} {
		next := fmt.Sprintf("not%d", blocks)
		build.CMPQ(nB, operand.U8(32*blocks))
		build.JNE(lbl(next))
		build.Label(fmt.Sprintf("%s_row%d", name, blocks))
		for k := 0; k < blocks; k++ {
			v := build.YMM()
			build.VMOVUPS(operand.Mem{Base: sp, Disp: 32 * k}, v)
			if add {
				d := build.YMM()
				build.VMOVUPS(operand.Mem{Base: dp, Disp: 32 * k}, d)
				build.VADDPS(v, d, v)
			}
			build.VMOVUPS(v, operand.Mem{Base: dp, Disp: 32 * k})
		}
		build.ADDQ(dsB, dp)
		build.ADDQ(ssB, sp)
		build.DECQ(rows)
		build.JNZ(lbl(fmt.Sprintf("row%d", blocks)))
		build.JMP(lbl("done"))
		build.Label(name + "_" + next)
	}
	build.Label(name + "_row")
	off, n := build.GP64(), build.GP64()
	build.XORQ(off, off)
	build.MOVQ(nB, n)
	build.Label(name + "_blk")
	build.CMPQ(n, operand.U8(32))
	build.JL(lbl("tail"))
	body(off, nil)
	build.ADDQ(operand.U8(32), off)
	build.SUBQ(operand.U8(32), n)
	build.JMP(lbl("blk"))
	build.Label(name + "_tail")
	build.TESTQ(n, n)
	build.JZ(lbl("next"))
	body(off, m)
	build.Label(name + "_next")
	build.ADDQ(dsB, dp)
	build.ADDQ(ssB, sp)
	build.DECQ(rows)
	build.JNZ(lbl("row"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}
