package gemm

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// ErrKernels is returned by SetKernels for a kernel set that does not exist
// or that this build or CPU cannot run.
var ErrKernels = errors.New("gemm: kernel set not available")

// active is the set Sgemm uses; an atomic pointer so that SetKernels may run
// while products are in flight (each call keeps the set it started with).
var active atomic.Pointer[kernels]

func init() {
	active.Store(sets()[0])
	if name := os.Getenv("TNN_GEMM"); name != "" {
		// An unknown or unsupported name leaves the default: the variable
		// only ever asks for a slower set, never for correctness.
		_ = SetKernels(name)
	}
}

// sets lists the kernel sets this build and CPU can run, fastest first; the
// pure-Go one is always last.
func sets() []*kernels {
	return append(append([]*kernels(nil), asmSets...), &goKernels)
}

// AvailableKernels returns the names of the kernel sets this build and CPU
// can run, fastest first: some of "avx512", "avx2", then "go".
func AvailableKernels() []string {
	var names []string
	for _, ks := range sets() {
		names = append(names, ks.name)
	}
	return names
}

// Kernels returns the name of the kernel set Sgemm uses.
func Kernels() string { return active.Load().name }

// SetKernels makes Sgemm use the named kernel set (see AvailableKernels),
// for benchmarks and for comparing results across instruction sets.
func SetKernels(name string) error {
	for _, ks := range sets() {
		if ks.name == name {
			active.Store(ks)
			return nil
		}
	}
	return fmt.Errorf("%w: %q (have %v)", ErrKernels, name, AvailableKernels())
}
