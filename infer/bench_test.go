package infer

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
)

// cifarModel is a freshly initialised tern_resnet20 for 3×32×32 input,
// packed: the shape `tnn bench infer` measures.
func cifarModel(b *testing.B) *packed.Model { return cifarModelT(b) }

func cifarModelT(b testing.TB) *packed.Model {
	s, err := models.New("tern_resnet20", models.Config{InC: 3, H: 32, W: 32, Classes: 10})
	if err != nil {
		b.Fatal(err)
	}
	net, err := models.Build(s, models.Options{})
	if err != nil {
		b.Fatal(err)
	}
	net.Init(1)
	randomizeBN(net, 2)
	m, err := packed.FromNet(net, packed.Options{Packing: packed.Bits, TEx: 1, TFactor: 0.05,
		Norm: packed.Norm{Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}}})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkForward times whole forward passes of tern_resnet20 on CIFAR
// shapes with every kernel set this CPU runs; img/s is what
// `tnn bench infer` reports.
func BenchmarkForward(b *testing.B) {
	m := cifarModel(b)
	for _, ks := range kernelSets {
		for _, q8 := range []bool{false, true} {
			e, err := newWith(m, Options{Int8: q8}, ks)
			if err != nil {
				b.Fatal(err)
			}
			for _, batch := range []int{1, 128} {
				mode := "exact"
				if q8 {
					mode = "int8"
				}
				b.Run(fmt.Sprintf("%s/%s/batch=%d", ks.name, mode, batch), func(b *testing.B) {
					x := tensor.New(batch, 3, 32, 32)
					r := rand.New(rand.NewPCG(1, 1))
					for i := range x.Data {
						x.Data[i] = float32(r.NormFloat64())
					}
					if _, err := e.Forward(x); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						e.Forward(x)
					}
					b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
				})
			}
		}
	}
}

// BenchmarkTile times the tile kernels alone on the 3×3 layers of
// ResNet-20 (c → c channels, padded width wp), with the steps and strides
// the engine calls them with.
func BenchmarkTile(b *testing.B) {
	sets := append([]*kernelSet{&goKernels}, kernelSets...)
	for _, ks := range sets {
		for _, q8 := range []bool{false, true} {
			kerns, group := ks.fmas, 1
			if q8 {
				kerns, group = ks.dots, 4
			}
			for _, k := range kerns {
				for _, c := range []int{16, 64} {
					wp := 34
					steps := 9 * c / group
					offs := make([]int32, steps)
					for t := 0; t < 9; t++ {
						for g := 0; g < c/group; g++ {
							offs[t*c/group+g] = int32(((t/3)*wp+t%3)*c + g*group)
						}
					}
					w := make([]int8, steps*k.bw*group)
					rows := make([]int, k.mr)
					for j := range rows {
						rows[j] = j * k.bw
					}
					out := make([]float32, k.mr*k.bw)
					scale := make([]float32, k.bw)
					bias := make([]float32, k.bw)
					aLen := (3*wp + k.mr) * c
					b.Run(fmt.Sprintf("%s/%s/c=%d", ks.name, k.name, c), func(b *testing.B) {
						if q8 {
							a := make([]byte, aLen)
							for i := 0; i < b.N; i++ {
								k.dot(a, c, offs, w, out, rows, scale, bias, k.bw, flagReLU)
							}
						} else {
							a := make([]float32, aLen)
							for i := 0; i < b.N; i++ {
								k.fma(a, c, offs, w, out, rows, scale, bias, k.bw, flagReLU)
							}
						}
						macs := float64(b.N) * float64(k.mr*k.bw*9*c)
						b.ReportMetric(macs/b.Elapsed().Seconds()/1e9, "GMAC/s")
					})
				}
			}
		}
	}
}
