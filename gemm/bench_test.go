package gemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
)

type benchShape struct {
	name        string
	tA, tB      bool
	m, n, k     int
	alpha, beta float32
}

func benchShapes() []benchShape {
	var s []benchShape
	for _, d := range []int{256, 512, 1024, 2048} {
		s = append(s, benchShape{name: fmt.Sprintf("sq%d", d), m: d, n: d, k: d, alpha: 1})
	}
	return append(s,
		// The convolutions of a CIFAR ResNet-20 as nn.Conv2d issues them,
		// per image. Forward, and the input gradient of stride-1 layers
		// (the same shapes): Cout × H*W × Cin*9.
		benchShape{name: "r20fwd16x1024x27", m: 16, n: 1024, k: 27, alpha: 1},
		benchShape{name: "r20fwd16x1024x144", m: 16, n: 1024, k: 144, alpha: 1},
		benchShape{name: "r20fwd32x256x144", m: 32, n: 256, k: 144, alpha: 1},
		benchShape{name: "r20fwd32x256x288", m: 32, n: 256, k: 288, alpha: 1},
		benchShape{name: "r20fwd64x64x288", m: 64, n: 64, k: 288, alpha: 1},
		benchShape{name: "r20fwd64x64x576", m: 64, n: 64, k: 576, alpha: 1},
		// Weight gradient, dW += dY · colᵀ: Cout × Cin*9 × H*W.
		benchShape{name: "r20bwdW16x27x1024_tB", tB: true, m: 16, n: 27, k: 1024, alpha: 1, beta: 1},
		benchShape{name: "r20bwdW16x144x1024_tB", tB: true, m: 16, n: 144, k: 1024, alpha: 1, beta: 1},
		benchShape{name: "r20bwdW32x144x256_tB", tB: true, m: 32, n: 144, k: 256, alpha: 1, beta: 1},
		benchShape{name: "r20bwdW32x288x256_tB", tB: true, m: 32, n: 288, k: 256, alpha: 1, beta: 1},
		benchShape{name: "r20bwdW64x288x64_tB", tB: true, m: 64, n: 288, k: 64, alpha: 1, beta: 1},
		benchShape{name: "r20bwdW64x576x64_tB", tB: true, m: 64, n: 576, k: 64, alpha: 1, beta: 1},
		// The same weight gradients with the patch matrix built
		// transposed (H*W × Cin*9), which makes them plain products.
		benchShape{name: "r20bwdW16x144x1024_nn", m: 16, n: 144, k: 1024, alpha: 1, beta: 1},
		benchShape{name: "r20bwdW32x288x256_nn", m: 32, n: 288, k: 256, alpha: 1, beta: 1},
		benchShape{name: "r20bwdW64x576x64_nn", m: 64, n: 576, k: 64, alpha: 1, beta: 1},
		// Input gradient of the stride-2 layers, Wᵀ · dY before col2im:
		// Cin*9 × H*W × Cout.
		benchShape{name: "r20bwdD144x256x32_tA", tA: true, m: 144, n: 256, k: 32, alpha: 1},
		benchShape{name: "r20bwdD288x64x64_tA", tA: true, m: 288, n: 64, k: 64, alpha: 1},
		// ImageNet-sized convolutions and linear layers (batch 128).
		benchShape{name: "conv128x196x1152", m: 128, n: 196, k: 1152, alpha: 1},
		benchShape{name: "conv512x49x4608", m: 512, n: 49, k: 4608, alpha: 1},
		benchShape{name: "bwdData1152x49x128_tA", tA: true, m: 1152, n: 49, k: 128, alpha: 1},
		benchShape{name: "linear128x1024x4096_tB", tB: true, m: 128, n: 1024, k: 4096, alpha: 1},
		benchShape{name: "linearGradW1024x4096x128_tA", tA: true, m: 1024, n: 4096, k: 128, alpha: 1},
	)
}

// benchSets are the kernel sets the benchmarks compare: every assembly set
// this CPU runs, then the pure-Go one.
func benchSets() []*kernels {
	return append(append([]*kernels(nil), asmSets...), &goKernels)
}

// BenchmarkSgemm reports GFLOP/s (2mnk per product) for each kernel set,
// single-threaded. The pure-Go set, a tenth as fast, runs only the smaller
// products.
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
		flop := 2 * float64(sh.m) * float64(sh.n) * float64(sh.k)
		for _, ks := range benchSets() {
			if len(asmSets) > 0 && ks == &goKernels && flop > 1e9 {
				continue
			}
			b.Run(sh.name+"/"+ks.name, func(b *testing.B) {
				b.ReportAllocs()
				// One call first, so that the workspace is in the free
				// list and the loop measures the steady state.
				sgemmWith(ks, sh.tA, sh.tB, sh.m, sh.n, sh.k, sh.alpha, a, lda, bm, ldb, sh.beta, c, sh.n)
				for b.Loop() {
					sgemmWith(ks, sh.tA, sh.tB, sh.m, sh.n, sh.k, sh.alpha, a, lda, bm, ldb, sh.beta, c, sh.n)
				}
				b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkSgemmParallel times square products split over internal/parallel
// workers the way a caller would parallelise one big product, since Sgemm
// itself is single-threaded: each worker computes a block of whole rows (m)
// or whole columns (n) of C with its own Sgemm call, blocks a multiple of 32
// so that every tile stays full. Run with -cpu to pick the worker count; it
// is the comparison point for a multi-threaded BLAS.
func BenchmarkSgemmParallel(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, d := range []int{1024, 2048} {
		a := randSlice(r, d*d)
		bm := randSlice(r, d*d)
		c := make([]float32, d*d)
		for _, ks := range asmSets {
			for _, split := range []string{"m", "n"} {
				b.Run(fmt.Sprintf("sq%d/%s/split%s", d, ks.name, split), func(b *testing.B) {
					defer parallel.SetThreads(parallel.Threads())
					parallel.SetThreads(runtime.GOMAXPROCS(0))
					blocks := (d + 31) / 32
					run := func() {
						parallel.For(blocks, func(lo, hi, _ int) {
							i0, i1 := lo*32, min(hi*32, d)
							if split == "m" {
								sgemmWith(ks, false, false, i1-i0, d, d, 1, a[i0*d:], d, bm, d, 0, c[i0*d:], d)
							} else {
								sgemmWith(ks, false, false, d, i1-i0, d, 1, a, d, bm[i0:], d, 0, c[i0:], d)
							}
						})
					}
					run()
					for b.Loop() {
						run()
					}
					b.ReportMetric(2*float64(d)*float64(d)*float64(d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkKernel times the micro-kernels alone on L1-resident packed
// panels, the ceiling for everything above them.
func BenchmarkKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	const k = 256
	for _, ks := range benchSets() {
		for _, narrow := range []bool{false, true} {
			f, bw := ks.wide[0], ks.nr
			if narrow {
				f, bw = ks.narrow[0], ks.nr/2
			}
			mr := ks.mr
			a := randSlice(r, mr*k)
			bp := randSlice(r, bw*k)
			c := randSlice(r, mr*bw)
			b.Run(fmt.Sprintf("%s/%dx%d", ks.name, mr, bw), func(b *testing.B) {
				for b.Loop() {
					f(k, a, 1, mr, bp, bw, c, bw, mr, bw, 1, 0, false)
				}
				b.ReportMetric(2*float64(mr*bw)*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
