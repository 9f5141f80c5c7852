//go:build amd64 && !noasm

package gemm

import "golang.org/x/sys/cpu"

// x/sys/cpu also checks that the OS saves ymm and zmm state, which CPUID
// alone does not tell. The AVX-512 set borrows the AVX2 packing routines.
var (
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F
)

// avx2Kernels: 6×16 tiles in ymm registers, 12 accumulators.
var avx2Kernels = kernels{
	name: "avx2", mr: 6, nr: 16, heights: [3]int{6, 4, 2}, kc: 256, inplaceMaxM: 128,
	wide:     [3]kernelFunc{kern6x16, kern4x16, kern2x16},
	narrow:   [3]kernelFunc{kern6x8, kern4x8, kern2x8},
	copyRows: copyRows16, copyNarrow: copyB8, trans: trans8, trans16: trans16, transAdd: trans8Add, transAdd16: trans16Add,
	twin: &goKernels,
}

// avx512Kernels: 8×32 tiles in zmm registers, 16 accumulators, twice the
// work per instruction of avx2Kernels. The blocking is the same: a panel of
// B is then 32 KiB at kc = 256, and larger or smaller K blocks measured no
// better.
var avx512Kernels = kernels{
	name: "avx512", mr: 8, nr: 32, heights: [3]int{8, 4, 2}, kc: 256, inplaceMaxM: 128,
	wide:     [3]kernelFunc{kernZ8x32, kernZ4x32, kernZ2x32},
	narrow:   [3]kernelFunc{kernZ8x16, kernZ4x16, kernZ2x16},
	copyRows: copyRows32, copyNarrow: copyB16, trans: trans8, trans16: trans16, transAdd: trans8Add, transAdd16: trans16Add,
	twin: &goKernels512,
}

// asmSets are the assembly kernel sets this CPU runs, fastest first.
var asmSets = func() []*kernels {
	var s []*kernels
	if hasAVX512 {
		s = append(s, &avx512Kernels)
	}
	if hasAVX2 {
		s = append(s, &avx2Kernels)
	}
	return s
}()
