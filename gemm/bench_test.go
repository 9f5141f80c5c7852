package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

type benchShape struct {
	name        string
	tA, tB      bool
	m, n, k     int
	alpha, beta float32
}

func benchShapes() []benchShape {
	var s []benchShape
	for _, d := range []int{64, 128, 256, 512, 1024} {
		s = append(s, benchShape{name: fmt.Sprintf("sq%d", d), m: d, n: d, k: d, alpha: 1})
	}
	return append(s,
		// Convolution forward per image: Cout × H*W × Cin*kh*kw.
		benchShape{name: "conv16x1024x27", m: 16, n: 1024, k: 27, alpha: 1},
		benchShape{name: "conv16x1024x144", m: 16, n: 1024, k: 144, alpha: 1},
		benchShape{name: "conv32x256x288", m: 32, n: 256, k: 288, alpha: 1},
		benchShape{name: "conv64x64x576", m: 64, n: 64, k: 576, alpha: 1},
		benchShape{name: "conv128x196x1152", m: 128, n: 196, k: 1152, alpha: 1},
		benchShape{name: "conv128x49x1152", m: 128, n: 49, k: 1152, alpha: 1},
		benchShape{name: "conv512x49x4608", m: 512, n: 49, k: 4608, alpha: 1},
		// Backward data: Wᵀ · dY, Cin*kh*kw × H*W × Cout.
		benchShape{name: "bwdData144x1024x16_tA", tA: true, m: 144, n: 1024, k: 16, alpha: 1},
		benchShape{name: "bwdData576x64x64_tA", tA: true, m: 576, n: 64, k: 64, alpha: 1},
		benchShape{name: "bwdData1152x49x128_tA", tA: true, m: 1152, n: 49, k: 128, alpha: 1},
		// Backward weights: dW += dY · colᵀ, Cout × Cin*kh*kw × H*W.
		benchShape{name: "bwdW16x144x1024_tB", tB: true, m: 16, n: 144, k: 1024, alpha: 1, beta: 1},
		benchShape{name: "bwdW64x576x64_tB", tB: true, m: 64, n: 576, k: 64, alpha: 1, beta: 1},
		benchShape{name: "bwdW128x1152x49_tB", tB: true, m: 128, n: 1152, k: 49, alpha: 1, beta: 1},
		// Linear layers with a batch of 128.
		benchShape{name: "linear128x1024x4096_tB", tB: true, m: 128, n: 1024, k: 4096, alpha: 1},
		benchShape{name: "linear128x64x512_tB", tB: true, m: 128, n: 64, k: 512, alpha: 1},
		benchShape{name: "linearGradW1024x4096x128_tA", tA: true, m: 1024, n: 4096, k: 128, alpha: 1},
	)
}

// BenchmarkSgemm reports GFLOP/s (2mnk per product) for the dispatching
// entry point and for the pure-Go path, single-threaded.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sh := range benchShapes() {
		lda, ldb := sh.k, sh.n
		if sh.tA {
			lda = sh.m
		}
		if sh.tB {
			ldb = sh.k
		}
		a := randSlice(r, sh.m*sh.k)
		bm := randSlice(r, sh.k*sh.n)
		c := randSlice(r, sh.m*sh.n)
		for _, im := range []struct {
			name string
			ks   *kernels
		}{{"active", &active}, {"go", &goKernels}} {
			if im.name == "go" && !hasAsm {
				continue
			}
			b.Run(sh.name+"/"+im.name, func(b *testing.B) {
				b.ReportAllocs()
				// One call first, so that the workspace is in the free
				// list and the loop measures the steady state.
				sgemmWith(im.ks, sh.tA, sh.tB, sh.m, sh.n, sh.k, sh.alpha, a, lda, bm, ldb, sh.beta, c, sh.n)
				for b.Loop() {
					sgemmWith(im.ks, sh.tA, sh.tB, sh.m, sh.n, sh.k, sh.alpha, a, lda, bm, ldb, sh.beta, c, sh.n)
				}
				flops := 2 * float64(sh.m) * float64(sh.n) * float64(sh.k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkKernel times the micro-kernels alone on L1-resident panels, the
// ceiling for everything above them.
func BenchmarkKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	const k = 256
	a := randSlice(r, mr*k)
	bp := randSlice(r, nr*k)
	c := randSlice(r, mr*nr)
	for _, kn := range []struct {
		name string
		f    kernelFunc
		bw   int
	}{{"asm6x16", asmKernels.wide[0], nr}, {"asm6x8", asmKernels.narrow[0], nrHalf}, {"go6x16", goKernels.wide[0], nr}} {
		b.Run(kn.name, func(b *testing.B) {
			for b.Loop() {
				kn.f(k, a, 1, mr, bp, kn.bw, c, kn.bw, mr, kn.bw, 1, 0, false)
			}
			b.ReportMetric(2*mr*float64(kn.bw)*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
