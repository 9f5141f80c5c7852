//go:build !amd64 || noasm

package wino

const hasAsm = false

// asmKernels stands in for the assembly so that tests compile everywhere;
// they skip the comparison when hasAsm is false.
var asmKernels = goKernels

var active = goKernels

var asmKernels4 = goKernels4

var active4 = goKernels4

var asmKernels4p = goKernels4p

var active4p = goKernels4p
