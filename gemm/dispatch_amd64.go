//go:build amd64 && !noasm

package gemm

import "golang.org/x/sys/cpu"

// hasAsm reports whether this CPU runs the assembly kernels. x/sys/cpu also
// checks that the OS saves ymm state, which CPUID alone does not tell.
var hasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

var asmKernels = kernels{wide: kern6x16, narrow: kern6x8}

var active = func() kernels {
	if hasAsm {
		return asmKernels
	}
	return goKernels
}()
