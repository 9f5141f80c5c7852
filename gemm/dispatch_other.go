//go:build !amd64 || noasm

package gemm

// asmSets is empty: this build has no assembly kernels.
var asmSets []*kernels
