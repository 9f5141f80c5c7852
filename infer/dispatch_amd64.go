//go:build amd64 && !noasm

package infer

import "golang.org/x/sys/cpu"

// x/sys/cpu also checks that the OS saves the ymm and zmm state, which
// CPUID alone does not tell.
var (
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
	hasVNNI   = hasAVX512 && cpu.X86.HasAVX512VNNI
)

// The element-wise kernels handle multiples of 32; the Go twins finish.
func quantizeAsm(x []float32, dst []byte, inv float32, z int32) {
	n := len(x) &^ 31
	if n > 0 {
		quantizeAVX2(x[:n], dst[:n], inv, z)
	}
	quantizeGo(x[n:], dst[n:len(x)], inv, z)
}

func absMaxAsm(x []float32) float32 {
	n := len(x) &^ 31
	m := absMaxGo(x[n:])
	if n > 0 {
		m = max(m, absMaxAVX2(x[:n]))
	}
	return m
}

func addAsm(dst, a, b []float32, relu bool) {
	n := len(dst) &^ 31
	a, b = a[:len(dst)], b[:len(dst)]
	if n > 0 {
		addAVX2(dst[:n], a[:n], b[:n], relu)
	}
	addGo(dst[n:], a[n:], b[n:], relu)
}

var (
	dotAVX2 = []tileKernel{{name: "dotAVX2x6", mr: 6, bw: 16, dot: dotAVX2x6}}
	fmaAVX2 = []tileKernel{{name: "fmaAVX2x6", mr: 6, bw: 16, fma: fmaAVX2x6}}
	dotVNNI = []tileKernel{{name: "dotVNNI16x16", mr: 16, bw: 16, dot: dotVNNI16x16}, {name: "dotVNNI8x32", mr: 8, bw: 32, dot: dotVNNI8x32}}
	fmaZ    = []tileKernel{{name: "fmaZ16x16", mr: 16, bw: 16, fma: fmaZ16x16}, {name: "fmaZ8x32", mr: 8, bw: 32, fma: fmaZ8x32}}
)

var avx2Kernels = kernelSet{name: "avx2", dots: dotAVX2, fmas: fmaAVX2,
	quantize: quantizeAsm, absMax: absMaxAsm, add: addAsm}

// avx512Kernels keeps AVX2's int8 kernel on CPUs with AVX-512 but no VNNI.
var avx512Kernels = kernelSet{name: "avx512", dots: dotAVX2, fmas: fmaZ,
	quantize: quantizeAsm, absMax: absMaxAsm, add: addAsm}

var vnniKernels = kernelSet{name: "avx512-vnni", dots: dotVNNI, fmas: fmaZ,
	quantize: quantizeAsm, absMax: absMaxAsm, add: addAsm}

// kernelSets lists the sets this CPU runs, best first.
var kernelSets = func() []*kernelSet {
	var s []*kernelSet
	if hasVNNI {
		s = append(s, &vnniKernels)
	}
	if hasAVX512 {
		s = append(s, &avx512Kernels)
	}
	if hasAVX2 {
		s = append(s, &avx2Kernels)
	}
	return s
}()

var active = func() *kernelSet {
	if len(kernelSets) > 0 {
		return kernelSets[0]
	}
	return &goKernels
}()
