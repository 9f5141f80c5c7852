// Command _generate writes the assembly kernels of package infer with avo.
// It lives in its own module so that the main module does not depend on
// avo. Run through `go generate` in the infer directory.
//
// avo v0.5.0 does not know VPDPBUSD (AVX-512 VNNI); the Go assembler does,
// so it is emitted as a raw instruction on fixed registers.
package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

const (
	dotSig = "func(a []byte, as int, offs []int32, w []int8, out []float32, rows []int, scale []float32, bias []float32, n int, flags int) float32"
	fmaSig = "func(a []float32, as int, offs []int32, w []int8, out []float32, rows []int, scale []float32, bias []float32, n int, flags int) float32"

	flagReLU  = 1
	flagAccum = 2
)

// Fixed general-purpose registers of the tile kernels.
var (
	aBase = reg.RSI // the tile's first pixel
	sB    = reg.R8  // pixel stride in bytes, and 3, 5 and 7 times it
	s3B   = reg.R9
	s5B   = reg.R10
	s7B   = reg.R11
	offP  = reg.RDI // next entry of offs
	count = reg.RCX // steps left
	wP    = reg.RDX // weights of the next step
	p0    = reg.RAX // step's address for pixel 0
	p8    = reg.RBX // and pixel 8
	tmp   = reg.R12
	tmp2  = reg.R13
)

var (
	colMask, onesW, negInf, permQ, clampLo, clampHi, absMask operand.Mem
)

func main() {
	build.ConstraintExpr("amd64,!noasm")
	globals()
	tileZ("dotVNNI16x16", 16, 1, true)
	tileZ("dotVNNI8x32", 8, 2, true)
	tileZ("fmaZ16x16", 16, 1, false)
	tileZ("fmaZ8x32", 8, 2, false)
	dotAVX2x6()
	fmaAVX2x6()
	quantizeAVX2()
	absMaxAVX2()
	addAVX2()
	build.Generate()
}

func globals() {
	// 16 all-ones lanes then 16 zero lanes: the 8 lanes starting at
	// 16-k are the mask of the first k lanes.
	colMask = build.GLOBL("colmask", attr.RODATA|attr.NOPTR)
	for i := 0; i < 32; i++ {
		v := uint32(0)
		if i < 16 {
			v = 0xffffffff
		}
		build.DATA(4*i, operand.U32(v))
	}
	onesW = build.GLOBL("onesw", attr.RODATA|attr.NOPTR)
	for i := 0; i < 16; i++ {
		build.DATA(2*i, operand.U16(1))
	}
	negInf = build.GLOBL("neginf", attr.RODATA|attr.NOPTR)
	build.DATA(0, operand.U32(0xff800000))
	// VPERMD order that undoes the lane interleaving of the two packs.
	permQ = build.GLOBL("permq", attr.RODATA|attr.NOPTR)
	for i, v := range []uint32{0, 4, 1, 5, 2, 6, 3, 7} {
		build.DATA(4*i, operand.U32(v))
	}
	clampLo = build.GLOBL("clamplo", attr.RODATA|attr.NOPTR)
	build.DATA(0, operand.U32(0xc3800000)) // -256
	clampHi = build.GLOBL("clamphi", attr.RODATA|attr.NOPTR)
	build.DATA(0, operand.U32(0x43800000)) // 256
	absMask = build.GLOBL("absmask", attr.RODATA|attr.NOPTR)
	build.DATA(0, operand.U32(0x7fffffff))
}

// pixelAddrs returns the addresses of pixels 0…mr-1 of one step: x86
// scales an index only by 1, 2, 4 or 8, so strides 3, 5 and 7 have their
// own registers and pixels 8…15 hang off a second base.
func pixelAddrs(mr int) []operand.Mem {
	var out []operand.Mem
	for j := 0; j < mr; j++ {
		base := p0
		if j >= 8 {
			base = p8
		}
		m := []operand.Mem{
			{Base: base},
			{Base: base, Index: sB, Scale: 1},
			{Base: base, Index: sB, Scale: 2},
			{Base: base, Index: s3B, Scale: 1},
			{Base: base, Index: sB, Scale: 4},
			{Base: base, Index: s5B, Scale: 1},
			{Base: base, Index: s3B, Scale: 2},
			{Base: base, Index: s7B, Scale: 1},
		}[j%8]
		out = append(out, m)
	}
	return out
}

// prologue loads the tile's operands; elem is the activation size in bytes.
func prologue(elem int, mr int) {
	build.Load(build.Param("a").Base(), aBase)
	build.Load(build.Param("as"), sB)
	if elem == 4 {
		build.SHLQ(operand.U8(2), sB)
	}
	build.LEAQ(operand.Mem{Base: sB, Index: sB, Scale: 2}, s3B)
	build.LEAQ(operand.Mem{Base: sB, Index: sB, Scale: 4}, s5B)
	if mr > 6 {
		build.LEAQ(operand.Mem{Base: s3B, Index: sB, Scale: 4}, s7B)
	}
	build.Load(build.Param("offs").Base(), offP)
	build.Load(build.Param("offs").Len(), count)
	build.Load(build.Param("w").Base(), wP)
}

// stepAddrs points p0 (and p8) at the current step's pixels and advances offP.
func stepAddrs(elem int, mr int) {
	build.MOVLQSX(operand.Mem{Base: offP}, tmp)
	build.LEAQ(operand.Mem{Base: aBase, Index: tmp, Scale: uint8(elem)}, p0)
	if mr > 8 {
		build.LEAQ(operand.Mem{Base: p0, Index: sB, Scale: 8}, p8)
	}
	build.ADDQ(operand.U8(4), offP)
}

func vpdpbusd(w, x, acc reg.VecPhysical) {
	build.Instruction(&ir.Instruction{
		Opcode:   "VPDPBUSD",
		Operands: []operand.Op{w, x, acc},
		Inputs:   []operand.Op{w, x, acc},
		Outputs:  []operand.Op{acc},
		ISA:      []string{"AVX512_VNNI"},
	})
}

func zmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9,
		reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20,
		reg.Z21, reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}[i]
}

func ymm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9,
		reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}[i]
}

func xmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7}[i]
}

// tileZ emits an AVX-512 tile kernel of mr pixels × 16·nv channels, the
// sums in Z0…Z(mr·nv-1) (pixel j, vector v in Z(j·nv+v)), the step's
// weights in Z24…. With int8, the kernel is for AVX-512 VNNI: each
// pixel's 4 bytes are broadcast to every lane, since VPDPBUSD takes the
// unsigned bytes in a register, and multiply the step's [channel][4]
// trits. Without, the step's int8 weights become floats in registers and
// each pixel's float is an embedded broadcast of VFMADD231PS.
func tileZ(name string, mr, nv int, int8 bool) {
	sig, elem, wstep, kind, twin := fmaSig, 4, 16*nv, "float", "fmaTileGo"
	if int8 {
		sig, elem, wstep, kind, twin = dotSig, 1, 64*nv, "AVX-512 VNNI int8", "dotTileGo"
	}
	build.TEXT(name, attr.NOSPLIT, sig)
	build.Pragma("noescape")
	build.Doc(fmt.Sprintf("%s is the %s tile kernel for %d pixels × %d channels; its pure-Go twin is %s.", name, kind, mr, 16*nv, twin),
		fmt.Sprintf("len(rows) must be %d and len(scale), len(bias) %d.", mr, 16*nv))
	prologue(elem, mr)
	acc := func(j, v int) reg.VecPhysical { return zmm(j*nv + v) }
	for i := 0; i < mr*nv; i++ {
		build.VPXORD(zmm(i), zmm(i), zmm(i))
	}
	addrs := pixelAddrs(mr)
	build.TESTQ(count, count)
	build.JZ(operand.LabelRef(name + "_epilogue"))
	build.Label(name + "_loop")
	stepAddrs(elem, mr)
	for v := 0; v < nv; v++ {
		if int8 {
			build.VMOVDQU32(operand.Mem{Base: wP, Disp: 64 * v}, zmm(24+v))
		} else {
			build.VPMOVSXBD(operand.Mem{Base: wP, Disp: 16 * v}, zmm(24+v))
			build.VCVTDQ2PS(zmm(24+v), zmm(24+v))
		}
	}
	for j := 0; j < mr; j++ {
		b := zmm(26 + j%6)
		switch {
		case int8:
			build.VPBROADCASTD(addrs[j], b)
			for v := 0; v < nv; v++ {
				vpdpbusd(zmm(24+v), b, acc(j, v))
			}
		case nv == 1:
			build.VFMADD231PS_BCST(addrs[j], zmm(24), acc(j, 0))
		default:
			build.VBROADCASTSS(addrs[j], b)
			for v := 0; v < nv; v++ {
				build.VFMADD231PS(zmm(24+v), b, acc(j, v))
			}
		}
	}
	build.ADDQ(operand.U32(wstep), wP)
	build.DECQ(count)
	build.JNZ(operand.LabelRef(name + "_loop"))
	build.Label(name + "_epilogue")
	if int8 {
		for i := 0; i < mr*nv; i++ {
			build.VCVTDQ2PS(zmm(i), zmm(i))
		}
	}
	epilogueZ(name, mr, nv)
}

// epilogueZ stores the float sums: v·scale + bias, plus the old value
// with flagAccum (a zero-masked load when not), clamped at the floor (0
// with flagReLU, else -inf), for the first n channels of the rows whose
// offset is not negative. K1, K3 mask the stores of vectors 0 and 1, K2,
// K4 the loads. It returns the largest magnitude stored (NaNs skipped),
// which spares the next layer a pass to find it.
func epilogueZ(name string, mr, nv int) {
	floor, old, big, absm := reg.Z24, reg.Z25, reg.Z30, reg.Z31
	build.VPXORD(big, big, big)
	build.VPBROADCASTD(absMask, absm)
	scale := []reg.VecPhysical{reg.Z26, reg.Z27}
	bias := []reg.VecPhysical{reg.Z28, reg.Z29}
	storeK := []reg.OpmaskPhysical{reg.K1, reg.K3}
	loadK := []reg.OpmaskPhysical{reg.K2, reg.K4}
	build.Load(build.Param("scale").Base(), tmp)
	build.Load(build.Param("bias").Base(), tmp2)
	for v := 0; v < nv; v++ {
		build.VMOVUPS(operand.Mem{Base: tmp, Disp: 64 * v}, scale[v])
		build.VMOVUPS(operand.Mem{Base: tmp2, Disp: 64 * v}, bias[v])
	}
	// p0 = all-ones if flagAccum, p8 = flags.
	build.Load(build.Param("flags"), p8)
	build.MOVQ(p8, p0)
	build.SHRQ(operand.U8(1), p0)
	build.ANDQ(operand.U8(1), p0)
	build.NEGQ(p0)
	build.Load(build.Param("n"), tmp2)
	for v := 0; v < nv; v++ {
		// lanes = clamp(n - 16v, 0, 16); mask = 2^lanes - 1.
		build.MOVQ(tmp2, count)
		if v > 0 {
			build.SUBQ(operand.U8(16*v), count)
			build.XORQ(tmp, tmp)
			build.CMPQ(count, tmp)
			build.CMOVQLT(tmp, count)
		}
		build.MOVQ(operand.U32(16), tmp)
		build.CMPQ(count, tmp)
		build.CMOVQGT(tmp, count)
		build.MOVL(operand.U32(1), tmp.As32())
		build.SHLL(reg.CL, tmp.As32())
		build.DECL(tmp.As32())
		build.KMOVW(tmp.As32(), storeK[v])
		build.ANDQ(p0, tmp)
		build.KMOVW(tmp.As32(), loadK[v])
	}
	build.VPXORD(floor, floor, floor)
	build.TESTQ(operand.U32(flagReLU), p8)
	build.JNZ(operand.LabelRef(name + "_floor"))
	build.VPBROADCASTD(negInf, floor)
	build.Label(name + "_floor")
	rowsP, outP := offP, wP
	build.Load(build.Param("rows").Base(), rowsP)
	build.Load(build.Param("out").Base(), outP)
	for j := 0; j < mr; j++ {
		skip := fmt.Sprintf("%s_skip%d", name, j)
		build.MOVQ(operand.Mem{Base: rowsP, Disp: 8 * j}, tmp)
		build.TESTQ(tmp, tmp)
		build.JS(operand.LabelRef(skip))
		build.LEAQ(operand.Mem{Base: outP, Index: tmp, Scale: 4}, tmp)
		for v := 0; v < nv; v++ {
			x := zmm(j*nv + v)
			m := operand.Mem{Base: tmp, Disp: 64 * v}
			build.VFMADD213PS(bias[v], scale[v], x)
			build.VMOVUPS_Z(m, loadK[v], old)
			build.VADDPS(old, x, x)
			// max(floor, x) returns x when x is NaN, as Go's max does.
			build.VMAXPS(x, floor, x)
			build.VMOVUPS(x, storeK[v], m)
			// big = max(|x|, big) in the stored lanes; a NaN gives big.
			build.VPANDD(absm, x, old)
			build.VMAXPS(big, old, storeK[v], big)
		}
		build.Label(skip)
	}
	reduceMax(big)
}

// reduceMax returns the largest lane of Z30 (zmm) or Y2 (ymm), NaN lanes
// aside, as the function's float32 result.
func reduceMax(big reg.VecPhysical) {
	y, x := reg.Y2, reg.X2
	if big == reg.Z30 {
		build.VEXTRACTF64X4(operand.U8(1), big, reg.Y28)
		build.VMAXPS(reg.Y28, reg.Y30, y)
	}
	build.VEXTRACTF128(operand.U8(1), y, reg.X1)
	build.VMAXPS(reg.X1, x, reg.X0)
	build.VMOVHLPS(reg.X0, reg.X0, reg.X1)
	build.VMAXPS(reg.X1, reg.X0, reg.X0)
	build.VPSHUFD(operand.U8(1), reg.X0, reg.X1)
	build.VMAXSS(reg.X1, reg.X0, reg.X0)
	build.VZEROUPPER()
	build.Store(reg.X0, build.ReturnIndex(0))
	build.RET()
}

// dotAVX2x6 is the int8 tile kernel for AVX2: 6 pixels × 16 channels. Each
// pixel's 4 bytes are broadcast and multiplied by the step's weights with
// VPMADDUBSW (unsigned activations × signed trits, pairs summed into int16,
// never saturating since |w| ≤ 1: |pair| ≤ 510) and summed in int16 for at
// most 64 steps (64·510 < 32768); then VPMADDWD by 1 widens the sums to
// int32 in a stack frame.
func dotAVX2x6() {
	const mr, block = 6, 64
	name := "dotAVX2x6"
	build.TEXT(name, attr.NOSPLIT, dotSig)
	build.Pragma("noescape")
	build.Doc(name+" is the AVX2 int8 tile kernel for 6 pixels; its pure-Go twin is dotTileGo.",
		"len(rows) must be 6.")
	acc32 := build.AllocLocal(2 * mr * 32)
	prologue(1, mr)
	left := tmp2
	build.MOVQ(count, left)
	zero := reg.Y0
	build.VPXOR(zero, zero, zero)
	for i := 0; i < 2*mr; i++ {
		build.VMOVDQU(zero, acc32.Offset(32*i))
	}
	addrs := pixelAddrs(mr)
	w0, w1, bc, t := reg.Y14, reg.Y15, reg.Y12, reg.Y13
	build.Label(name + "_block")
	build.TESTQ(left, left)
	build.JZ(operand.LabelRef(name + "_epilogue"))
	build.MOVQ(operand.U32(block), count)
	build.CMPQ(left, count)
	build.CMOVQLT(left, count)
	build.SUBQ(count, left)
	for i := 0; i < 2*mr; i++ {
		build.VPXOR(ymm(i), ymm(i), ymm(i))
	}
	build.Label(name + "_loop")
	stepAddrs(1, mr)
	build.VMOVDQU(operand.Mem{Base: wP}, w0)
	build.VMOVDQU(operand.Mem{Base: wP, Disp: 32}, w1)
	for j := 0; j < mr; j++ {
		build.VPBROADCASTD(addrs[j], bc)
		build.VPMADDUBSW(w0, bc, t)
		build.VPADDW(t, ymm(2*j), ymm(2*j))
		build.VPMADDUBSW(w1, bc, t)
		build.VPADDW(t, ymm(2*j+1), ymm(2*j+1))
	}
	build.ADDQ(operand.U8(64), wP)
	build.DECQ(count)
	build.JNZ(operand.LabelRef(name + "_loop"))
	for i := 0; i < 2*mr; i++ {
		build.VPMADDWD(onesW, ymm(i), ymm(i))
		build.VPADDD(acc32.Offset(32*i), ymm(i), ymm(i))
		build.VMOVDQU(ymm(i), acc32.Offset(32*i))
	}
	build.JMP(operand.LabelRef(name + "_block"))

	build.Label(name + "_epilogue")
	for i := 0; i < 2*mr; i++ {
		build.VCVTDQ2PS(acc32.Offset(32*i), ymm(i))
	}
	epilogueY(name, mr)
}

// fmaAVX2x6 is the float tile kernel for AVX2+FMA: 6 pixels × 16 channels
// in Y0…Y11; the step's 16 int8 weights become floats in Y12 and Y13.
func fmaAVX2x6() {
	const mr = 6
	name := "fmaAVX2x6"
	build.TEXT(name, attr.NOSPLIT, fmaSig)
	build.Pragma("noescape")
	build.Doc(name+" is the AVX2 float tile kernel for 6 pixels; its pure-Go twin is fmaTileGo.",
		"len(rows) must be 6.")
	build.AllocLocal(3 * 32)
	prologue(4, mr)
	for i := 0; i < 2*mr; i++ {
		build.VXORPS(ymm(i), ymm(i), ymm(i))
	}
	addrs := pixelAddrs(mr)
	w0, w1, bc := reg.Y12, reg.Y13, reg.Y14
	build.TESTQ(count, count)
	build.JZ(operand.LabelRef(name + "_epilogue"))
	build.Label(name + "_loop")
	stepAddrs(4, mr)
	build.VPMOVSXBD(operand.Mem{Base: wP}, w0)
	build.VPMOVSXBD(operand.Mem{Base: wP, Disp: 8}, w1)
	build.VCVTDQ2PS(w0, w0)
	build.VCVTDQ2PS(w1, w1)
	for j := 0; j < mr; j++ {
		build.VBROADCASTSS(addrs[j], bc)
		build.VFMADD231PS(w0, bc, ymm(2*j))
		build.VFMADD231PS(w1, bc, ymm(2*j+1))
	}
	build.ADDQ(operand.U8(16), wP)
	build.DECQ(count)
	build.JNZ(operand.LabelRef(name + "_loop"))
	build.Label(name + "_epilogue")
	epilogueY(name, mr)
}

// epilogueY is epilogueZ for AVX2, sums in Y0…Y(2mr-1) (pixel j in
// Y(2j), Y(2j+1)). Sixteen registers do not hold the sums, the four
// constants, the floor, a temporary and the running maximum, so pixel 0
// waits in the stack frame (its first 64 bytes) until pixel 1 is stored,
// and the maximum lives there too (bytes 64…95); a version with and one
// without the load of flagAccum saves a register for its mask.
func epilogueY(name string, mr int) {
	spill := operand.Mem{Base: reg.SP}
	big := spill.Offset(64)
	build.VMOVUPS(ymm(0), spill)
	build.VMOVUPS(ymm(1), spill.Offset(32))
	build.VXORPS(ymm(0), ymm(0), ymm(0))
	build.VMOVUPS(ymm(0), big)
	scale := []reg.VecPhysical{reg.Y12, reg.Y13}
	mask := []reg.VecPhysical{reg.Y14, reg.Y15}
	floor, t := reg.Y0, reg.Y1
	build.Load(build.Param("scale").Base(), tmp)
	build.VMOVUPS(operand.Mem{Base: tmp}, scale[0])
	build.VMOVUPS(operand.Mem{Base: tmp, Disp: 32}, scale[1])
	build.Load(build.Param("n"), count)
	build.MOVQ(operand.U32(16), tmp)
	build.SUBQ(count, tmp)
	build.LEAQ(colMask, tmp2)
	build.VMOVDQU(operand.Mem{Base: tmp2, Index: tmp, Scale: 4}, mask[0])
	build.VMOVDQU(operand.Mem{Base: tmp2, Index: tmp, Scale: 4, Disp: 32}, mask[1])
	build.Load(build.Param("flags"), tmp2)
	build.VXORPS(floor, floor, floor)
	build.TESTQ(operand.U32(flagReLU), tmp2)
	build.JNZ(operand.LabelRef(name + "_floor"))
	build.VBROADCASTSS(negInf, floor)
	build.Label(name + "_floor")
	biasP, rowsP, outP := aBase, offP, wP
	build.Load(build.Param("bias").Base(), biasP)
	build.Load(build.Param("rows").Base(), rowsP)
	build.Load(build.Param("out").Base(), outP)
	order := make([]int, 0, mr)
	for j := 1; j < mr; j++ {
		order = append(order, j)
	}
	order = append(order, 0)
	for _, accum := range []bool{true, false} {
		prefix := name + "_noaccum"
		if accum {
			prefix = name + "_accum"
			build.TESTQ(operand.U32(flagAccum), tmp2)
			build.JZ(operand.LabelRef(name + "_noaccum"))
		} else {
			build.Label(prefix)
		}
		for _, j := range order {
			skip := fmt.Sprintf("%s_skip%d", prefix, j)
			build.MOVQ(operand.Mem{Base: rowsP, Disp: 8 * j}, tmp)
			build.TESTQ(tmp, tmp)
			build.JS(operand.LabelRef(skip))
			build.LEAQ(operand.Mem{Base: outP, Index: tmp, Scale: 4}, tmp)
			for h := 0; h < 2; h++ {
				v := ymm(2*j + h)
				if j == 0 {
					v = ymm(2 + h) // pixel 1 is done with them
					build.VMOVUPS(spill.Offset(32*h), v)
				}
				m := operand.Mem{Base: tmp, Disp: 32 * h}
				build.VFMADD213PS(operand.Mem{Base: biasP, Disp: 32 * h}, scale[h], v)
				if accum {
					build.VMASKMOVPS(m, mask[h], t)
					build.VADDPS(t, v, v)
				}
				build.VMAXPS(v, floor, v)
				build.VMASKMOVPS(v, mask[h], m)
				// big = max(|v|, big) in the stored lanes (0 elsewhere).
				build.VANDPS(v, mask[h], t)
				build.VBROADCASTSS(absMask, v)
				build.VANDPS(v, t, t)
				build.VMAXPS(big, t, t)
				build.VMOVUPS(t, big)
			}
			build.Label(skip)
		}
		build.JMP(operand.LabelRef(name + "_done"))
	}
	build.Label(name + "_done")
	build.VMOVUPS(big, reg.Y2)
	reduceMax(reg.Y2)
}

// quantizeAVX2 quantises 32 floats per iteration: scale, clamp to
// [-256, 256] (NaN to -256), round to nearest even, add the zero point,
// saturate to bytes with two packs and undo their lane interleaving.
func quantizeAVX2() {
	name := "quantizeAVX2"
	build.TEXT(name, attr.NOSPLIT, "func(x []float32, dst []byte, inv float32, z int32)")
	build.Pragma("noescape")
	build.Doc(name + " quantises len(x) (a multiple of 32) floats; its pure-Go twin is quantizeGo.")
	xp, dp, n := reg.RSI, reg.RDI, reg.RCX
	build.Load(build.Param("x").Base(), xp)
	build.Load(build.Param("x").Len(), n)
	build.Load(build.Param("dst").Base(), dp)
	inv, z, lo, hi, perm := reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12
	build.VBROADCASTSS(paramAddr("inv"), inv)
	build.Load(build.Param("z"), reg.EAX)
	build.VMOVD(reg.EAX, reg.X9)
	build.VPBROADCASTD(reg.X9, z)
	build.VBROADCASTSS(clampLo, lo)
	build.VBROADCASTSS(clampHi, hi)
	build.VMOVDQU(permQ, perm)
	build.SHRQ(operand.U8(5), n)
	build.JZ(operand.LabelRef(name + "_done"))
	build.Label(name + "_loop")
	for i := 0; i < 4; i++ {
		y := ymm(i)
		build.VMULPS(operand.Mem{Base: xp, Disp: 32 * i}, inv, y)
		build.VMAXPS(lo, y, y) // NaN gives lo
		build.VMINPS(hi, y, y)
		build.VCVTPS2DQ(y, y)
		build.VPADDD(z, y, y)
	}
	build.VPACKSSDW(reg.Y1, reg.Y0, reg.Y0)
	build.VPACKSSDW(reg.Y3, reg.Y2, reg.Y2)
	build.VPACKUSWB(reg.Y2, reg.Y0, reg.Y0)
	build.VPERMD(reg.Y0, perm, reg.Y0)
	build.VMOVDQU(reg.Y0, operand.Mem{Base: dp})
	build.ADDQ(operand.U8(128), xp)
	build.ADDQ(operand.U8(32), dp)
	build.DECQ(n)
	build.JNZ(operand.LabelRef(name + "_loop"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// absMaxAVX2 keeps four running maxima of |x| (NaN never replaces one).
func absMaxAVX2() {
	name := "absMaxAVX2"
	build.TEXT(name, attr.NOSPLIT, "func(x []float32) float32")
	build.Pragma("noescape")
	build.Doc(name + " returns the largest |x[i]| of len(x) (a multiple of 32) floats; its pure-Go twin is absMaxGo.")
	xp, n := reg.RSI, reg.RCX
	build.Load(build.Param("x").Base(), xp)
	build.Load(build.Param("x").Len(), n)
	mask := reg.Y8
	build.VBROADCASTSS(absMask, mask)
	for i := 0; i < 4; i++ {
		build.VXORPS(ymm(i), ymm(i), ymm(i))
	}
	build.SHRQ(operand.U8(5), n)
	build.JZ(operand.LabelRef(name + "_reduce"))
	build.Label(name + "_loop")
	for i := 0; i < 4; i++ {
		build.VANDPS(operand.Mem{Base: xp, Disp: 32 * i}, mask, ymm(4+i))
		build.VMAXPS(ymm(i), ymm(4+i), ymm(i)) // a NaN in Y(4+i) gives Y(i)
	}
	build.ADDQ(operand.U8(128), xp)
	build.DECQ(n)
	build.JNZ(operand.LabelRef(name + "_loop"))
	build.Label(name + "_reduce")
	build.VMAXPS(reg.Y1, reg.Y0, reg.Y0)
	build.VMAXPS(reg.Y3, reg.Y2, reg.Y2)
	build.VMAXPS(reg.Y2, reg.Y0, reg.Y0)
	build.VEXTRACTF128(operand.U8(1), reg.Y0, reg.X1)
	build.VMAXPS(reg.X1, reg.X0, reg.X0)
	build.VMOVHLPS(reg.X0, reg.X0, reg.X1)
	build.VMAXPS(reg.X1, reg.X0, reg.X0)
	build.VPSHUFD(operand.U8(1), reg.X0, reg.X1)
	build.VMAXSS(reg.X1, reg.X0, reg.X0)
	build.VZEROUPPER()
	build.Store(reg.X0, build.ReturnIndex(0))
	build.RET()
}

// addAVX2 adds 32 floats per iteration and clamps at the floor (0 or -inf).
func addAVX2() {
	name := "addAVX2"
	build.TEXT(name, attr.NOSPLIT, "func(dst []float32, a []float32, b []float32, relu bool)")
	build.Pragma("noescape")
	build.Doc(name + " sets dst = a + b (clamped at 0 when relu) for len(dst) (a multiple of 32) floats; its pure-Go twin is addGo.")
	dp, ap, bp, n := reg.RDI, reg.RSI, reg.RDX, reg.RCX
	build.Load(build.Param("dst").Base(), dp)
	build.Load(build.Param("dst").Len(), n)
	build.Load(build.Param("a").Base(), ap)
	build.Load(build.Param("b").Base(), bp)
	build.Load(build.Param("relu"), tmp)
	floor := reg.Y8
	build.VXORPS(floor, floor, floor)
	build.TESTB(tmp.As8(), tmp.As8())
	build.JNZ(operand.LabelRef(name + "_floor"))
	build.VBROADCASTSS(negInf, floor)
	build.Label(name + "_floor")
	build.SHRQ(operand.U8(5), n)
	build.JZ(operand.LabelRef(name + "_done"))
	build.Label(name + "_loop")
	for i := 0; i < 4; i++ {
		y := ymm(i)
		build.VMOVUPS(operand.Mem{Base: ap, Disp: 32 * i}, y)
		build.VADDPS(operand.Mem{Base: bp, Disp: 32 * i}, y, y)
		build.VMAXPS(y, floor, y)
		build.VMOVUPS(y, operand.Mem{Base: dp, Disp: 32 * i})
	}
	build.ADDQ(operand.U8(128), ap)
	build.ADDQ(operand.U8(128), bp)
	build.ADDQ(operand.U8(128), dp)
	build.DECQ(n)
	build.JNZ(operand.LabelRef(name + "_loop"))
	build.Label(name + "_done")
	build.VZEROUPPER()
	build.RET()
}

// paramAddr is the stack address of a scalar argument, to broadcast from.
func paramAddr(name string) operand.Mem {
	b, err := build.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}
