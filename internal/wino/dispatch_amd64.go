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

var asmKernels4 = kernels4{in: in4, out: out4, outT: outT4, inT: inT4}

var active4 = func() kernels4 {
	if hasAsm {
		return asmKernels4
	}
	return goKernels4
}()

var asmKernels4p = kernels4{in: in4p, out: out4p, outT: outT4p, inT: inT4p}

var active4p = func() kernels4 {
	if hasAsm {
		return asmKernels4p
	}
	return goKernels4p
}()
