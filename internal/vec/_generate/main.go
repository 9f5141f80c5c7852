// Command _generate writes the AVX2 kernels of package vec with avo. It lives
// in its own module so that the main module does not depend on avo. Run
// through `go generate` in the vec directory.
//
// Every kernel has a pure-Go twin in package vec (name + "Go") that performs
// the same float32 operations in the same order, so the two agree bit for
// bit; the tests hold them to that. This is why no kernel uses FMA: a fused
// multiply-add rounds once, and the twin would need a float64 emulation to
// match it. The loops are bound by memory traffic, not by the arithmetic.
//
// Reductions keep 32 float32 partial sums per row, element j going to sum
// j mod 32 (four ymm accumulators), and combine them in one fixed tree; the
// twins do the same.
package main

import (
	"fmt"
	"os"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

var tailMaskTbl, iotaTbl operand.Mem

// sets holds the kernel files besides the base one (vec_amd64.s), each
// generated on its own with -set NAME into assembly and stubs of its own; a
// set's file registers its emitter in an init, and the emitter sets the
// build constraint and any tables it needs (DATA symbols are file-local).
var sets = map[string]func(){}

// takeSet removes "-set NAME" from the command line, which avo parses
// itself, and returns NAME ("base" without it).
func takeSet() string {
	for i, a := range os.Args {
		if a == "-set" && i+1 < len(os.Args) {
			s := os.Args[i+1]
			os.Args = append(os.Args[:i], os.Args[i+2:]...)
			return s
		}
	}
	return "base"
}

func main() {
	if set := takeSet(); set != "base" {
		emit, ok := sets[set]
		if !ok {
			fmt.Fprintf(os.Stderr, "_generate: unknown set %q\n", set)
			os.Exit(2)
		}
		emit()
		build.Generate()
		return
	}
	build.ConstraintExpr("amd64,!noasm")

	// 8 all-ones lanes then 8 zero lanes: the 8 lanes starting at 8-n are
	// the mask of the first n lanes.
	tailMaskTbl = build.GLOBL("tailmask", attr.RODATA|attr.NOPTR)
	for i := 0; i < 16; i++ {
		v := uint32(0)
		if i < 8 {
			v = 0xffffffff
		}
		build.DATA(4*i, operand.U32(v))
	}
	iotaTbl = build.GLOBL("iota8", attr.RODATA|attr.NOPTR)
	for i := 0; i < 8; i++ {
		build.DATA(4*i, operand.U32(uint32(i)))
	}

	rowStats()
	normalize("normalize", false)
	normalize("normalizeReLU", true)
	gradStats("gradStats", false)
	gradStats("gradStatsReLU", true)
	gradApply("gradApply", false)
	gradApply("gradApplyReLU", true)
	binary("add", "y[i] = a[i] + b[i]", false)
	binary("addReLU", "y[i] = max(a[i] + b[i], 0), NaN passing through", true)
	relu()
	maskPositive()
	im2colSame()
	build.Generate()
}

// paramAddr is the stack address of a scalar argument. Broadcasting straight
// from it avoids a legacy-SSE MOVSS, which would pay an SSE/AVX transition on
// CPUs that track dirty upper ymm halves.
func paramAddr(name string) operand.Mem {
	b, err := build.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

func bcast(name string) reg.VecVirtual {
	y := build.YMM()
	build.VBROADCASTSS(paramAddr(name), y)
	return y
}

// bcastLocal broadcasts a scalar argument into a 32-byte stack slot, for
// kernels that would run out of ymm registers holding it: an L1 operand of
// VMULPS costs next to nothing.
func bcastLocal(name string) operand.Mem {
	m := build.AllocLocal(32)
	y := build.YMM()
	build.VBROADCASTSS(paramAddr(name), y)
	build.VMOVUPS(y, m)
	return m
}

func zeroY() reg.VecVirtual {
	y := build.YMM()
	build.VXORPS(y, y, y)
	return y
}

// bcastInt broadcasts the low 32 bits of r to the eight int32 lanes of a ymm.
func bcastInt(r reg.GPVirtual) reg.VecVirtual {
	x := build.XMM()
	build.VMOVD(r.As32(), x)
	y := build.YMM()
	build.VPBROADCASTD(x, y)
	return y
}

// tailMask returns the mask of the first n lanes, 0 < n < 8.
func tailMask(n reg.GPVirtual) reg.VecVirtual {
	t := build.GP64()
	build.MOVQ(operand.U32(8), t)
	build.SUBQ(n, t)
	tb := build.GP64()
	build.LEAQ(tailMaskTbl, tb)
	m := build.YMM()
	build.VMOVUPS(operand.Mem{Base: tb, Index: t, Scale: 4}, m)
	return m
}

func at(base, off reg.GPVirtual, disp int) operand.Mem {
	return operand.Mem{Base: base, Index: off, Scale: 1, Disp: disp}
}

// load reads 8 floats, or the lanes of mask (others read as 0, never fault).
func load(m operand.Mem, mask reg.VecVirtual) reg.VecVirtual {
	y := build.YMM()
	if mask == nil {
		build.VMOVUPS(m, y)
	} else {
		build.VMASKMOVPS(m, mask, y)
	}
	return y
}

func store(y reg.VecVirtual, m operand.Mem, mask reg.VecVirtual) {
	if mask == nil {
		build.VMOVUPS(y, m)
	} else {
		build.VMASKMOVPS(y, mask, m)
	}
}

// sweep emits a loop over n floats at byte offset off from the row bases:
// blocks of 32 (body with k = 0..3 at disp 32k), then up to three blocks of
// 8 (k = 0, 1, 2), then a masked block of fewer than 8 with the next k.
// Element j of the row is thus always in lane j mod 8 of block k = (j/8)
// mod 4, which is what the reductions' lane order relies on. n and off are
// clobbered.
func sweep(prefix string, n, off reg.GPVirtual, body func(k, disp int, mask reg.VecVirtual)) {
	build.Label(prefix + "_main")
	build.CMPQ(n, operand.U8(32))
	build.JL(operand.LabelRef(prefix + "_rem"))
	for k := 0; k < 4; k++ {
		body(k, 32*k, nil)
	}
	build.ADDQ(operand.U32(128), off)
	build.SUBQ(operand.U8(32), n)
	build.JMP(operand.LabelRef(prefix + "_main"))

	build.Label(prefix + "_rem")
	for k := 0; k < 3; k++ {
		build.CMPQ(n, operand.U8(8))
		build.JL(operand.LabelRef(fmt.Sprintf("%s_tail%d", prefix, k)))
		body(k, 32*k, nil)
		build.SUBQ(operand.U8(8), n)
	}
	for k := 3; k >= 0; k-- {
		build.Label(fmt.Sprintf("%s_tail%d", prefix, k))
		build.TESTQ(n, n)
		build.JZ(operand.LabelRef(prefix + "_end"))
		body(k, 32*k, tailMask(n))
		if k > 0 {
			build.JMP(operand.LabelRef(prefix + "_end"))
		}
	}
	build.Label(prefix + "_end")
}

// reduce32 sums the 32 lanes of a in the twins' order: lane i of
// (a0+a2)+(a1+a3), then halves folded 8→4→2→1. It returns the sum in lane 0
// of an xmm; a is clobbered.
func reduce32(a [4]reg.VecVirtual) reg.VecVirtual {
	build.VADDPS(a[2], a[0], a[0])
	build.VADDPS(a[3], a[1], a[1])
	build.VADDPS(a[1], a[0], a[0])
	hi := build.XMM()
	build.VEXTRACTF128(operand.U8(1), a[0], hi)
	build.VADDPS(hi, a[0].AsX(), hi)
	t := build.XMM()
	build.VMOVHLPS(hi, hi, t)
	build.VADDPS(t, hi, hi)
	build.VMOVSHDUP(hi, t)
	build.VADDSS(t, hi, hi)
	return hi
}

func zeroAcc() [4]reg.VecVirtual {
	var a [4]reg.VecVirtual
	for k := range a {
		a[k] = zeroY()
	}
	return a
}

const rowsSig = "rows, cols, stride int"

// rowLoop loads the row count and stride, and emits the loop over rows
// around body, advancing each of bases by stride floats per row.
func rowLoop(name string, bases []reg.GPVirtual, body func()) {
	rows := build.GP64()
	build.Load(build.Param("rows"), rows)
	strideB := build.GP64()
	build.Load(build.Param("stride"), strideB)
	build.SHLQ(operand.U8(2), strideB)
	build.TESTQ(rows, rows)
	build.JZ(operand.LabelRef(name + "_done"))
	build.Label(name + "_row")
	body()
	for _, b := range bases {
		build.ADDQ(strideB, b)
	}
	build.DECQ(rows)
	build.JNZ(operand.LabelRef(name + "_row"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

func loadBase(name string) reg.GPVirtual {
	r := build.GP64()
	build.Load(build.Param(name).Base(), r)
	return r
}

func header(name, sig string, doc ...string) {
	build.TEXT(name, attr.NOSPLIT, "func("+sig+")")
	build.Pragma("noescape")
	doc[len(doc)-1] += fmt.Sprintf(" Its pure-Go twin is %sGo.", name)
	build.Doc(doc...)
}

// rowCursor returns a fresh column count and byte offset for a sweep.
func rowCursor() (n, off reg.GPVirtual) {
	n, off = build.GP64(), build.GP64()
	build.Load(build.Param("cols"), n)
	build.XORQ(off, off)
	return n, off
}

func rowStats() {
	name := "rowStats"
	header(name, "x []float32, "+rowsSig+", out []float32",
		name+" writes, for each row r (x[r*stride:][:cols]), out[3r] = S = Σx,",
		"out[3r+1] = Σ(x−m)² and out[3r+2] = Σ(x−m), with m = S/cols in float32.")
	xp := loadBase("x")
	op := loadBase("out")
	colsF := build.XMM()
	build.VXORPS(colsF, colsF, colsF)
	build.VCVTSI2SSQ(paramAddr("cols"), colsF, colsF)
	rowLoop(name, []reg.GPVirtual{xp}, func() {
		n, off := rowCursor()
		a := zeroAcc()
		sweep(name+"_s", n, off, func(k, disp int, mask reg.VecVirtual) {
			v := load(at(xp, off, disp), mask)
			build.VADDPS(v, a[k], a[k])
		})
		s := reduce32(a)
		build.VMOVSS(s, operand.Mem{Base: op})
		mr := build.XMM()
		build.VDIVSS(colsF, s, mr)
		mv := build.YMM()
		build.VBROADCASTSS(mr, mv)

		n, off = rowCursor()
		q, d := zeroAcc(), zeroAcc()
		sweep(name+"_q", n, off, func(k, disp int, mask reg.VecVirtual) {
			v := load(at(xp, off, disp), mask)
			build.VSUBPS(mv, v, v)
			if mask != nil {
				build.VANDPS(mask, v, v)
			}
			build.VADDPS(v, d[k], d[k])
			build.VMULPS(v, v, v)
			build.VADDPS(v, q[k], q[k])
		})
		build.VMOVSS(reduce32(q), operand.Mem{Base: op, Disp: 4})
		build.VMOVSS(reduce32(d), operand.Mem{Base: op, Disp: 8})
		build.ADDQ(operand.U8(12), op)
	})
}

// bnValue returns ((x − mean)·invStd)·gamma + beta, the BatchNorm output, with
// the operations in the order of the engine's reference formula.
func bnValue(xv reg.VecVirtual, mv, isv, gv, bv operand.Op) reg.VecVirtual {
	t := build.YMM()
	build.VSUBPS(mv, xv, t)
	build.VMULPS(isv, t, t)
	build.VMULPS(gv, t, t)
	build.VADDPS(bv, t, t)
	return t
}

// reluMask returns the lanes where the BatchNorm output of x is > 0 (false
// for NaN).
func reluMask(xv reg.VecVirtual, mv, isv, gv, bv operand.Op, zero reg.VecVirtual) reg.VecVirtual {
	t := bnValue(xv, mv, isv, gv, bv)
	build.VCMPPS(operand.U8(0x1e), zero, t, t) // GT_OQ: t > 0
	return t
}

func normalize(name string, relu bool) {
	doc := name + " sets y = ((x−mean)·invStd)·gamma + beta over rows (y and x share the layout),"
	if relu {
		doc = name + " sets y = max(((x−mean)·invStd)·gamma + beta, 0) over rows (y and x share the layout; NaN passes),"
	}
	header(name, "y, x []float32, "+rowsSig+", mean, invStd, gamma, beta float32", doc, "each row r being [r*stride, r*stride+cols).")
	yp, xp := loadBase("y"), loadBase("x")
	mv, isv, gv, bv := bcast("mean"), bcast("invStd"), bcast("gamma"), bcast("beta")
	var zero reg.VecVirtual
	if relu {
		zero = zeroY()
	}
	rowLoop(name, []reg.GPVirtual{yp, xp}, func() {
		n, off := rowCursor()
		sweep(name+"_s", n, off, func(k, disp int, mask reg.VecVirtual) {
			v := bnValue(load(at(xp, off, disp), mask), mv, isv, gv, bv)
			if relu {
				build.VMAXPS(v, zero, v) // zero > v ? zero : v, so NaN stays
			}
			store(v, at(yp, off, disp), mask)
		})
	})
}

func gradStats(name string, relu bool) {
	sig := "dy, x []float32, " + rowsSig + ", mean float32, out []float32"
	doc := []string{name + " writes, for each row r, out[2r] = Σdy and out[2r+1] = Σdy·(x−mean)."}
	if relu {
		sig = "dy, x []float32, " + rowsSig + ", mean, invStd, gamma, beta float32, out []float32"
		doc = []string{name + " writes, for each row r, out[2r] = Σd and out[2r+1] = Σd·(x−mean),",
			"with d = dy where ((x−mean)·invStd)·gamma + beta > 0, else 0."}
	}
	header(name, sig, doc...)
	dyp, xp, op := loadBase("dy"), loadBase("x"), loadBase("out")
	mv := bcast("mean")
	var isv, gv, bv operand.Mem
	var zero reg.VecVirtual
	if relu {
		isv, gv, bv, zero = bcastLocal("invStd"), bcastLocal("gamma"), bcastLocal("beta"), zeroY()
	}
	rowLoop(name, []reg.GPVirtual{dyp, xp}, func() {
		n, off := rowCursor()
		s1, s2 := zeroAcc(), zeroAcc()
		sweep(name+"_s", n, off, func(k, disp int, mask reg.VecVirtual) {
			xv := load(at(xp, off, disp), mask)
			dv := load(at(dyp, off, disp), mask)
			if relu {
				build.VANDPS(reluMask(xv, mv, isv, gv, bv, zero), dv, dv)
			}
			build.VSUBPS(mv, xv, xv)
			if mask != nil {
				build.VANDPS(mask, xv, xv)
			}
			build.VADDPS(dv, s1[k], s1[k])
			build.VMULPS(xv, dv, dv)
			build.VADDPS(dv, s2[k], s2[k])
		})
		build.VMOVSS(reduce32(s1), operand.Mem{Base: op})
		build.VMOVSS(reduce32(s2), operand.Mem{Base: op, Disp: 4})
		build.ADDQ(operand.U8(8), op)
	})
}

func gradApply(name string, relu bool) {
	sig := "dx, dy, x []float32, " + rowsSig + ", mean, r, mdy, k float32"
	d := "dy"
	if relu {
		sig = "dx, dy, x []float32, " + rowsSig + ", mean, r, mdy, k, invStd, gamma, beta float32"
		d = "d"
	}
	doc := []string{fmt.Sprintf("%s sets dx = ((%s − mdy) − (x−mean)·r)·k over rows", name, d)}
	if relu {
		doc = append(doc, "with d = dy where ((x−mean)·invStd)·gamma + beta > 0, else 0,")
	}
	doc = append(doc, "all three sharing the layout.")
	header(name, sig, doc...)
	dxp, dyp, xp := loadBase("dx"), loadBase("dy"), loadBase("x")
	mv, rv, mdyv, kv := bcast("mean"), bcast("r"), bcast("mdy"), bcast("k")
	var isv, gv, bv operand.Mem
	var zero reg.VecVirtual
	if relu {
		isv, gv, bv, zero = bcastLocal("invStd"), bcastLocal("gamma"), bcastLocal("beta"), zeroY()
	}
	rowLoop(name, []reg.GPVirtual{dxp, dyp, xp}, func() {
		n, off := rowCursor()
		sweep(name+"_s", n, off, func(k, disp int, mask reg.VecVirtual) {
			xv := load(at(xp, off, disp), mask)
			dv := load(at(dyp, off, disp), mask)
			if relu {
				build.VANDPS(reluMask(xv, mv, isv, gv, bv, zero), dv, dv)
			}
			build.VSUBPS(mdyv, dv, dv)
			build.VSUBPS(mv, xv, xv)
			build.VMULPS(rv, xv, xv)
			build.VSUBPS(xv, dv, dv)
			build.VMULPS(kv, dv, dv)
			store(dv, at(dxp, off, disp), mask)
		})
	})
}

// flat emits a kernel over the len(first) elements of its slices.
func flat(name string, first string, body func(off reg.GPVirtual, k, disp int, mask reg.VecVirtual)) {
	n, off := build.GP64(), build.GP64()
	build.Load(build.Param(first).Len(), n)
	build.XORQ(off, off)
	sweep(name+"_s", n, off, func(k, disp int, mask reg.VecVirtual) { body(off, k, disp, mask) })
	build.VZEROUPPER()
	build.RET()
}

func binary(name, what string, relu bool) {
	header(name, "y, a, b []float32", fmt.Sprintf("%s sets %s for i < len(y).", name, what))
	yp, ap, bp := loadBase("y"), loadBase("a"), loadBase("b")
	var zero reg.VecVirtual
	if relu {
		zero = zeroY()
	}
	flat(name, "y", func(off reg.GPVirtual, k, disp int, mask reg.VecVirtual) {
		v := load(at(ap, off, disp), mask)
		w := load(at(bp, off, disp), mask)
		build.VADDPS(w, v, v)
		if relu {
			build.VMAXPS(v, zero, v)
		}
		store(v, at(yp, off, disp), mask)
	})
}

func relu() {
	name := "relu"
	header(name, "y, x []float32", name+" sets y[i] = max(x[i], 0) for i < len(y), NaN passing through.")
	yp, xp := loadBase("y"), loadBase("x")
	zero := zeroY()
	flat(name, "y", func(off reg.GPVirtual, k, disp int, mask reg.VecVirtual) {
		v := load(at(xp, off, disp), mask)
		build.VMAXPS(v, zero, v)
		store(v, at(yp, off, disp), mask)
	})
}

func maskPositive() {
	name := "maskPositive"
	header(name, "dx, dy, y []float32", name+" sets dx[i] = dy[i] where y[i] > 0, else 0, for i < len(dx).")
	dxp, dyp, yp := loadBase("dx"), loadBase("dy"), loadBase("y")
	zero := zeroY()
	flat(name, "dx", func(off reg.GPVirtual, k, disp int, mask reg.VecVirtual) {
		yv := load(at(yp, off, disp), mask)
		build.VCMPPS(operand.U8(0x1e), zero, yv, yv)
		dv := load(at(dyp, off, disp), mask)
		build.VANDPS(yv, dv, dv)
		store(dv, at(dxp, off, disp), mask)
	})
}

// im2colSame emits the im2col of a C×h×w image for a stride-1 convolution
// whose output is h×w (for the row widths and paddings that vec.im2colFits
// accepts), restricted to the output rows [lo, hi): per channel, kh·kw
// planes of (hi−lo)×w, plane (ki, kj) being the channel shifted by
// (ki−pad, kj−pad) with zeros where the tap falls outside.
//
// A row of a plane is a run of 8-float blocks. Only its first and last
// blocks can hold a border tap, and which lanes do depends only on kj, so
// the loops run kj outermost and compute the two load masks once per kj;
// the blocks between are plain copies. Masked loads read nothing outside
// the valid source span (neither the row's neighbours nor the slice ends)
// and give the zeros of the border for free. The rows that fall off the
// top or bottom are counted once per plane, not tested per row. Rows of a
// single block (w ≤ 8) get their own copy of the loops.
func im2colSame() {
	name := "im2colSame"
	header(name, "col, x []float32, ch, h, w, kh, kw, pad, lo, hi int",
		name+" writes rows [lo, hi) of the kh·kw shifted copies of each h×w channel of x into col (see im2colSameGo).")
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }

	// Sizes derived once, kept on the stack to leave registers to the loops.
	lastOff, middle, partial := build.AllocLocal(8), build.AllocLocal(8), build.AllocLocal(8)
	inPlaneB, planeB, chanB := build.AllocLocal(8), build.AllocLocal(8), build.AllocLocal(8)
	kjLeft, cLeft, kiLeft := build.AllocLocal(8), build.AllocLocal(8), build.AllocLocal(8)
	rTopMem, rBotMem := build.AllocLocal(8), build.AllocLocal(8)

	w := build.GP64()
	build.Load(build.Param("w"), w)
	t := build.GP64()
	build.LEAQ(operand.Mem{Base: w, Disp: -1}, t)
	build.SHRQ(operand.U8(3), t) // blocks per row − 1
	u := build.GP64()
	build.MOVQ(t, u)
	build.SHLQ(operand.U8(5), u)
	build.MOVQ(u, lastOff)
	build.DECQ(t) // middle blocks, or −1 for a single block
	build.MOVQ(t, middle)
	build.MOVQ(w, t)
	build.ANDQ(operand.U8(7), t)
	build.MOVQ(t, partial)
	build.Load(build.Param("h"), t)
	build.IMULQ(w, t)
	build.SHLQ(operand.U8(2), t)
	build.MOVQ(t, inPlaneB)
	build.Load(build.Param("hi"), t)
	build.SUBQ(paramAddr("lo"), t)
	build.IMULQ(w, t)
	build.SHLQ(operand.U8(2), t)
	build.MOVQ(t, planeB)
	build.Load(build.Param("kh"), u)
	build.IMULQ(paramAddr("kw"), u)
	build.IMULQ(t, u)
	build.MOVQ(u, chanB)

	iota := build.YMM()
	build.VMOVDQU(iotaTbl, iota)
	wv := bcastInt(w)
	// Lane indices of the last block, and its store mask (lanes < w).
	build.MOVQ(lastOff, t)
	build.SHRQ(operand.U8(2), t)
	idxL := bcastInt(t)
	build.VPADDD(iota, idxL, idxL)
	smL := build.YMM()
	build.VPCMPGTD(idxL, wv, smL)
	zero := zeroY()

	single := lbl("single")
	build.CMPQ(middle, operand.U8(0))
	build.JL(single)
	for _, one := range []bool{false, true} {
		sfx := "_multi"
		if one {
			sfx = "_one"
			build.Label(name + "_single")
		}
		l := func(s string) operand.LabelRef { return lbl(s + sfx) }
		L := func(s string) { build.Label(name + "_" + s + sfx) }

		dstKj := loadBase("col")
		dx := build.GP64()
		build.Load(build.Param("pad"), dx)
		build.NEGQ(dx)
		build.Load(build.Param("kw"), t)
		build.MOVQ(t, kjLeft)

		L("kj")
		// Valid output columns j have -dx-1 < j < min(w, w-dx).
		build.MOVQ(dx, t)
		build.NOTQ(t)
		lov := bcastInt(t)
		build.MOVQ(w, t)
		build.SUBQ(dx, t)
		build.CMPQ(t, w)
		build.CMOVQGT(w, t)
		hiv := bcastInt(t)
		mask := func(idx reg.VecVirtual) reg.VecVirtual {
			m, m2 := build.YMM(), build.YMM()
			build.VPCMPGTD(lov, idx, m)
			build.VPCMPGTD(idx, hiv, m2)
			build.VPAND(m2, m, m)
			return m
		}
		var mFirst reg.VecVirtual
		if !one {
			mFirst = mask(iota)
		}
		mLast := mask(idxL)

		xc := loadBase("x")
		dstC := build.GP64()
		build.MOVQ(dstKj, dstC)
		build.Load(build.Param("ch"), t)
		build.MOVQ(t, cLeft)

		L("c")
		dst := build.GP64()
		build.MOVQ(dstC, dst)
		dy := build.GP64()
		build.Load(build.Param("pad"), dy)
		build.NEGQ(dy)
		build.Load(build.Param("kh"), t)
		build.MOVQ(t, kiLeft)

		L("ki")
		// Output rows [lo, rTop) and [rBot, hi) read outside the plane:
		// rTop = clamp(−dy, lo, hi), rBot = clamp(h−dy, rTop, hi).
		lo, hi := build.GP64(), build.GP64()
		build.Load(build.Param("lo"), lo)
		build.Load(build.Param("hi"), hi)
		rTop := build.GP64()
		build.XORQ(rTop, rTop)
		build.SUBQ(dy, rTop)
		build.CMPQ(rTop, lo)
		build.CMOVQLT(lo, rTop)
		build.CMPQ(rTop, hi)
		build.CMOVQGT(hi, rTop)
		build.MOVQ(rTop, rTopMem)
		rBot := build.GP64()
		build.Load(build.Param("h"), rBot)
		build.SUBQ(dy, rBot)
		build.CMPQ(rBot, hi)
		build.CMOVQGT(hi, rBot)
		build.CMPQ(rBot, rTop)
		build.CMOVQLT(rTop, rBot)
		build.MOVQ(rBot, rBotMem)

		zeroRows := func(tag string, n reg.GPVirtual) {
			build.TESTQ(n, n)
			build.JZ(l(tag + "done"))
			L(tag)
			j := build.GP64()
			build.XORQ(j, j)
			if !one {
				cnt := build.GP64()
				build.MOVQ(middle, cnt)
				build.INCQ(cnt) // blocks before the last
				L(tag + "blk")
				build.VMOVUPS(zero, operand.Mem{Base: dst, Index: j, Scale: 1})
				build.ADDQ(operand.U8(32), j)
				build.DECQ(cnt)
				build.JNZ(l(tag + "blk"))
			}
			build.VMASKMOVPS(zero, smL, operand.Mem{Base: dst, Index: j, Scale: 1})
			build.LEAQ(operand.Mem{Base: dst, Index: w, Scale: 4}, dst)
			build.DECQ(n)
			build.JNZ(l(tag))
			L(tag + "done")
		}
		top := build.GP64()
		build.MOVQ(rTopMem, top)
		build.SUBQ(paramAddr("lo"), top)
		zeroRows("top", top)

		// Copy rows [rTop, rBot) from source rows rTop+dy.
		rows := build.GP64()
		build.MOVQ(rBotMem, rows)
		build.MOVQ(rTopMem, t)
		build.SUBQ(t, rows)
		build.JZ(l("copydone"))
		src := build.GP64()
		build.ADDQ(dy, t)
		build.IMULQ(w, t)
		build.ADDQ(dx, t)
		build.LEAQ(operand.Mem{Base: xc, Index: t, Scale: 4}, src)
		L("copy")
		v := build.YMM()
		j := build.GP64()
		if !one {
			build.VMASKMOVPS(operand.Mem{Base: src}, mFirst, v)
			build.VMOVUPS(v, operand.Mem{Base: dst})
			build.MOVQ(operand.U32(32), j)
			cnt := build.GP64()
			build.MOVQ(middle, cnt)
			build.TESTQ(cnt, cnt)
			build.JZ(l("last"))
			L("mid")
			build.VMOVUPS(operand.Mem{Base: src, Index: j, Scale: 1}, v)
			build.VMOVUPS(v, operand.Mem{Base: dst, Index: j, Scale: 1})
			build.ADDQ(operand.U8(32), j)
			build.DECQ(cnt)
			build.JNZ(l("mid"))
			L("last")
		} else {
			build.XORQ(j, j)
		}
		build.VMASKMOVPS(operand.Mem{Base: src, Index: j, Scale: 1}, mLast, v)
		build.CMPQ(partial, operand.U8(0))
		build.JNE(l("partial"))
		build.VMOVUPS(v, operand.Mem{Base: dst, Index: j, Scale: 1})
		build.JMP(l("rowend"))
		L("partial")
		build.VMASKMOVPS(v, smL, operand.Mem{Base: dst, Index: j, Scale: 1})
		L("rowend")
		build.LEAQ(operand.Mem{Base: dst, Index: w, Scale: 4}, dst)
		build.LEAQ(operand.Mem{Base: src, Index: w, Scale: 4}, src)
		build.DECQ(rows)
		build.JNZ(l("copy"))
		L("copydone")

		bottom := build.GP64()
		build.Load(build.Param("hi"), bottom)
		build.SUBQ(rBotMem, bottom)
		zeroRows("bottom", bottom)

		// Next ki: plane (ki+1)·kw + kj, kw−1 planes past the one just written.
		build.Load(build.Param("kw"), t)
		build.DECQ(t)
		build.IMULQ(planeB, t)
		build.ADDQ(t, dst)
		build.INCQ(dy)
		build.DECQ(kiLeft)
		build.JNZ(l("ki"))

		build.ADDQ(inPlaneB, xc)
		build.ADDQ(chanB, dstC)
		build.DECQ(cLeft)
		build.JNZ(l("c"))

		build.ADDQ(planeB, dstKj)
		build.INCQ(dx)
		build.DECQ(kjLeft)
		build.JNZ(l("kj"))
		build.JMP(lbl("done"))
	}

	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}
