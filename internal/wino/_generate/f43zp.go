package main

// The AVX-512 packed F(4×4, 3×3) kernels (set "zp"), for planes whose tile
// rows hold four tiles (13 to 16 pixels wide): lanes 4k…4k+3 of a zmm are
// tiles 0…3 of tile row 4g+k, so that a group g of four tile rows is one
// vector (a whole 16×16 plane) and its sixteen tiles are consecutive in the
// transformed rows. A tile row is then one 128-bit lane, which makes the
// neighbour-tile shifts of f43p.go (VPSLLDQ, VPSRLDQ) work unchanged on
// zmm, and a plane row of at most 16 pixels is one masked zmm access. Tile
// rows past the last (th need not be a multiple of four) are masked off:
// loads of them read +0, as the AVX2 kernels' VANDPS gives, and stores skip
// them. The arithmetic per lane is that of the AVX2 kernels, operation for
// operation and operand for operand, so the results agree bit for bit.

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// czp.perm moves lane 4t+k to 4k+t and back (it is its own inverse): after
// the in-lane transpose of four plane rows, phase p has row k's x[4t+p] in
// lane 4t+k. czp.rowK[n] is the opmask of the first n tile rows of a
// group; czp.zero is a zmm of +0.
var czp struct{ perm, rowK, zero operand.Mem }

// zp0 holds +0 in every lane, loaded once per kernel: avo takes an EVEX
// VPXORD z, z, z for a read of z, which would keep each register zeroed
// that way live across the kernel's loop.
var zp0 reg.VecVirtual

func init() {
	sets["zp"] = func() {
		build.ConstraintExpr("amd64,!noasm")
		globalsZ()
		globalsZP()
		in4zp()
		out4zp()
		outT4zp()
		inT4zp()
	}
	for _, k := range []string{"in4", "out4", "outT4", "inT4"} {
		sharedTwins[k+"zp"] = k
	}
}

func globalsZP() {
	czp.perm = build.GLOBL("zpperm", attr.RODATA|attr.NOPTR)
	for l := 0; l < 16; l++ {
		build.DATA(4*l, operand.U32(uint32(4*(l%4)+l/4)))
	}
	czp.zero = build.GLOBL("zpzero", attr.RODATA|attr.NOPTR)
	build.DATA(0, operand.U32(0))
	build.DATA(60, operand.U32(0))
	czp.rowK = build.GLOBL("zprowk", attr.RODATA|attr.NOPTR)
	for n := 0; n <= 4; n++ {
		build.DATA(4*n, operand.U32(uint32(1)<<(4*n)-1))
	}
}

// zpZero returns a copy of zp0, which zpBegin sets.
func zpZero() reg.VecVirtual {
	z := build.ZMM()
	build.VMOVAPS(zp0, z)
	return z
}

// zpBegin loads zp0, the column mask and the permutation of a kernel.
func zpBegin() (colK reg.OpmaskVirtual, perm reg.VecVirtual) {
	zp0 = zload(czp.zero)
	return zpColK(), zload(czp.perm)
}

// zpColK is the opmask of the plane's columns: the first 16 entries of
// both the column mask and the dx mask of a packed plan.
func zpColK() reg.OpmaskVirtual {
	k := build.K()
	build.VPMOVD2M(zload(mem(base("mask"), 0)), k)
	return k
}

// zpRowK returns the opmask of the tile rows of group g that exist,
// min(th−4g, 4) of them (4g < th in every kernel's loop).
func zpRowK(lbl func(string) string, gM, thM operand.Mem) reg.OpmaskVirtual {
	n := build.GP64()
	build.MOVQ(thM, n)
	g4 := build.GP64()
	build.MOVQ(gM, g4)
	build.SHLQ(operand.U8(2), g4)
	build.SUBQ(g4, n)
	build.CMPQ(n, operand.U8(4))
	build.JLE(operand.LabelRef(lbl("rk4")))
	build.MOVQ(operand.U32(4), n)
	build.Label(lbl("rk4"))
	t := build.GP64()
	build.LEAQ(czp.rowK, t)
	k := build.K()
	build.KMOVW(memi(t, n, 4, 0), k)
	return k
}

// zpThM stores th = ⌈h/4⌉.
func zpThM() operand.Mem {
	thM := local()
	t := param("h")
	build.ADDQ(operand.U8(3), t)
	build.SHRQ(operand.U8(2), t)
	build.MOVQ(t, thM)
	return thM
}

// zpRow jumps to skip unless plane row r = 16g + off lies in [0, h), and
// returns the address of the row of name.
func zpRow(name string, gM operand.Mem, off int, skip string) operand.Mem {
	r := build.GP64()
	build.MOVQ(gM, r)
	build.SHLQ(operand.U8(4), r)
	switch {
	case off < 0:
		build.DECQ(r)
	case off > 0:
		build.ADDQ(operand.U8(uint8(off)), r)
	}
	if off < 0 {
		build.CMPQ(r, operand.U8(0))
		build.JL(operand.LabelRef(skip))
	}
	build.CMPQ(r, addr("h"))
	build.JGE(operand.LabelRef(skip))
	build.IMULQ(addr("w"), r)
	return memi(base(name), r, 4, 0)
}

// zpLoadRows loads plane rows 16g + off + 4k, k = 0…3, of x under the
// column mask, zero outside the plane.
func zpLoadRows(lbl func(string) string, gM operand.Mem, off int, colK reg.OpmaskVirtual) [4]reg.VecVirtual {
	var q [4]reg.VecVirtual
	for k := range q {
		q[k] = zpZero()
		skip := lbl(fmt.Sprintf("lr%d_%d", off+1, k))
		build.VMOVUPS_Z(zpRow("x", gM, off+4*k, skip), colK, q[k])
		build.Label(skip)
	}
	return q
}

// zpSplit turns four plane rows into the four column phases of their
// tiles: phase p holds row k's x[4t+p] in lane 4k+t.
func zpSplit(q [4]reg.VecVirtual, perm reg.VecVirtual) [4]reg.VecVirtual {
	return split4z(q, perm)
}

// zpMerge is zpSplit's inverse: row k of the result holds lane 4k+t of
// phase p at 4t+p.
func zpMerge(x [4]reg.VecVirtual, perm reg.VecVirtual) [4]reg.VecVirtual {
	return merge4z(x, perm)
}

// zpStoreRows stores o[k] to plane row 16g + off + 4k of name under the
// column mask, skipping the rows outside the plane.
func zpStoreRows(lbl func(string) string, name string, gM operand.Mem, off int, o [4]reg.VecVirtual, colK reg.OpmaskVirtual) {
	for k := range o {
		skip := lbl(fmt.Sprintf("sr%d_%d", off+1, k))
		build.VMOVUPS(o[k], colK, zpRow(name, gM, off+4*k, skip))
		build.Label(skip)
	}
}

// zpRows returns p's transformed-row addressing: element i of p, rows 6i
// apart, with ld bytes per row.
func zpRows(ld reg.GPVirtual) func(p reg.GPVirtual, i int) operand.Mem {
	ld6, ld18, ld30 := build.GP64(), build.GP64(), build.GP64()
	build.IMUL3Q(operand.U8(6), ld, ld6)
	build.LEAQ(memi(ld6, ld6, 2, 0), ld18)
	build.LEAQ(memi(ld6, ld6, 4, 0), ld30)
	return func(p reg.GPVirtual, i int) operand.Mem {
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
}

// zpGroup returns base(name) + 64·g, group g's first tile in a
// transformed row.
func zpGroup(name string, gM operand.Mem) reg.GPVirtual {
	p := base(name)
	t := build.GP64()
	build.MOVQ(gM, t)
	build.SHLQ(operand.U8(6), t)
	build.ADDQ(t, p)
	return p
}

// zpLoop closes the loop over groups: g+1, back to l while 4g < th.
func zpLoop(gM, thM operand.Mem, l string) {
	build.INCQ(gM)
	t := build.GP64()
	build.MOVQ(gM, t)
	build.SHLQ(operand.U8(2), t)
	build.CMPQ(t, thM)
	build.JL(operand.LabelRef(l))
}

// in4zp: per group, the six image rows of each of its tile rows are split
// into the six column phases of f43p.go's in4p (S, 36 zmm in tmp), the
// column transform of each phase replaces its six vectors in place (Q),
// and the row transform writes V.
func in4zp() {
	name := "in4zp"
	header(name, "v []float32, ldv int, x []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" is in4 for planes with four tiles per tile row, four tile rows per zmm; tmp holds 36 zmm.")
	lbl := func(s string) string { return name + "_" + s }
	gM := local()
	thM := zpThM()
	colK, perm := zpBegin()
	build.MOVQ(operand.U32(0), gM)
	build.Label(lbl("g"))
	tp := base("tmp")
	for i := 0; i < 6; i++ {
		// Tile row 4g+k reads image rows 16g + 4k − 1 + i.
		x := zpSplit(zpLoadRows(lbl, gM, i-1, colK), perm)
		ph := [6]reg.VecVirtual{build.ZMM(), x[0], x[1], x[2], x[3], build.ZMM()}
		build.VPSLLDQ(operand.U8(4), x[3], ph[0])
		build.VPSRLDQ(operand.U8(4), x[0], ph[5])
		for c, v := range ph {
			build.VMOVUPS(v, mem(tp, 64*(6*i+c)))
		}
	}
	for c := 0; c < 6; c++ {
		var d [6]reg.VecVirtual
		for i := range d {
			d[i] = zload(mem(tp, 64*(6*i+c)))
		}
		bt6all(d, func(k int, v reg.VecVirtual) { build.VMOVUPS(v, mem(tp, 64*(6*k+c))) })
	}
	rowK := zpRowK(lbl, gM, thM)
	ld := param("ldv")
	build.SHLQ(operand.U8(2), ld)
	p := zpGroup("v", gM)
	for k := 0; k < 6; k++ {
		var s [6]reg.VecVirtual
		for c := range s {
			s[c] = zload(mem(tp, 64*(6*k+c)))
		}
		bt6all(s, func(j int, v reg.VecVirtual) {
			build.VMOVUPS(v, rowK, mem(p, 0))
			if k < 5 || j < 5 {
				build.ADDQ(ld, p)
			}
		})
	}
	zpLoop(gM, thM, lbl("g"))
	build.VZEROUPPER()
	build.RET()
}

// out4zp: per group, the column transform in two passes (outputs 0 and 2
// share m1+m2 and m3+m4, outputs 1 and 3 their differences), each
// followed by the row transforms of its two output rows; output row a of
// tile row 4g+k is image row 16g + 4k + a.
func out4zp() {
	name := "out4zp"
	header(name, "y, m []float32, ldm, h, w, tw int, bias float32, mask []int32",
		name+" is out4 for planes with four tiles per tile row, four tile rows per zmm.")
	lbl := func(s string) string { return name + "_" + s }
	gM := local()
	thM := zpThM()
	colK, perm := zpBegin()
	bias := build.ZMM()
	build.VBROADCASTSS(addr("bias"), bias)
	build.MOVQ(operand.U32(0), gM)
	build.Label(lbl("g"))
	rowK := zpRowK(lbl, gM, thM)
	ld := param("ldm")
	build.SHLQ(operand.U8(2), ld)
	at := zpRows(ld)
	q := zpGroup("m", gM)
	for _, odd := range []bool{false, true} {
		var s [4][6]reg.VecVirtual
		pp := build.GP64()
		build.MOVQ(q, pp)
		for j := 0; j < 6; j++ {
			var m [6]reg.VecVirtual
			lo := 0
			if odd {
				lo = 1
			}
			for i := lo; i < lo+5; i++ {
				m[i] = build.ZMM()
				build.VMOVUPS_Z(at(pp, i), rowK, m[i])
			}
			// at4k of f43.go, outputs a and a+2 at once.
			if !odd {
				s1 := vadd(m[1], m[2])
				s2 := vadd(m[3], m[4])
				s[0][j] = vadd(vadd(m[0], s1), s2)
				s[2][j] = vadd(s1, vmul(s2, cz.four))
			} else {
				d1 := vsub(m[1], m[2])
				d2 := vsub(m[3], m[4])
				s[1][j] = vadd(d1, vmul(d2, cz.two))
				s[3][j] = vadd(vadd(d1, vmul(d2, cz.eight)), m[5])
			}
			if j < 5 {
				build.ADDQ(ld, pp)
			}
		}
		for a := 0; a < 4; a++ {
			if (a%2 == 1) != odd {
				continue
			}
			y := at4all(s[a])
			for c := range y {
				y[c] = vadd(y[c], bias)
			}
			zpStoreRows(lbl, "y", gM, a, zpMerge(y, perm), colK)
		}
	}
	zpLoop(gM, thM, lbl("g"))
	build.VZEROUPPER()
	build.RET()
}

// outT4zp: per group, the row transform of image rows 16g + 4k + a, split
// into their column phases, then the column transforms; the 24 vectors
// between the two stay in registers (the AVX2 kernel, with half as many,
// passes them through tmp).
func outT4zp() {
	name := "outT4zp"
	header(name, "dm []float32, ldm int, dy []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" is outT4 for planes with four tiles per tile row, four tile rows per zmm; it uses no tmp.")
	lbl := func(s string) string { return name + "_" + s }
	gM := local()
	thM := zpThM()
	colK, perm := zpBegin()
	build.MOVQ(operand.U32(0), gM)
	build.Label(lbl("g"))
	var r [4][6]reg.VecVirtual
	for a := 0; a < 4; a++ {
		q := [4]reg.VecVirtual{}
		for k := range q {
			q[k] = zpZero()
			skip := lbl(fmt.Sprintf("lr%d_%d", a, k))
			build.VMOVUPS_Z(zpRow("dy", gM, a+4*k, skip), colK, q[k])
			build.Label(skip)
		}
		a6all(zpSplit(q, perm), func(j int, v reg.VecVirtual) { r[a][j] = v })
	}
	rowK := zpRowK(lbl, gM, thM)
	ld := param("ldm")
	build.SHLQ(operand.U8(2), ld)
	at := zpRows(ld)
	dp := zpGroup("dm", gM)
	for j := 0; j < 6; j++ {
		var y [4]reg.VecVirtual
		for a := range y {
			y[a] = r[a][j]
		}
		a6all(y, func(i int, v reg.VecVirtual) {
			build.VMOVUPS(v, rowK, at(dp, i))
		})
		if j < 5 {
			build.ADDQ(ld, dp)
		}
	}
	zpLoop(gM, thM, lbl("g"))
	build.VZEROUPPER()
	build.RET()
}

// inT4zp: per group g of tile rows 4g…4g+3 that holds tiles, the column
// transform of dV into Q (36 zmm in tmp), then the row transforms. Patch rows 4 and 5 go first: the carry
// into tile row 4g+k is their quarter k−1, and for k = 0 the previous
// group's quarter 3 (C, 12 × 4 floats after Q), which VALIGND brings in;
// the carries wait in Q's rows 4 and 5, read by then. Rows 0…3 then add
// the carry (rows 0 and 1), their neighbours' outer columns and go to
// image rows 16g + 4k + i − 1.
func inT4zp() {
	name := "inT4zp"
	header(name, "dx, dv []float32, ldv, h, w, tw int, mask []int32, tmp []float32",
		name+" is inT4 for planes with four tiles per tile row, four tile rows per zmm; tmp holds 36 zmm and 12 xmm.")
	lbl := func(s string) string { return name + "_" + s }
	const cOff = 36 * 64
	gM := local()
	thM := zpThM()
	colK, perm := zpBegin()
	{
		tp := base("tmp")
		z := zpZero()
		for k := 0; k < 3; k++ {
			build.VMOVUPS(z, mem(tp, cOff+64*k))
		}
	}
	build.MOVQ(operand.U32(0), gM)
	build.Label(lbl("g"))
	rowK := zpRowK(lbl, gM, thM)
	ld := param("ldv")
	build.SHLQ(operand.U8(2), ld)
	at := zpRows(ld)
	// Tile row th, past the last, reads dV = 0 (see inT4Go); the
	// group's lanes of it are masked off like those of any tile row past
	// the last.
	p := zpGroup("dv", gM)
	tp := base("tmp")
	for s := 0; s < 6; s++ {
		var d [6]reg.VecVirtual
		for i := range d {
			d[i] = build.ZMM()
			build.VMOVUPS_Z(at(p, i), rowK, d[i])
		}
		b6all(d, func(i int, v reg.VecVirtual) {
			build.VMOVUPS(v, mem(tp, 64*(6*i+s)))
		})
		if s < 5 {
			build.ADDQ(ld, p)
		}
	}
	rowQ := func(i int) [6]reg.VecVirtual {
		var q [6]reg.VecVirtual
		for s := range q {
			q[s] = zload(mem(tp, 64*(6*i+s)))
		}
		return q
	}
	for i := 4; i < 6; i++ {
		b6all(rowQ(i), func(j int, v reg.VecVirtual) {
			c := mem(tp, cOff+16*(6*(i-4)+j))
			prev, k := build.ZMM(), build.ZMM()
			build.VBROADCASTF32X4(c, prev)
			build.VALIGND(operand.U8(12), prev, v, k)
			build.VEXTRACTF32X4(operand.U8(3), v, c)
			build.VMOVUPS(k, mem(tp, 64*(6*i+j)))
		})
	}
	for i := 0; i < 4; i++ {
		var sv [6]reg.VecVirtual
		b6all(rowQ(i), func(j int, v reg.VecVirtual) {
			if i < 2 {
				v = vadd(v, zload(mem(tp, 64*(6*(i+4)+j))))
			}
			sv[j] = v
		})
		sh5, sh0 := build.ZMM(), build.ZMM()
		build.VPSLLDQ(operand.U8(4), sv[5], sh5)
		build.VPSRLDQ(operand.U8(4), sv[0], sh0)
		// Column 4t: tile t's j=1 + tile t−1's j=5; 4t+3: tile t's
		// j=4 + tile t+1's j=0.
		y := [4]reg.VecVirtual{vadd(sv[1], sh5), sv[2], sv[3], vadd(sv[4], sh0)}
		zpStoreRows(lbl, "dx", gM, i-1, zpMerge(y, perm), colK)
	}
	zpLoop(gM, thM, lbl("g"))

	// Where th is a multiple of four no group holds tile row th. Its
	// patches reach image row 4th−1 alone, which lies in the plane where
	// h = 4th: row 0 of the patch of dV = 0 (the same for every tile,
	// b6 of zeros twice over, the column pass giving +0 in row 0) plus
	// the carry, the last group's quarter 3 of rows 4, in quarter 0.
	t := build.GP64()
	build.MOVQ(thM, t)
	build.ANDQ(operand.U8(3), t)
	build.JNZ(operand.LabelRef(lbl("done")))
	t = param("h")
	build.ANDQ(operand.U8(3), t)
	build.JNZ(operand.LabelRef(lbl("done")))
	{
		tp := base("tmp")
		var z, sv [6]reg.VecVirtual
		for i := range z {
			z[i] = zpZero()
		}
		b6all(z, func(j int, v reg.VecVirtual) {
			k := build.ZMM()
			build.VBROADCASTF32X4(mem(tp, cOff+16*j), k)
			sv[j] = vadd(v, k)
		})
		sh5, sh0 := build.ZMM(), build.ZMM()
		build.VPSLLDQ(operand.U8(4), sv[5], sh5)
		build.VPSRLDQ(operand.U8(4), sv[0], sh0)
		y := [4]reg.VecVirtual{vadd(sv[1], sh5), sv[2], sv[3], vadd(sv[4], sh0)}
		o := zpMerge(y, perm)
		r := param("h")
		build.DECQ(r)
		build.IMULQ(addr("w"), r)
		build.VMOVUPS(o[0], colK, memi(base("dx"), r, 4, 0))
	}
	build.Label(lbl("done"))
	build.VZEROUPPER()
	build.RET()
}
