//go:build !amd64 || noasm

package wino

const hasAsm = false

// asmKernels stands in for the assembly so that tests compile everywhere;
// they skip the comparison when hasAsm is false.
var asmKernels = goKernels

var active = goKernels
