//go:build amd64 && !noasm

package gemm

import "golang.org/x/sys/cpu"

// hasAsm reports whether this CPU runs the assembly kernels. x/sys/cpu also
// checks that the OS saves ymm state, which CPUID alone does not tell.
var hasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

var asmKernels = kernels{
	wide:     [3]kernelFunc{kern6x16, kern4x16, kern2x16},
	narrow:   [3]kernelFunc{kern6x8, kern4x8, kern2x8},
	copyRows: copyRows16, copyNarrow: copyB8,
	transWide: transB16, transNarrow: transB8,
}

var active = func() kernels {
	if hasAsm {
		return asmKernels
	}
	return goKernels
}()
