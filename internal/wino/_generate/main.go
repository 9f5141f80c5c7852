// Command _generate writes the AVX2 tile transforms of package wino with
// avo. It lives in its own module so that the main module does not depend on
// avo. Run through `go generate` in the wino directory.
//
// Each kernel handles one plane and works on eight tiles of a tile row at a
// time, one tile per ymm lane. The tiles' columns are two pixels apart, so
// rows of the plane are split into even and odd columns in registers
// (VSHUFPS + VPERMPD) on the way in and merged again (VUNPCK + VPERM2F128)
// on the way out. Pixels outside the plane come from masked loads and
// stores (VMASKMOVPS, which does not fault on masked-off lanes), with masks
// the Go side computes once per plane size. The arithmetic is additions,
// subtractions and sign flips only, in the order of the pure-Go twins, so
// the two agree bit for bit.
package main

import (
	"fmt"
	"os"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

var signTbl operand.Mem

// sets holds the kernel files besides the base one (wino_amd64.s), each
// generated on its own with -set NAME so that its assembly and stubs live
// in files of their own; a set's file registers its emitter in an init.
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
	signTbl = build.GLOBL("signbit", attr.RODATA|attr.NOPTR)
	for i := 0; i < 8; i++ {
		build.DATA(4*i, operand.U32(0x80000000))
	}
	globals4()
	in()
	out()
	outT()
	inT()
	in4()
	out4()
	outT4()
	inT4()
	in4p()
	out4p()
	outT4p()
	inT4p()
	build.Generate()
}

func header(name, sig string, doc ...string) {
	build.TEXT(name, attr.NOSPLIT, "func("+sig+")")
	build.Pragma("noescape")
	twin := name
	if t, ok := sharedTwins[name]; ok {
		twin = t
	}
	doc[len(doc)-1] += fmt.Sprintf(" Its pure-Go twin is %sGo.", twin)
	build.Doc(doc...)
}

// addr is the stack address of an argument.
func addr(name string) operand.Mem {
	b, err := build.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// addConst adds k ∈ {−1, 0, 1, 2} to r.
func addConst(r reg.GPVirtual, k int) {
	switch {
	case k < 0:
		build.DECQ(r)
	case k > 0:
		build.ADDQ(operand.U8(uint8(k)), r)
	}
}

func param(name string) reg.GPVirtual {
	r := build.GP64()
	build.Load(build.Param(name), r)
	return r
}

func base(name string) reg.GPVirtual {
	r := build.GP64()
	build.Load(build.Param(name).Base(), r)
	return r
}

func mem(b reg.GPVirtual, disp int) operand.Mem { return operand.Mem{Base: b, Disp: disp} }

func memi(b, idx reg.GPVirtual, scale uint8, disp int) operand.Mem {
	return operand.Mem{Base: b, Index: idx, Scale: scale, Disp: disp}
}

func ymm() reg.VecVirtual { return build.YMM() }

func load(m operand.Mem) reg.VecVirtual {
	y := ymm()
	build.VMOVUPS(m, y)
	return y
}

func maskLoad(m operand.Mem, mask reg.VecVirtual) reg.VecVirtual {
	y := ymm()
	build.VMASKMOVPS(m, mask, y)
	return y
}

func add(a, b reg.VecVirtual) reg.VecVirtual {
	y := ymm()
	build.VADDPS(b, a, y)
	return y
}

func sub(a, b reg.VecVirtual) reg.VecVirtual {
	y := ymm()
	build.VSUBPS(b, a, y)
	return y
}

func neg(a, sign reg.VecVirtual) reg.VecVirtual {
	y := ymm()
	build.VXORPS(sign, a, y)
	return y
}

func zero() reg.VecVirtual {
	y := ymm()
	build.VXORPS(y, y, y)
	return y
}

// deint splits the 16 consecutive floats lo, hi into their even and odd
// elements, each in order.
func deint(lo, hi reg.VecVirtual) (ev, od reg.VecVirtual) {
	ev, od = ymm(), ymm()
	build.VSHUFPS(operand.U8(0x88), hi, lo, ev)
	build.VSHUFPS(operand.U8(0xDD), hi, lo, od)
	build.VPERMPD(operand.U8(0xD8), ev, ev)
	build.VPERMPD(operand.U8(0xD8), od, od)
	return ev, od
}

// inter merges ev and od into the 16 consecutive floats ev0 od0 ev1 od1 …
func inter(ev, od reg.VecVirtual) (lo, hi reg.VecVirtual) {
	l, h := ymm(), ymm()
	build.VUNPCKLPS(od, ev, l)
	build.VUNPCKHPS(od, ev, h)
	lo, hi = ymm(), ymm()
	build.VPERM2F128(operand.U8(0x20), h, l, lo)
	build.VPERM2F128(operand.U8(0x31), h, l, hi)
	return lo, hi
}

// local is an 8-byte stack slot.
func local() operand.Mem { return build.AllocLocal(8) }

// tileRowMask emits, for the adjoint input transforms, the byte offset of
// tile row ty's dV into offM and an all-ones row mask into rowMask; the
// extra tile row th has no tiles, so it reads as zero through an all-zero
// mask over tile row 0's memory.
func tileRowMask(lbl func(string) string, tyM, thM, offM, rowMask operand.Mem) {
	t := build.GP64()
	build.MOVQ(tyM, t)
	build.IMULQ(addr("tw"), t)
	build.SHLQ(operand.U8(2), t)
	allOnes := ymm()
	build.VPCMPEQD(allOnes, allOnes, allOnes)
	u := build.GP64()
	build.MOVQ(tyM, u)
	build.CMPQ(u, thM)
	build.JL(operand.LabelRef(lbl("rowok")))
	build.XORQ(t, t)
	build.VPXOR(allOnes, allOnes, allOnes)
	build.Label(lbl("rowok"))
	build.MOVQ(t, offM)
	build.VMOVUPS(allOnes, rowMask)
}

// zeroPadRows emits the loop that zeroes the rows of tmp a tile reads past
// the plane: image row −1 (tmp row 0) and rows h … th<<shift (tmp rows
// h+1 … (th<<shift)+1), th being the tile rows and 1<<shift the output
// tile size; rowBM holds a tmp row's length in bytes and rM is scratch.
// It ends by jumping to lbl("split").
func zeroPadRows(lbl func(string) string, z reg.VecVirtual, rowBM, thM, rM operand.Mem, shift uint8) {
	zeroRow := func(row reg.GPVirtual, l string) {
		n := build.GP64()
		build.MOVQ(rowBM, n)
		p := base("tmp")
		build.IMULQ(n, row)
		build.ADDQ(row, p)
		build.Label(l)
		build.SUBQ(operand.U8(32), n)
		build.VMOVUPS(z, memi(p, n, 1, 0))
		build.JNZ(operand.LabelRef(l))
	}
	t := build.GP64()
	build.XORQ(t, t)
	zeroRow(t, lbl("z0"))
	t = param("h")
	build.INCQ(t)
	build.MOVQ(t, rM)
	build.Label(lbl("zrows"))
	t = build.GP64()
	build.MOVQ(rM, t)
	u := build.GP64()
	build.MOVQ(thM, u)
	build.SHLQ(operand.U8(shift), u)
	build.INCQ(u)
	build.CMPQ(t, u)
	build.JG(operand.LabelRef(lbl("split")))
	zeroRow(t, lbl("z1"))
	build.INCQ(rM)
	build.JMP(operand.LabelRef(lbl("zrows")))
}

// in: V = Bᵀ d B. The plane's rows are first split into even and odd
// columns in tmp (row r at (r+1)·2L floats: E[k] = x[2k], then O[k] =
// x[2k−1], L = 8·nb + 8, zeros outside the plane), so that the four columns
// of eight tiles are plain loads E[tx], O[tx], E[tx+1], O[tx+1]. The column
// transform then runs on them, one output row k at a time.
func in() {
	name := "in"
	header(name, "v []float32, ldv int, x []float32, h, w, tw int, mask []int32, tmp []float32",
		name+" writes V = Bᵀ d B of every tile of the h×w plane x, tile (ty, tx) of row ξ at v[ξ·ldv + ty·tw + tx],",
		"in whole blocks of eight tiles, using tmp for the plane split into even and odd columns (see inGo).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM, rowBM, rM := local(), local(), local(), local(), local(), local()

	t := param("h")
	build.INCQ(t)
	build.SHRQ(operand.U8(1), t)
	build.MOVQ(t, thM)
	t = param("tw")
	build.ADDQ(operand.U8(7), t)
	build.SHRQ(operand.U8(3), t)
	build.MOVQ(t, nbM)
	// Row of tmp in bytes: 2·4·(8·nb + 8) = 64·(nb + 1).
	build.INCQ(t)
	build.SHLQ(operand.U8(6), t)
	build.MOVQ(t, rowBM)
	z := zero()

	zeroPadRows(lbl, z, rowBM, thM, rM, 1)

	// Split rows 0 … h−1.
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
		dO := build.GP64() // O's row: dst + 4·L = dst + rowB/2
		build.MOVQ(rowBM, dO)
		build.SHRQ(operand.U8(1), dO)
		build.ADDQ(dst, dO)
		build.VMOVUPS(z, mem(dO, 0))
		e := build.GP64() // E[8·nb]
		build.MOVQ(nbM, e)
		build.SHLQ(operand.U8(5), e)
		build.VMOVUPS(z, memi(dst, e, 1, 0))
		mp := base("mask")
		col := build.GP64()
		build.XORQ(col, col)
		cnt := build.GP64()
		build.MOVQ(nbM, cnt)
		build.Label(lbl("sblk"))
		mk0 := load(mem(mp, 0))
		lo := maskLoad(mem(src, 0), mk0)
		// The upper half only where it holds columns of the plane: a
		// masked load whose masked-off lanes cross into another page costs
		// a microcode assist.
		hi := zero()
		t = build.GP64()
		build.LEAQ(operand.Mem{Base: col, Disp: 8}, t)
		build.CMPQ(t, addr("w"))
		build.JGE(operand.LabelRef(lbl("shalf")))
		mk1 := load(mem(mp, 32))
		build.VMASKMOVPS(mem(src, 32), mk1, hi)
		build.Label(lbl("shalf"))
		ev, od := deint(lo, hi)
		build.VMOVUPS(ev, mem(dst, 0))
		build.VMOVUPS(od, mem(dO, 4))
		build.ADDQ(operand.U8(64), src)
		build.ADDQ(operand.U8(64), mp)
		build.ADDQ(operand.U8(32), dst)
		build.ADDQ(operand.U8(32), dO)
		build.ADDQ(operand.U8(16), col)
		build.DECQ(cnt)
		build.JNZ(operand.LabelRef(lbl("sblk")))
	}
	build.INCQ(rM)
	t = build.GP64()
	build.MOVQ(rM, t)
	build.CMPQ(t, addr("h"))
	build.JL(operand.LabelRef(lbl("srow")))

	build.MOVQ(operand.U32(0), tyM)
	build.Label(lbl("ty"))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("b"))
	{
		rowB := build.GP64()
		build.MOVQ(rowBM, rowB)
		rowB3 := build.GP64()
		build.LEAQ(memi(rowB, rowB, 2, 0), rowB3)
		// E of the tile row's first input row (tmp row 2·ty) at block b, and O.
		bE := base("tmp")
		t := build.GP64()
		build.MOVQ(tyM, t)
		build.SHLQ(operand.U8(1), t)
		build.IMULQ(rowB, t)
		build.ADDQ(t, bE)
		t = build.GP64()
		build.MOVQ(bM, t)
		build.SHLQ(operand.U8(5), t)
		build.ADDQ(t, bE)
		bO := build.GP64()
		build.MOVQ(rowB, bO)
		build.SHRQ(operand.U8(1), bO)
		build.ADDQ(bE, bO)
		rowAt := func(bp reg.GPVirtual, i, disp int) operand.Mem {
			switch i {
			case 0:
				return mem(bp, disp)
			case 3:
				return memi(bp, rowB3, 1, disp)
			}
			return memi(bp, rowB, uint8(i), disp)
		}
		// Tile columns 0…3: O[tx], E[tx], O[tx+1], E[tx+1].
		cols := [4]struct {
			bp   reg.GPVirtual
			disp int
		}{{bO, 0}, {bE, 0}, {bO, 4}, {bE, 4}}
		ld := param("ldv")
		build.SHLQ(operand.U8(2), ld)
		ld3 := build.GP64()
		build.LEAQ(memi(ld, ld, 2, 0), ld3)
		p := base("v")
		t = build.GP64()
		build.MOVQ(tyM, t)
		build.IMULQ(addr("tw"), t)
		u := build.GP64()
		build.MOVQ(bM, u)
		build.SHLQ(operand.U8(3), u)
		build.ADDQ(u, t)
		build.LEAQ(memi(p, t, 4, 0), p)
		for k, rows := range [4][2]int{{0, 2}, {1, 2}, {2, 1}, {1, 3}} {
			var sv [4]reg.VecVirtual
			for c, cp := range cols {
				a, b := load(rowAt(cp.bp, rows[0], cp.disp)), load(rowAt(cp.bp, rows[1], cp.disp))
				if k == 1 {
					sv[c] = add(a, b)
				} else {
					sv[c] = sub(a, b)
				}
			}
			build.VMOVUPS(sub(sv[0], sv[2]), mem(p, 0))
			build.VMOVUPS(add(sv[1], sv[2]), memi(p, ld, 1, 0))
			build.VMOVUPS(sub(sv[2], sv[1]), memi(p, ld, 2, 0))
			build.VMOVUPS(sub(sv[1], sv[3]), memi(p, ld3, 1, 0))
			if k < 3 {
				build.LEAQ(memi(p, ld, 4, 0), p)
			}
		}
	}
	loopEnd(bM, nbM, lbl("b"), false)
	loopEnd(tyM, thM, lbl("ty"), false)
	build.VZEROUPPER()
	build.RET()
}

// out: Y = Aᵀ M A + bias, accumulated over the four rows i of each tile's
// M, then merged into two image rows and stored under the column masks.
func out() {
	name := "out"
	header(name, "y, m []float32, ldm, h, w, tw int, bias float32, mask []int32",
		name+" writes Y = Aᵀ M A + bias of every tile into the h×w plane y, M's row ξ at m[ξ·ldm:].")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM := local(), local(), local(), local()

	t := param("h")
	build.INCQ(t)
	build.SHRQ(operand.U8(1), t)
	build.MOVQ(t, thM)
	t = param("tw")
	build.ADDQ(operand.U8(7), t)
	build.SHRQ(operand.U8(3), t)
	build.MOVQ(t, nbM)
	build.MOVQ(operand.U32(0), tyM)
	bias := ymm()
	build.VBROADCASTSS(addr("bias"), bias)

	build.Label(lbl("ty"))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("b"))
	// M's block: m + 4·(ty·tw + 8b).
	q := base("m")
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.IMULQ(addr("tw"), t)
	b := build.GP64()
	build.MOVQ(bM, b)
	build.SHLQ(operand.U8(3), b)
	build.ADDQ(b, t)
	build.LEAQ(memi(q, t, 4, 0), q)
	ld := param("ldm")
	build.SHLQ(operand.U8(2), ld)
	var y [2][2]reg.VecVirtual
	for i := 0; i < 4; i++ {
		var x [4]reg.VecVirtual
		for j := range x {
			x[j] = load(mem(q, 0))
			if i < 3 || j < 3 {
				build.ADDQ(ld, q)
			}
		}
		p := [2]reg.VecVirtual{add(add(x[0], x[1]), x[2]), sub(sub(x[1], x[2]), x[3])}
		for c := 0; c < 2; c++ {
			switch i {
			case 0:
				y[0][c] = p[c]
			case 1:
				y[0][c] = add(y[0][c], p[c])
				y[1][c] = p[c]
			case 2:
				y[0][c] = add(y[0][c], p[c])
				y[1][c] = sub(y[1][c], p[c])
			case 3:
				y[1][c] = sub(y[1][c], p[c])
			}
		}
	}
	mp := base("mask")
	mo := build.GP64()
	build.MOVQ(bM, mo)
	build.SHLQ(operand.U8(6), mo)
	mk0, mk1 := load(memi(mp, mo, 1, 0)), load(memi(mp, mo, 1, 32))
	// Row 2ty at y + 4·(2ty·w + 16b).
	yp := base("y")
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.SHLQ(operand.U8(1), t)
	build.IMULQ(addr("w"), t)
	b = build.GP64()
	build.MOVQ(bM, b)
	build.SHLQ(operand.U8(4), b)
	build.ADDQ(b, t)
	build.LEAQ(memi(yp, t, 4, 0), yp)
	for a := 0; a < 2; a++ {
		if a == 1 {
			t = build.GP64()
			build.MOVQ(tyM, t)
			build.SHLQ(operand.U8(1), t)
			build.INCQ(t)
			build.CMPQ(t, addr("h"))
			build.JGE(operand.LabelRef(lbl("next")))
			w := param("w")
			build.LEAQ(memi(yp, w, 4, 0), yp)
		}
		lo, hi := inter(add(y[a][0], bias), add(y[a][1], bias))
		build.VMASKMOVPS(lo, mk0, mem(yp, 0))
		// The upper half only where it holds columns of the plane: a
		// masked store whose masked-off lanes cross into another page
		// costs a microcode assist.
		half := fmt.Sprintf("%s_half%d", name, a)
		t = build.GP64()
		build.MOVQ(bM, t)
		build.SHLQ(operand.U8(4), t)
		build.ADDQ(operand.U8(8), t)
		build.CMPQ(t, addr("w"))
		build.JGE(operand.LabelRef(half))
		build.VMASKMOVPS(hi, mk1, mem(yp, 32))
		build.Label(half)
	}
	build.Label(lbl("next"))
	loopEnd(bM, nbM, lbl("b"), false)
	loopEnd(tyM, thM, lbl("ty"), false)
	build.VZEROUPPER()
	build.RET()
}

// outT: dM = A dY Aᵀ, the two image rows of a tile row read under the
// column masks (the second as zeros past the plane's last row).
func outT() {
	name := "outT"
	header(name, "dm []float32, ldm int, dy []float32, h, w, tw int, mask []int32",
		name+" writes dM = A dY Aᵀ of every tile of the h×w plane dy, tile (ty, tx) of row ξ at dm[ξ·ldm + ty·tw + tx],",
		"in whole blocks of eight tiles (see outTGo).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM := local(), local(), local(), local()

	t := param("h")
	build.INCQ(t)
	build.SHRQ(operand.U8(1), t)
	build.MOVQ(t, thM)
	t = param("tw")
	build.ADDQ(operand.U8(7), t)
	build.SHRQ(operand.U8(3), t)
	build.MOVQ(t, nbM)
	build.MOVQ(operand.U32(0), tyM)
	sign := load(signTbl)

	build.Label(lbl("ty"))
	build.MOVQ(operand.U32(0), bM)
	build.Label(lbl("b"))
	mp := base("mask")
	mo := build.GP64()
	build.MOVQ(bM, mo)
	build.SHLQ(operand.U8(6), mo)
	mk0, mk1 := load(memi(mp, mo, 1, 0)), load(memi(mp, mo, 1, 32))
	yp := base("dy")
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.SHLQ(operand.U8(1), t)
	build.IMULQ(addr("w"), t)
	b := build.GP64()
	build.MOVQ(bM, b)
	build.SHLQ(operand.U8(4), b)
	build.ADDQ(b, t)
	build.LEAQ(memi(yp, t, 4, 0), yp)
	// Upper halves only where they hold columns of the plane (see out).
	hiOK := build.GP64()
	build.MOVQ(bM, hiOK)
	build.SHLQ(operand.U8(4), hiOK)
	build.ADDQ(operand.U8(8), hiOK)
	build.SUBQ(addr("w"), hiOK) // < 0 where the upper half is needed
	hi0 := zero()
	build.CMPQ(hiOK, operand.U8(0))
	build.JGE(operand.LabelRef(lbl("h0")))
	build.VMASKMOVPS(mem(yp, 32), mk1, hi0)
	build.Label(lbl("h0"))
	d00, d01 := deint(maskLoad(mem(yp, 0), mk0), hi0)
	d10, d11 := zero(), zero()
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.SHLQ(operand.U8(1), t)
	build.INCQ(t)
	build.CMPQ(t, addr("h"))
	build.JGE(operand.LabelRef(lbl("row1")))
	w := param("w")
	build.LEAQ(memi(yp, w, 4, 0), yp)
	hi1 := zero()
	build.CMPQ(hiOK, operand.U8(0))
	build.JGE(operand.LabelRef(lbl("h1")))
	build.VMASKMOVPS(mem(yp, 32), mk1, hi1)
	build.Label(lbl("h1"))
	e, o := deint(maskLoad(mem(yp, 0), mk0), hi1)
	build.VMOVAPS(e, d10)
	build.VMOVAPS(o, d11)
	build.Label(lbl("row1"))
	r0 := [4]reg.VecVirtual{d00, add(d00, d01), sub(d00, d01), neg(d01, sign)}
	r1 := [4]reg.VecVirtual{d10, add(d10, d11), sub(d10, d11), neg(d11, sign)}

	dp := base("dm")
	t = build.GP64()
	build.MOVQ(tyM, t)
	build.IMULQ(addr("tw"), t)
	b = build.GP64()
	build.MOVQ(bM, b)
	build.SHLQ(operand.U8(3), b)
	build.ADDQ(b, t)
	build.LEAQ(memi(dp, t, 4, 0), dp)
	ld := param("ldm")
	build.SHLQ(operand.U8(2), ld)
	ld4 := build.GP64()
	build.MOVQ(ld, ld4)
	build.SHLQ(operand.U8(2), ld4)
	ld12 := build.GP64()
	build.LEAQ(memi(ld4, ld4, 2, 0), ld12)
	for j := 0; j < 4; j++ {
		build.VMOVUPS(r0[j], mem(dp, 0))
		build.VMOVUPS(add(r0[j], r1[j]), memi(dp, ld4, 1, 0))
		build.VMOVUPS(sub(r0[j], r1[j]), memi(dp, ld4, 2, 0))
		build.VMOVUPS(neg(r1[j], sign), memi(dp, ld12, 1, 0))
		if j < 3 {
			build.ADDQ(ld, dp)
		}
	}
	loopEnd(bM, nbM, lbl("b"), false)
	loopEnd(tyM, thM, lbl("ty"), false)
	build.VZEROUPPER()
	build.RET()
}

// inT: dX = Σ B dV Bᵀ overlap-added, in the two passes per tile row that
// inTGo describes. tmp holds S (2×4 rows of sl floats, each after a leading
// zero), C (2×4 rows of sl) and the 16 vectors of Q, sl = 8·nb + 8.
func inT() {
	name := "inT"
	header(name, "dx, dv []float32, ldv, h, w, tw int, mask []int32, tmp []float32",
		name+" writes into the h×w plane dx the overlap-added B dV Bᵀ of every tile, dV's row ξ at dv[ξ·ldv:];",
		"tmp is scratch (see inTGo).")
	lbl := func(s string) string { return name + "_" + s }
	tyM, thM, nbM, bM, slM, offM := local(), local(), local(), local(), local(), local()
	rowMask := build.AllocLocal(32)

	t := param("h")
	build.INCQ(t)
	build.SHRQ(operand.U8(1), t)
	build.MOVQ(t, thM)
	t = param("tw")
	build.ADDQ(operand.U8(7), t)
	build.SHRQ(operand.U8(3), t)
	build.MOVQ(t, nbM)
	// sl in bytes: 4·(8·nb + 8).
	build.INCQ(t)
	build.SHLQ(operand.U8(5), t)
	build.MOVQ(t, slM)
	// Clear S and C: 16·sl bytes, a multiple of 32.
	tp := base("tmp")
	n := build.GP64()
	build.MOVQ(t, n)
	build.SHLQ(operand.U8(4), n)
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
		sign := load(signTbl)
		mp := base("mask")
		b := build.GP64()
		build.MOVQ(bM, b)
		build.IMUL3Q(operand.U32(96), b, b)
		tm := ymm()
		build.VANDPS(memi(mp, b, 1, 0), load(rowMask), tm)
		ld := param("ldv")
		build.SHLQ(operand.U8(2), ld)
		ld4 := build.GP64()
		build.MOVQ(ld, ld4)
		build.SHLQ(operand.U8(2), ld4)
		ld12 := build.GP64()
		build.LEAQ(memi(ld4, ld4, 2, 0), ld12)
		p := base("dv")
		build.ADDQ(offM, p)
		b = build.GP64()
		build.MOVQ(bM, b)
		build.SHLQ(operand.U8(5), b)
		build.ADDQ(b, p)
		tp := base("tmp")
		qb := build.GP64()
		build.MOVQ(slM, qb)
		build.SHLQ(operand.U8(4), qb)
		build.ADDQ(tp, qb) // Q after S and C
		for s := 0; s < 4; s++ {
			var d [4]reg.VecVirtual
			for r, m := range []operand.Mem{mem(p, 0), memi(p, ld4, 1, 0), memi(p, ld4, 2, 0), memi(p, ld12, 1, 0)} {
				d[r] = ymm()
				build.VANDPS(m, tm, d[r])
			}
			q := [4]reg.VecVirtual{d[0], add(sub(d[1], d[2]), d[3]), sub(add(d[1], d[2]), d[0]), neg(d[3], sign)}
			for i := range q {
				build.VMOVUPS(q[i], mem(qb, 32*(4*i+s)))
			}
			if s < 3 {
				build.ADDQ(ld, p)
			}
		}
		// S row (i, j) at tp + (4i+j)·sl + 4 + 32b, C row at tp + (8+4i+j)·sl + 32b.
		sl := build.GP64()
		build.MOVQ(slM, sl)
		bo := build.GP64()
		build.MOVQ(bM, bo)
		build.SHLQ(operand.U8(5), bo)
		build.ADDQ(bo, tp)
		for i := 0; i < 4; i++ {
			var q [4]reg.VecVirtual
			for s := range q {
				q[s] = load(mem(qb, 32*(4*i+s)))
			}
			pv := [4]reg.VecVirtual{q[0], add(sub(q[1], q[2]), q[3]), sub(add(q[1], q[2]), q[0]), neg(q[3], sign)}
			for j := 0; j < 4; j++ {
				row := build.GP64()
				if i < 2 {
					build.IMUL3Q(operand.U32(uint32(8+4*i+j)), sl, row)
					r := add(pv[j], load(memi(tp, row, 1, 0)))
					build.IMUL3Q(operand.U32(uint32(4*i+j)), sl, row)
					build.VMOVUPS(r, memi(tp, row, 1, 4))
				} else {
					build.IMUL3Q(operand.U32(uint32(8+4*(i-2)+j)), sl, row)
					build.VMOVUPS(pv[j], memi(tp, row, 1, 0))
				}
			}
		}
	}
	loopEnd(bM, nbM, lbl("p1"), false)

	for i := 0; i < 2; i++ {
		skip := fmt.Sprintf("%s_skip%d", name, i)
		r := build.GP64()
		build.MOVQ(tyM, r)
		build.SHLQ(operand.U8(1), r)
		addConst(r, i-1)
		build.CMPQ(r, operand.U8(0))
		build.JL(operand.LabelRef(skip))
		build.CMPQ(r, addr("h"))
		build.JGE(operand.LabelRef(skip))
		build.MOVQ(operand.U32(0), bM)
		loop := fmt.Sprintf("%s_p2_%d", name, i)
		half := fmt.Sprintf("%s_half%d", name, i)
		build.Label(loop)
		{
			// Row r at dx + 4·(r·w + 16b).
			dp := base("dx")
			t := build.GP64()
			build.MOVQ(r, t)
			build.IMULQ(addr("w"), t)
			b := build.GP64()
			build.MOVQ(bM, b)
			build.SHLQ(operand.U8(4), b)
			build.ADDQ(b, t)
			build.LEAQ(memi(dp, t, 4, 0), dp)
			tp := base("tmp")
			b = build.GP64()
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
			// Column 2k: tile k's j=1 + tile k−1's j=3; column 2k+1: tile
			// k's j=2 + tile k+1's j=0.
			ev := add(load(rowAt(4*i+1, 4)), load(rowAt(4*i+3, 0)))
			od := add(load(rowAt(4*i+2, 4)), load(rowAt(4*i, 8)))
			lo, hi := inter(ev, od)
			mp := base("mask")
			mo := build.GP64()
			build.MOVQ(bM, mo)
			build.IMUL3Q(operand.U32(96), mo, mo)
			build.VMASKMOVPS(lo, load(memi(mp, mo, 1, 32)), mem(dp, 0))
			t = build.GP64()
			build.MOVQ(bM, t)
			build.SHLQ(operand.U8(4), t)
			build.ADDQ(operand.U8(8), t)
			build.CMPQ(t, addr("w"))
			build.JGE(operand.LabelRef(half))
			build.VMASKMOVPS(hi, load(memi(mp, mo, 1, 64)), mem(dp, 32))
		}
		build.Label(half)
		build.INCQ(bM)
		t := build.GP64()
		build.MOVQ(bM, t)
		build.CMPQ(t, nbM)
		build.JL(operand.LabelRef(loop))
		build.Label(skip)
	}
	loopEnd(tyM, thM, lbl("ty"), true)
	build.VZEROUPPER()
	build.RET()
}
