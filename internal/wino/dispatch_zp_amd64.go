//go:build amd64 && !noasm

package wino

import "golang.org/x/sys/cpu"

// newZPKernels4p returns the AVX-512 packed kernels where the CPU has what
// the other AVX-512 kernels need (see dispatch_z_amd64.go) and AVX512BW,
// for the byte shifts within 128-bit lanes (VPSLLDQ, VPSRLDQ) on zmm that
// bring in the neighbouring tiles.
func newZPKernels4p() *kernels4 {
	x := cpu.X86
	if !hasAsm || !x.HasAVX512F || !x.HasAVX512DQ || !x.HasAVX512VL || !x.HasAVX512BW {
		return nil
	}
	return &kernels4{in: in4zp, out: out4zp, outT: outT4zp, inT: inT4zp}
}
