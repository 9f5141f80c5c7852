//go:build !amd64 || noasm

package wino

func newZPKernels4p() *kernels4 { return nil }
