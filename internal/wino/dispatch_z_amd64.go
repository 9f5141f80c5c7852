//go:build amd64 && !noasm

package wino

import (
	"os"

	"golang.org/x/sys/cpu"
)

// The AVX-512 kernels use opmask loads and stores, VINSERTF32X8 and
// VEXTRACTF32X8 (DQ) and EVEX encodings of ymm instructions (VL);
// x/sys/cpu also checks that the OS saves the zmm and opmask state.
// TNN_WINO=avx2 keeps the AVX2 kernels, to compare the two.
func init() {
	x := cpu.X86
	if !hasAsm || !x.HasAVX512F || !x.HasAVX512DQ || !x.HasAVX512VL {
		return
	}
	zKernels4 = &kernels4{in: in4z, out: out4z, outT: outT4z, inT: inT4z}
	// The packed kernels' own AVX-512 set (wino_zp.go) also needs
	// AVX512BW; without it the AVX2 packed kernels stand in.
	zKernels4p = zpKernels4p
	if zKernels4p == nil {
		zKernels4p = &kernels4{in: in4p, out: out4p, outT: outT4p, inT: inT4p}
	}
	if os.Getenv("TNN_WINO") == "avx2" {
		return
	}
	active4, active4p = *zKernels4, *zKernels4p
}
