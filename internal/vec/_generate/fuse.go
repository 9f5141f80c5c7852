package main

// The "fuse" set (vec_fuse_amd64.s): kernels that let a residual block's
// elementwise passes share one sweep over memory. Its twins are in
// fuse_twins.go of package vec.

import (
	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { sets["fuse"] = fuseSet }

func fuseSet() {
	build.ConstraintExpr("amd64,!noasm")
	// sweep's masked tails read this set's own copy of the table: DATA
	// symbols do not cross assembly files.
	tailMaskTbl = build.GLOBL("tailmask", attr.RODATA|attr.NOPTR)
	for i := 0; i < 16; i++ {
		v := uint32(0)
		if i < 8 {
			v = 0xffffffff
		}
		build.DATA(4*i, operand.U32(v))
	}
	fuseNormalizeAdd("normalizeAdd", false)
	fuseNormalizeAdd("normalizeAddReLU", true)
	fuseMaskPositiveSum()
}

// fuseNormalizeAdd is normalize followed by binary's addition of o (and
// its ReLU): the same instructions in the same order, the BatchNorm output
// being the first operand of the addition as in[0] of the Add is there.
func fuseNormalizeAdd(name string, relu bool) {
	what := "y = ((x−mean)·invStd)·gamma + beta + o"
	if relu {
		what = "y = max(((x−mean)·invStd)·gamma + beta + o, 0), NaN passing,"
	}
	header(name, "y, x, o []float32, "+rowsSig+", mean, invStd, gamma, beta float32",
		name+" sets "+what+" over rows (y, x and o share the layout),",
		"each row r being [r*stride, r*stride+cols).")
	yp, xp, op := loadBase("y"), loadBase("x"), loadBase("o")
	mv, isv, gv, bv := bcast("mean"), bcast("invStd"), bcast("gamma"), bcast("beta")
	var zero reg.VecVirtual
	if relu {
		zero = zeroY()
	}
	rowLoop(name, []reg.GPVirtual{yp, xp, op}, func() {
		n, off := rowCursor()
		sweep(name+"_s", n, off, func(k, disp int, mask reg.VecVirtual) {
			v := bnValue(load(at(xp, off, disp), mask), mv, isv, gv, bv)
			w := load(at(op, off, disp), mask)
			build.VADDPS(w, v, v)
			if relu {
				build.VMAXPS(v, zero, v)
			}
			store(v, at(yp, off, disp), mask)
		})
	})
}

// fuseMaskPositiveSum is binary's addition followed by maskPositive, the
// sum never leaving the register.
func fuseMaskPositiveSum() {
	name := "maskPositiveSum"
	header(name, "dx, a, b, y []float32", name+" sets dx[i] = a[i] + b[i] where y[i] > 0, else 0, for i < len(dx).")
	dxp, ap, bp, yp := loadBase("dx"), loadBase("a"), loadBase("b"), loadBase("y")
	zero := zeroY()
	flat(name, "dx", func(off reg.GPVirtual, k, disp int, mask reg.VecVirtual) {
		yv := load(at(yp, off, disp), mask)
		build.VCMPPS(operand.U8(0x1e), zero, yv, yv) // GT_OQ: y > 0, false for NaN
		v := load(at(ap, off, disp), mask)
		w := load(at(bp, off, disp), mask)
		build.VADDPS(w, v, v)
		build.VANDPS(yv, v, v)
		store(v, at(dxp, off, disp), mask)
	})
}
