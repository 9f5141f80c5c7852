//go:build amd64 && !noasm

package vec

import "golang.org/x/sys/cpu"

// hasAsm reports whether this CPU runs the assembly kernels. x/sys/cpu also
// checks that the OS saves ymm state, which CPUID alone does not tell.
var hasAsm = cpu.X86.HasAVX2

var asmKernels = kernels{
	rowStats: rowStats, normalize: normalize, normalizeReLU: normalizeReLU,
	gradStats: gradStats, gradStatsReLU: gradStatsReLU,
	gradApply: gradApply, gradApplyReLU: gradApplyReLU,
	add: add, addReLU: addReLU, relu: relu, maskPositive: maskPositive,
	im2colSame: im2colSame,
}

var active = func() kernels {
	if hasAsm {
		return asmKernels
	}
	return goKernels
}()
