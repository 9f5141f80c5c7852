package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// zs are the zmm registers the AVX-512 kernels may use for accumulators;
// Z28..Z31 hold B vectors, broadcasts and the epilogue's alpha and beta.
var zs = []reg.VecPhysical{
	reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
	reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
	reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
	reg.Z24, reg.Z25, reg.Z26, reg.Z27,
}

// kernel512 emits a rows×(16*nvec) AVX-512 micro-kernel with the contract of
// kernelFunc. A one-vector tile multiplies with the A value straight from
// memory ({1to16} embedded broadcast), which costs no register and no
// separate load µop; a two-vector tile broadcasts each A value once into a
// register and uses it twice. Ragged widths are stored through K masks; a
// masked-off lane is neither read nor written, nor can it fault.
func kernel512(name string, rows, nvec int) {
	bw := 16 * nvec
	build.TEXT(name, attr.NOSPLIT, signature)
	build.Pragma("noescape")
	article := "a"
	if rows == 8 {
		article = "an"
	}
	build.Doc(
		fmt.Sprintf("%s updates %s %d×%d tile of C with AVX-512, see kernelFunc; its pure-Go twin is %sGo.", name, article, rows, bw, name),
		"Rows past h and columns past w are computed but never stored.",
	)

	// Two FMA ports with four cycles of latency need eight independent
	// accumulators, and more ride out the odd late load (the 8×16 kernel
	// went from 0.84 to 0.89 of 8×32 in L1 with 16); short tiles keep
	// several sets, each taking every sets-th K step, summed at the end.
	sets := 1
	for rows*nvec*sets < 12 {
		sets *= 2
	}
	acc := make([][][]reg.VecPhysical, sets)
	n := 0
	for s := range acc {
		acc[s] = make([][]reg.VecPhysical, rows)
		for i := range acc[s] {
			acc[s][i] = make([]reg.VecPhysical, nvec)
			for v := range acc[s][i] {
				acc[s][i][v] = zs[n]
				n++
			}
		}
	}
	if n > len(zs) {
		panic(name + ": too many accumulators")
	}
	bVec := []reg.VecPhysical{reg.Z28, reg.Z29}
	bcast := []reg.VecPhysical{reg.Z30, reg.Z31}

	// A rows hang off one base per four rows: base, base+rs, base+2rs,
	// base+3rs cover them with the two index registers rs and 3rs.
	var (
		rs, rs3, cs = reg.R8, reg.R9, reg.R13
		bases       = []reg.GPPhysical{reg.RSI, reg.R10, reg.R11, reg.R12}[:(rows+3)/4]
	)
	build.Load(build.Param("k"), kCount)
	build.Load(build.Param("a").Base(), bases[0])
	build.Load(build.Param("rs"), rs)
	build.Load(build.Param("cs"), cs)
	build.Load(build.Param("b").Base(), bPtr)
	build.Load(build.Param("ldb"), ldbB)
	build.SHLQ(operand.U8(2), rs)
	build.SHLQ(operand.U8(2), cs)
	build.SHLQ(operand.U8(2), ldbB)
	build.LEAQ(operand.Mem{Base: rs, Index: rs, Scale: 2}, rs3)
	for g := 1; g < len(bases); g++ {
		build.LEAQ(operand.Mem{Base: bases[g-1], Index: rs, Scale: 4}, bases[g])
	}
	build.LEAQ(operand.Mem{Base: bPtr, Index: ldbB, Scale: 2}, bPtr3)
	build.ADDQ(ldbB, bPtr3)

	for _, z := range zs[:n] {
		build.VPXORD(z, z, z)
	}

	aAt := func(i int) operand.Mem {
		b := bases[i/4]
		switch i % 4 {
		case 1:
			return operand.Mem{Base: b, Index: rs, Scale: 1}
		case 2:
			return operand.Mem{Base: b, Index: rs, Scale: 2}
		case 3:
			return operand.Mem{Base: b, Index: rs3, Scale: 1}
		}
		return operand.Mem{Base: b}
	}
	bAt := []operand.Mem{
		{Base: bPtr},
		{Base: bPtr, Index: ldbB, Scale: 1},
		{Base: bPtr, Index: ldbB, Scale: 2},
		{Base: bPtr3},
	}
	step := func(u int) {
		set := acc[u%sets]
		for v := 0; v < nvec; v++ {
			build.VMOVUPS(bAt[u].Offset(64*v), bVec[v])
		}
		for i := 0; i < rows; i++ {
			if nvec == 1 {
				build.VFMADD231PS_BCST(aAt(i), bVec[0], set[i][0])
				continue
			}
			bc := bcast[i%2]
			build.VBROADCASTSS(aAt(i), bc)
			for v := 0; v < nvec; v++ {
				build.VFMADD231PS(bVec[v], bc, set[i][v])
			}
		}
		for _, b := range bases {
			build.ADDQ(cs, b)
		}
	}

	kLoop(name, step, acc)
	out := acc[0]

	alpha, beta := reg.Z30, reg.Z31
	// alpha = 1, what nearly every call passes, skips the multiplies: a
	// few percent of a product with K = 16, and x·1 is x exactly.
	build.CMPL(paramAddr("alpha"), operand.U32(0x3f800000))
	build.JE(operand.LabelRef(name + "_alpha1"))
	build.VBROADCASTSS(paramAddr("alpha"), alpha)
	for i := 0; i < rows; i++ {
		for v := 0; v < nvec; v++ {
			build.VMULPS(alpha, out[i][v], out[i][v])
		}
	}
	build.Label(name + "_alpha1")
	build.VBROADCASTSS(paramAddr("beta"), beta)
	build.Load(build.Param("c").Base(), cPtr)
	build.Load(build.Param("ldc"), ldcB)
	build.SHLQ(operand.U8(2), ldcB)
	build.Load(build.Param("h"), hReg)
	build.Load(build.Param("w"), wReg)
	build.Load(build.Param("load"), loadR)

	rowsOut := func(prefix string, store func(i, v int, m operand.Mem, withLoad bool)) {
		for _, withLoad := range []bool{true, false} {
			if withLoad {
				build.TESTB(loadR.As8(), loadR.As8())
				build.JZ(operand.LabelRef(prefix + "_noload"))
			} else {
				build.Label(prefix + "_noload")
			}
			for i := 0; i < rows; i++ {
				if i > 0 {
					build.CMPQ(hReg, operand.U8(i))
					build.JLE(operand.LabelRef(name + "_done"))
				}
				for v := 0; v < nvec; v++ {
					store(i, v, operand.Mem{Base: cPtr, Disp: 64 * v}, withLoad)
				}
				if i < rows-1 {
					build.ADDQ(ldcB, cPtr)
				}
			}
			build.JMP(operand.LabelRef(name + "_done"))
		}
	}

	build.CMPQ(wReg, operand.U8(bw))
	build.JNE(operand.LabelRef(name + "_ragged"))
	build.Comment("All columns.")
	rowsOut(name+"_full", func(i, v int, m operand.Mem, withLoad bool) {
		if withLoad {
			build.VFMADD231PS(m, beta, out[i][v])
		}
		build.VMOVUPS(out[i][v], m)
	})

	// Ragged width: lane j of vector v is live when 16v+j < w, so the
	// low w bits of (1<<w)-1 are the masks of both vectors in turn.
	build.Label(name + "_ragged")
	masks := []reg.OpmaskPhysical{reg.K1, reg.K2}
	build.MOVQ(wReg, reg.RCX)
	build.MOVQ(operand.U32(1), tmp)
	build.SHLQ(reg.CL, tmp)
	build.DECQ(tmp)
	for v := 0; v < nvec; v++ {
		if v > 0 {
			build.SHRQ(operand.U8(16), tmp)
		}
		build.KMOVW(tmp.As32(), masks[v])
	}
	rowsOut(name+"_ragged", func(i, v int, m operand.Mem, withLoad bool) {
		if withLoad {
			build.VFMADD231PS(m, beta, masks[v], out[i][v])
		}
		build.VMOVUPS(out[i][v], masks[v], m)
	})

	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// copyRows512 is copyRows for 32-wide panels: two zmm per row of a panel.
func copyRows512(name string) {
	const bw = 32
	build.TEXT(name, attr.NOSPLIT, "func(k, np int, b []float32, ldb int, dst []float32)")
	build.Pragma("noescape")
	build.Doc(fmt.Sprintf("%s sets dst[(q*k+p)*%d+j] = b[p*ldb+q*%d+j] for p < k, q < np, j < %d with AVX-512; its pure-Go twin is %sGo.", name, bw, bw, bw, name))
	k, np, src, ld, dst, panel := reg.RCX, reg.RBX, reg.RSI, reg.R8, reg.RDI, reg.R9
	s, d, q := reg.R10, reg.R11, reg.RAX
	build.Load(build.Param("k"), k)
	build.Load(build.Param("np"), np)
	build.Load(build.Param("b").Base(), src)
	build.Load(build.Param("ldb"), ld)
	build.Load(build.Param("dst").Base(), dst)
	build.SHLQ(operand.U8(2), ld)
	build.MOVQ(k, panel)
	build.SHLQ(operand.U8(7), panel) // 128 bytes per K step
	build.TESTQ(k, k)
	build.JZ(operand.LabelRef(name + "_done"))
	build.TESTQ(np, np)
	build.JZ(operand.LabelRef(name + "_done"))

	build.Label(name + "_row")
	build.MOVQ(src, s)
	build.MOVQ(dst, d)
	build.MOVQ(np, q)
	build.Label(name + "_panel")
	build.VMOVUPS(operand.Mem{Base: s}, reg.Z0)
	build.VMOVUPS(operand.Mem{Base: s, Disp: 64}, reg.Z1)
	build.VMOVUPS(reg.Z0, operand.Mem{Base: d})
	build.VMOVUPS(reg.Z1, operand.Mem{Base: d, Disp: 64})
	build.ADDQ(operand.U32(128), s)
	build.ADDQ(panel, d)
	build.DECQ(q)
	build.JNZ(operand.LabelRef(name + "_panel"))
	build.ADDQ(ld, src)
	build.ADDQ(operand.U32(128), dst)
	build.DECQ(k)
	build.JNZ(operand.LabelRef(name + "_row"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}
