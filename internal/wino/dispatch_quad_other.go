//go:build !amd64 || noasm

package wino

// asmKernelsQ stands in for the assembly so that tests compile everywhere;
// they skip the comparison when hasAsm is false.
var asmKernelsQ = goKernelsQ

var activeQ = goKernelsQ
