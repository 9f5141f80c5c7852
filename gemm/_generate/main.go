// Command _generate writes the AVX2+FMA micro-kernels of package gemm with
// avo. It lives in its own module so that the main module does not depend on
// avo. Run through `go generate` in the gemm directory.
package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

const (
	mr        = 6
	signature = "func(k int, a []float32, rs, cs int, b []float32, c []float32, ldc, h, w int, alpha, beta float32, load bool)"
)

// Fixed register assignment: the kernels are small enough to place by hand,
// and a fixed map keeps the generated assembly readable.
var (
	kCount = reg.RCX // K iterations left
	aRow0  = reg.RSI // A, row 0 of the tile
	aRow3  = reg.R10 // A, row 3 of the tile
	rsB    = reg.R8  // A row stride in bytes
	csB    = reg.R9  // A step per K in bytes
	bPtr   = reg.RDI // packed B
	cPtr   = reg.RDX // C, current row
	ldcB   = reg.R11 // C row stride in bytes
	hReg   = reg.R12 // rows to store
	wReg   = reg.R13 // columns to store
	loadR  = reg.RBX // whether C is read
	tmp    = reg.RAX

	bVec  = []reg.VecPhysical{reg.Y12, reg.Y13}
	bcast = []reg.VecPhysical{reg.Y14, reg.Y15}
	ys    = []reg.VecPhysical{
		reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5,
		reg.Y6, reg.Y7, reg.Y8, reg.Y9, reg.Y10, reg.Y11,
	}
)

var maskTable operand.Mem

func main() {
	build.ConstraintExpr("amd64,!noasm")

	// 16 all-ones lanes then 16 zero lanes: the 8 lanes starting at
	// 16-w are the store mask for the first w columns.
	maskTable = build.GLOBL("colmask", attr.RODATA|attr.NOPTR)
	for i := 0; i < 32; i++ {
		v := uint32(0)
		if i < 16 {
			v = 0xffffffff
		}
		build.DATA(4*i, operand.U32(v))
	}

	kernel("kern6x16", 2)
	kernel("kern6x8", 1)
	build.Generate()
}

// kernel emits a 6×(8*nvec) micro-kernel. With one vector per row only six
// FMA chains would be in flight, too few to cover FMA latency on two ports,
// so the 6×8 kernel keeps two accumulator sets (even and odd K steps) and sums
// them at the end.
func kernel(name string, nvec int) {
	bw := 8 * nvec
	build.TEXT(name, attr.NOSPLIT, signature)
	build.Pragma("noescape")
	build.Doc(
		fmt.Sprintf("%s updates a %d×%d tile of C, see kernelFunc; its pure-Go twin is %sGo.", name, mr, bw, name),
		"Rows past h and columns past w are computed but never stored.",
	)

	sets := 1
	if nvec == 1 {
		sets = 2
	}
	// acc[s][i][v]: set s, tile row i, vector v.
	acc := make([][][]reg.VecPhysical, sets)
	n := 0
	for s := range acc {
		acc[s] = make([][]reg.VecPhysical, mr)
		for i := range acc[s] {
			acc[s][i] = make([]reg.VecPhysical, nvec)
			for v := range acc[s][i] {
				acc[s][i][v] = ys[n]
				n++
			}
		}
	}

	build.Load(build.Param("k"), kCount)
	build.Load(build.Param("a").Base(), aRow0)
	build.Load(build.Param("rs"), rsB)
	build.Load(build.Param("cs"), csB)
	build.Load(build.Param("b").Base(), bPtr)
	build.SHLQ(operand.U8(2), rsB)
	build.SHLQ(operand.U8(2), csB)
	build.LEAQ(operand.Mem{Base: aRow0, Index: rsB, Scale: 2}, aRow3)
	build.ADDQ(rsB, aRow3)

	for _, y := range ys[:n] {
		build.VXORPS(y, y, y)
	}

	// Broadcast addresses of the six A values of one K step: x86 scales
	// only by 1, 2, 4 or 8, so rows 3 and 5 hang off a second base.
	aAt := []operand.Mem{
		{Base: aRow0},
		{Base: aRow0, Index: rsB, Scale: 1},
		{Base: aRow0, Index: rsB, Scale: 2},
		{Base: aRow3},
		{Base: aRow0, Index: rsB, Scale: 4},
		{Base: aRow3, Index: rsB, Scale: 2},
	}
	step := func(u int) {
		set := acc[u%sets]
		for v := 0; v < nvec; v++ {
			build.VMOVUPS(operand.Mem{Base: bPtr, Disp: 4 * (u*bw + 8*v)}, bVec[v])
		}
		for i := 0; i < mr; i++ {
			bc := bcast[i%2]
			build.VBROADCASTSS(aAt[i], bc)
			for v := 0; v < nvec; v++ {
				build.VFMADD231PS(bVec[v], bc, set[i][v])
			}
		}
		build.ADDQ(csB, aRow0)
		build.ADDQ(csB, aRow3)
	}

	const unroll = 4
	build.Comment("K loop, unrolled by 4.")
	build.MOVQ(kCount, tmp)
	build.SHRQ(operand.U8(2), tmp)
	build.JZ(operand.LabelRef(name + "_tail"))
	build.Label(name + "_loop4")
	for u := 0; u < unroll; u++ {
		step(u)
	}
	build.ADDQ(operand.U32(4*unroll*bw), bPtr)
	build.DECQ(tmp)
	build.JNZ(operand.LabelRef(name + "_loop4"))

	build.Label(name + "_tail")
	build.ANDQ(operand.U8(unroll-1), kCount)
	build.JZ(operand.LabelRef(name + "_epilogue"))
	build.Label(name + "_loop1")
	step(0)
	build.ADDQ(operand.U32(4*bw), bPtr)
	build.DECQ(kCount)
	build.JNZ(operand.LabelRef(name + "_loop1"))

	build.Label(name + "_epilogue")
	for s := 1; s < sets; s++ {
		for i := 0; i < mr; i++ {
			for v := 0; v < nvec; v++ {
				build.VADDPS(acc[s][i][v], acc[0][i][v], acc[0][i][v])
			}
		}
	}
	out := acc[0]

	alpha, beta := reg.Y12, reg.Y13
	build.VBROADCASTSS(paramAddr("alpha"), alpha)
	for i := 0; i < mr; i++ {
		for v := 0; v < nvec; v++ {
			build.VMULPS(alpha, out[i][v], out[i][v])
		}
	}
	build.VBROADCASTSS(paramAddr("beta"), beta)
	build.Load(build.Param("c").Base(), cPtr)
	build.Load(build.Param("ldc"), ldcB)
	build.SHLQ(operand.U8(2), ldcB)
	build.Load(build.Param("h"), hReg)
	build.Load(build.Param("w"), wReg)
	build.Load(build.Param("load"), loadR)

	build.CMPQ(hReg, operand.U8(mr))
	build.JNE(operand.LabelRef(name + "_edge"))
	build.CMPQ(wReg, operand.U8(bw))
	build.JNE(operand.LabelRef(name + "_edge"))

	build.Comment("Full tile.")
	build.TESTB(loadR.As8(), loadR.As8())
	build.JZ(operand.LabelRef(name + "_fullstore"))
	for i := 0; i < mr; i++ {
		for v := 0; v < nvec; v++ {
			build.VFMADD231PS(operand.Mem{Base: cPtr, Disp: 32 * v}, beta, out[i][v])
			build.VMOVUPS(out[i][v], operand.Mem{Base: cPtr, Disp: 32 * v})
		}
		build.ADDQ(ldcB, cPtr)
	}
	build.VZEROUPPER()
	build.RET()
	build.Label(name + "_fullstore")
	for i := 0; i < mr; i++ {
		for v := 0; v < nvec; v++ {
			build.VMOVUPS(out[i][v], operand.Mem{Base: cPtr, Disp: 32 * v})
		}
		build.ADDQ(ldcB, cPtr)
	}
	build.VZEROUPPER()
	build.RET()

	// Ragged tile: masked loads and stores touch only the first w columns
	// (a masked-off lane never faults), and rows stop at h.
	build.Label(name + "_edge")
	masks := []reg.VecPhysical{reg.Y14, reg.Y15}
	build.MOVQ(operand.U32(16), tmp)
	build.SUBQ(wReg, tmp)
	build.LEAQ(maskTable, wReg)
	for v := 0; v < nvec; v++ {
		build.VMOVUPS(operand.Mem{Base: wReg, Index: tmp, Scale: 4, Disp: 32 * v}, masks[v])
	}
	cTmp := reg.Y12
	for _, withLoad := range []bool{true, false} {
		lbl := name + "_edgestore"
		if withLoad {
			build.TESTB(loadR.As8(), loadR.As8())
			build.JZ(operand.LabelRef(lbl))
		} else {
			build.Label(lbl)
		}
		for i := 0; i < mr; i++ {
			if i > 0 {
				build.CMPQ(hReg, operand.U8(i))
				build.JLE(operand.LabelRef(name + "_done"))
			}
			for v := 0; v < nvec; v++ {
				m := operand.Mem{Base: cPtr, Disp: 32 * v}
				if withLoad {
					build.VMASKMOVPS(m, masks[v], cTmp)
					build.VFMADD231PS(cTmp, beta, out[i][v])
				}
				build.VMASKMOVPS(out[i][v], masks[v], m)
			}
			build.ADDQ(ldcB, cPtr)
		}
		build.JMP(operand.LabelRef(name + "_done"))
	}
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
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
