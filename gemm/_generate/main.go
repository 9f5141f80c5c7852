// Command _generate writes the AVX2+FMA and AVX-512 micro-kernels and
// packing routines of package gemm with avo. It lives in its own module so
// that the main module does not depend on avo. Run through `go generate` in
// the gemm directory.
package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// signature is that of kernelFunc in package gemm.
const signature = "func(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool)"

// Fixed register assignment: the kernels are small enough to place by hand,
// and a fixed map keeps the generated assembly readable. The K loop and the
// store epilogue share RDX and RBX: C's pointer and the load flag are only
// fetched once the loop is done with B.
var (
	kCount = reg.RCX // K iterations left
	aRow0  = reg.RSI // A, row 0 of the tile
	aRow3  = reg.R10 // A, row 3 of the tile
	rsB    = reg.R8  // A row stride in bytes
	csB    = reg.R9  // A step per K in bytes
	bPtr   = reg.RDI // B, K step 0 of this unrolled group
	bPtr3  = reg.RDX // B, K step 3 of this unrolled group
	ldbB   = reg.RBX // B row stride in bytes
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

	for _, rows := range []int{6, 4, 2} {
		kernel(fmt.Sprintf("kern%dx16", rows), rows, 2)
		kernel(fmt.Sprintf("kern%dx8", rows), rows, 1)
	}
	copyRows("copyRows16")
	copyPanel("copyB8", 1)
	transpose("trans8", 1, false)
	transpose("trans16", 2, false)
	transpose("trans8Add", 1, true)
	transpose("trans16Add", 2, true)

	// The AVX-512 set: 8×32 tiles, 16-column narrow panels. Measured on
	// the convolution GEMMs of CIFAR ResNets (m = 16..64 output channels),
	// eight rows beat 12×32 and 16×16 tiles by 5-30%: m splits into whole
	// tiles, and B read in place is swept by few row tiles.
	for _, rows := range []int{8, 4, 2} {
		kernel512(fmt.Sprintf("kernZ%dx32", rows), rows, 2)
		kernel512(fmt.Sprintf("kernZ%dx16", rows), rows, 1)
	}
	copyRows512("copyRows32")
	copyPanel("copyB16", 2)
	build.Generate()
}

// kernel emits a rows×(8*nvec) micro-kernel. Two FMA ports with four
// cycles of latency need at least eight independent accumulators, so tiles
// with fewer than eight vectors keep several accumulator sets, each taking
// every sets-th K step, and sum them at the end.
func kernel(name string, rows, nvec int) {
	bw := 8 * nvec
	build.TEXT(name, attr.NOSPLIT, signature)
	build.Pragma("noescape")
	build.Doc(
		fmt.Sprintf("%s updates a %d×%d tile of C, see kernelFunc; its pure-Go twin is %sGo.", name, rows, bw, name),
		"Rows past h and columns past w are computed but never stored.",
	)

	sets := 1
	for rows*nvec*sets < 8 {
		sets *= 2
	}
	// acc[s][i][v]: set s, tile row i, vector v.
	acc := make([][][]reg.VecPhysical, sets)
	n := 0
	for s := range acc {
		acc[s] = make([][]reg.VecPhysical, rows)
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
	build.Load(build.Param("ldb"), ldbB)
	build.SHLQ(operand.U8(2), rsB)
	build.SHLQ(operand.U8(2), csB)
	build.SHLQ(operand.U8(2), ldbB)
	if rows > 3 {
		build.LEAQ(operand.Mem{Base: aRow0, Index: rsB, Scale: 2}, aRow3)
		build.ADDQ(rsB, aRow3)
	}
	build.LEAQ(operand.Mem{Base: bPtr, Index: ldbB, Scale: 2}, bPtr3)
	build.ADDQ(ldbB, bPtr3)

	for _, y := range ys[:n] {
		build.VXORPS(y, y, y)
	}

	// Broadcast addresses of the A values of one K step: x86 scales only
	// by 1, 2, 4 or 8, so rows 3 and 5 hang off a second base.
	aAt := []operand.Mem{
		{Base: aRow0},
		{Base: aRow0, Index: rsB, Scale: 1},
		{Base: aRow0, Index: rsB, Scale: 2},
		{Base: aRow3},
		{Base: aRow0, Index: rsB, Scale: 4},
		{Base: aRow3, Index: rsB, Scale: 2},
	}
	// B rows of the four unrolled K steps; as for A, the third scaled
	// index is out of reach, so step 3 has its own base.
	bAt := []operand.Mem{
		{Base: bPtr},
		{Base: bPtr, Index: ldbB, Scale: 1},
		{Base: bPtr, Index: ldbB, Scale: 2},
		{Base: bPtr3},
	}
	step := func(u int) {
		set := acc[u%sets]
		for v := 0; v < nvec; v++ {
			build.VMOVUPS(bAt[u].Offset(32*v), bVec[v])
		}
		for i := 0; i < rows; i++ {
			bc := bcast[i%2]
			build.VBROADCASTSS(aAt[i], bc)
			for v := 0; v < nvec; v++ {
				build.VFMADD231PS(bVec[v], bc, set[i][v])
			}
		}
		build.ADDQ(csB, aRow0)
		if rows > 3 {
			build.ADDQ(csB, aRow3)
		}
	}

	kLoop(name, step, acc)
	out := acc[0]

	alpha, beta := reg.Y12, reg.Y13
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

	// Each store path writes rows while i < h, in a version that reads C
	// and one that does not.
	cTmp := reg.Y12
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
					store(i, v, operand.Mem{Base: cPtr, Disp: 32 * v}, withLoad)
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

	// Ragged width: masked loads and stores touch only the first w
	// columns (a masked-off lane never faults).
	build.Label(name + "_ragged")
	masks := []reg.VecPhysical{reg.Y14, reg.Y15}
	build.MOVQ(operand.U32(16), tmp)
	build.SUBQ(wReg, tmp)
	build.LEAQ(maskTable, wReg)
	for v := 0; v < nvec; v++ {
		build.VMOVUPS(operand.Mem{Base: wReg, Index: tmp, Scale: 4, Disp: 32 * v}, masks[v])
	}
	rowsOut(name+"_ragged", func(i, v int, m operand.Mem, withLoad bool) {
		if withLoad {
			build.VMASKMOVPS(m, masks[v], cTmp)
			build.VFMADD231PS(cTmp, beta, out[i][v])
		}
		build.VMASKMOVPS(out[i][v], masks[v], m)
	})

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

// copyRows emits the packing of np full 16-wide panels of non-transposed B
// in one pass that walks each source row left to right. Going panel by panel
// instead would read 64 bytes from each of k rows, a page apart for wide B,
// which the prefetchers do not follow; row order keeps the reads sequential.
func copyRows(name string) {
	const bw = 16
	build.TEXT(name, attr.NOSPLIT, "func(k, np int, b []float32, ldb int, dst []float32)")
	build.Pragma("noescape")
	build.Doc(fmt.Sprintf("%s sets dst[(q*k+p)*%d+j] = b[p*ldb+q*%d+j] for p < k, q < np, j < %d; its pure-Go twin is %sGo.", name, bw, bw, bw, name))
	k, np, src, ld, dst, panel := reg.RCX, reg.RBX, reg.RSI, reg.R8, reg.RDI, reg.R9
	s, d, q := reg.R10, reg.R11, reg.RAX
	build.Load(build.Param("k"), k)
	build.Load(build.Param("np"), np)
	build.Load(build.Param("b").Base(), src)
	build.Load(build.Param("ldb"), ld)
	build.Load(build.Param("dst").Base(), dst)
	build.SHLQ(operand.U8(2), ld)
	build.MOVQ(k, panel)
	build.SHLQ(operand.U8(6), panel) // 64 bytes per K step
	build.TESTQ(k, k)
	build.JZ(operand.LabelRef(name + "_done"))
	build.TESTQ(np, np)
	build.JZ(operand.LabelRef(name + "_done"))

	build.Label(name + "_row")
	build.MOVQ(src, s)
	build.MOVQ(dst, d)
	build.MOVQ(np, q)
	build.Label(name + "_panel")
	build.VMOVUPS(operand.Mem{Base: s}, reg.Y0)
	build.VMOVUPS(operand.Mem{Base: s, Disp: 32}, reg.Y1)
	build.VMOVUPS(reg.Y0, operand.Mem{Base: d})
	build.VMOVUPS(reg.Y1, operand.Mem{Base: d, Disp: 32})
	build.ADDQ(operand.U8(64), s)
	build.ADDQ(panel, d)
	build.DECQ(q)
	build.JNZ(operand.LabelRef(name + "_panel"))
	build.ADDQ(ld, src)
	build.ADDQ(operand.U8(64), dst)
	build.DECQ(k)
	build.JNZ(operand.LabelRef(name + "_row"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// copyPanel emits the packing of a full panel of non-transposed B: k rows of
// 8*nvec contiguous floats, stride ldb, into a dense panel. Four rows per
// iteration keep the loop overhead below the loads and stores.
func copyPanel(name string, nvec int) {
	bw := 8 * nvec
	build.TEXT(name, attr.NOSPLIT, "func(k int, b []float32, ldb int, dst []float32)")
	build.Pragma("noescape")
	build.Doc(fmt.Sprintf("%s sets dst[p*%d+j] = b[p*ldb+j] for p < k, j < %d; its pure-Go twin is %sGo.", name, bw, bw, name))
	k, src, ld, ld3, dst := reg.RCX, reg.RSI, reg.R8, reg.R9, reg.RDI
	build.Load(build.Param("k"), k)
	build.Load(build.Param("b").Base(), src)
	build.Load(build.Param("ldb"), ld)
	build.Load(build.Param("dst").Base(), dst)
	build.SHLQ(operand.U8(2), ld)
	build.LEAQ(operand.Mem{Base: ld, Index: ld, Scale: 2}, ld3)

	rows := []operand.Mem{
		{Base: src},
		{Base: src, Index: ld, Scale: 1},
		{Base: src, Index: ld, Scale: 2},
		{Base: src, Index: ld3, Scale: 1},
	}
	move := func(r int) {
		for v := 0; v < nvec; v++ {
			y := ys[r*nvec+v]
			build.VMOVUPS(rows[r].Offset(32*v), y)
			build.VMOVUPS(y, operand.Mem{Base: dst, Disp: 4 * (r*bw + 8*v)})
		}
	}
	build.MOVQ(k, tmp)
	build.SHRQ(operand.U8(2), tmp)
	build.JZ(operand.LabelRef(name + "_tail"))
	build.Label(name + "_loop4")
	for r := 0; r < 4; r++ {
		move(r)
	}
	build.LEAQ(operand.Mem{Base: src, Index: ld, Scale: 4}, src)
	build.ADDQ(operand.U32(4*4*bw), dst)
	build.DECQ(tmp)
	build.JNZ(operand.LabelRef(name + "_loop4"))
	build.Label(name + "_tail")
	build.ANDQ(operand.U8(3), k)
	build.JZ(operand.LabelRef(name + "_done"))
	build.Label(name + "_loop1")
	move(0)
	build.ADDQ(ld, src)
	build.ADDQ(operand.U32(4*bw), dst)
	build.DECQ(k)
	build.JNZ(operand.LabelRef(name + "_loop1"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// transpose emits the packing of 8*groups rows of transposed B (stored
// n×k) into as many columns of a panel with row stride ldd, eight K steps at
// a time; a panel of any width is packed eight or sixteen rows per call.
// Sixteen rows per call fill whole 64-byte lines of a 16-wide panel. Each
// 8×8 block is transposed with the cross-lane step done by the loads (rows
// j and j+4 share a ymm through VINSERTF128), leaving 16 in-lane shuffles
// per block.
//
// With add set it emits the accumulating form instead, which adds to beta
// times what dst held: the transposed result of a swapped product goes
// into C this way.
func transpose(name string, groups int, add bool) {
	rows := 8 * groups
	if add {
		build.TEXT(name, attr.NOSPLIT, "func(k8 int, b []float32, ldb int, dst []float32, ldd int, beta float32)")
		build.Doc(fmt.Sprintf("%s sets dst[p*ldd+j] = b[j*ldb+p] + beta*dst[p*ldd+j] for p < 8*k8, j < %d; its pure-Go twin is %sGo.", name, rows, name))
	} else {
		build.TEXT(name, attr.NOSPLIT, "func(k8 int, b []float32, ldb int, dst []float32, ldd int)")
		build.Doc(fmt.Sprintf("%s sets dst[p*ldd+j] = b[j*ldb+p] for p < 8*k8, j < %d; its pure-Go twin is %sGo.", name, rows, name))
	}
	build.Pragma("noescape")
	k, ld, ld3 := reg.RCX, reg.R8, reg.R9
	dd, dd3, dst, dst4 := reg.R11, reg.R12, reg.RDI, reg.R13
	// src[q] points at row 4q of the rows to transpose.
	src := []reg.GPPhysical{reg.RSI, reg.R10, reg.RBX, reg.RDX}[:2*groups]
	build.Load(build.Param("k8"), k)
	build.Load(build.Param("b").Base(), src[0])
	build.Load(build.Param("ldb"), ld)
	build.Load(build.Param("dst").Base(), dst)
	build.Load(build.Param("ldd"), dd)
	build.SHLQ(operand.U8(2), ld)
	build.SHLQ(operand.U8(2), dd)
	build.LEAQ(operand.Mem{Base: ld, Index: ld, Scale: 2}, ld3)
	build.LEAQ(operand.Mem{Base: dd, Index: dd, Scale: 2}, dd3)
	for q := 1; q < len(src); q++ {
		build.LEAQ(operand.Mem{Base: src[q-1], Index: ld, Scale: 4}, src[q])
	}
	build.LEAQ(operand.Mem{Base: dst, Index: dd, Scale: 4}, dst4)
	// at(base, q) is row (or panel row) q of four hanging off base.
	at := func(base, stride, stride3 reg.GPPhysical, q int) operand.Mem {
		switch q {
		case 1:
			return operand.Mem{Base: base, Index: stride, Scale: 1}
		case 2:
			return operand.Mem{Base: base, Index: stride, Scale: 2}
		case 3:
			return operand.Mem{Base: base, Index: stride3, Scale: 1}
		}
		return operand.Mem{Base: base}
	}
	r := ys[:8]
	t := []reg.VecPhysical{reg.Y8, reg.Y9, reg.Y10, reg.Y11}
	beta := reg.Y12
	if add {
		build.VBROADCASTSS(paramAddr("beta"), beta)
	}

	build.TESTQ(k, k)
	build.JZ(operand.LabelRef(name + "_done"))
	build.Label(name + "_loop")
	for g := 0; g < groups; g++ {
		// r[q] for q < 4 holds K steps 0..3 of rows 8g+q (low lane)
		// and 8g+q+4 (high lane); r[q+4] the same for K steps 4..7.
		for q := 0; q < 4; q++ {
			lo, hi := at(src[2*g], ld, ld3, q), at(src[2*g+1], ld, ld3, q)
			build.VMOVUPS(lo, r[q].AsX())
			build.VINSERTF128(operand.U8(1), hi, r[q], r[q])
			build.VMOVUPS(lo.Offset(16), r[q+4].AsX())
			build.VINSERTF128(operand.U8(1), hi.Offset(16), r[q+4], r[q+4])
		}
		for half := 0; half < 2; half++ {
			x := r[4*half : 4*half+4]
			build.VUNPCKLPS(x[1], x[0], t[0])
			build.VUNPCKHPS(x[1], x[0], t[1])
			build.VUNPCKLPS(x[3], x[2], t[2])
			build.VUNPCKHPS(x[3], x[2], t[3])
			// x[q] now receives K step 4*half+q for the eight rows.
			build.VSHUFPS(operand.U8(0x44), t[2], t[0], x[0])
			build.VSHUFPS(operand.U8(0xEE), t[2], t[0], x[1])
			build.VSHUFPS(operand.U8(0x44), t[3], t[1], x[2])
			build.VSHUFPS(operand.U8(0xEE), t[3], t[1], x[3])
			base := []reg.GPPhysical{dst, dst4}[half]
			for q := 0; q < 4; q++ {
				m := at(base, dd, dd3, q).Offset(32 * g)
				if add {
					build.VFMADD231PS(m, beta, x[q])
				}
				build.VMOVUPS(x[q], m)
			}
		}
	}
	for _, s := range src {
		build.ADDQ(operand.U8(32), s)
	}
	build.LEAQ(operand.Mem{Base: dst, Index: dd, Scale: 8}, dst)
	build.LEAQ(operand.Mem{Base: dst4, Index: dd, Scale: 8}, dst4)
	build.DECQ(k)
	build.JNZ(operand.LabelRef(name + "_loop"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// kLoop emits the K loop shared by every micro-kernel: step(u) is one K
// step at offset u of a group of four (B rows through bPtr and bPtr3), then a
// remainder loop of single steps; afterwards the accumulator sets are summed
// into set 0.
func kLoop(name string, step func(u int), acc [][][]reg.VecPhysical) {
	const unroll = 4
	build.Comment("K loop, unrolled by 4.")
	build.MOVQ(kCount, tmp)
	build.SHRQ(operand.U8(2), tmp)
	build.JZ(operand.LabelRef(name + "_tail"))
	build.Label(name + "_loop4")
	for u := 0; u < unroll; u++ {
		step(u)
	}
	build.LEAQ(operand.Mem{Base: bPtr, Index: ldbB, Scale: 4}, bPtr)
	build.LEAQ(operand.Mem{Base: bPtr3, Index: ldbB, Scale: 4}, bPtr3)
	build.DECQ(tmp)
	build.JNZ(operand.LabelRef(name + "_loop4"))

	build.Label(name + "_tail")
	build.ANDQ(operand.U8(unroll-1), kCount)
	build.JZ(operand.LabelRef(name + "_epilogue"))
	build.Label(name + "_loop1")
	step(0)
	build.ADDQ(ldbB, bPtr)
	build.DECQ(kCount)
	build.JNZ(operand.LabelRef(name + "_loop1"))

	build.Label(name + "_epilogue")
	for s := 1; s < len(acc); s++ {
		for i := range acc[s] {
			for v := range acc[s][i] {
				build.VADDPS(acc[s][i][v], acc[0][i][v], acc[0][i][v])
			}
		}
	}
}
