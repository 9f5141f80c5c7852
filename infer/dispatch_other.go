//go:build !amd64 || noasm

package infer

// active is the pure-Go kernel set: no assembly on this build.
var active = &goKernels

// kernelSets lists the sets the tests compare with the Go twins.
var kernelSets = []*kernelSet{}
