//go:build amd64 && !noasm

package wino

import "golang.org/x/sys/cpu"

// hasAsm reports whether this CPU runs the assembly kernels. x/sys/cpu also
// checks that the OS saves ymm state, which CPUID alone does not tell.
var hasAsm = cpu.X86.HasAVX2

var asmKernels = kernels{in: in, out: out, outT: outT, inT: inT}

var active = func() kernels {
	if hasAsm {
		return asmKernels
	}
	return goKernels
}()
