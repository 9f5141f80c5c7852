package models

import (
	"math/rand/v2"
	"testing"

	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
)

// benchStep times one forward+backward of arch on CIFAR-shaped random data
// (the optimizer step is a few percent of it and lives in package optim).
func benchStep(b *testing.B, arch string, batch int, train bool) {
	benchMode(b, arch, batch, train, false)
}

// BenchmarkPredictResNet20 is BenchmarkInferResNet20 with the BatchNorms
// folded into the convolutions (Net.Predict).
func BenchmarkPredictResNet20(b *testing.B) { benchMode(b, "resnet20", 128, false, true) }

func benchMode(b *testing.B, arch string, batch int, train, predict bool) {
	s, err := New(arch, Config{InC: 3, H: 32, W: 32, Classes: 10})
	if err != nil {
		b.Fatal(err)
	}
	n, err := Build(s, Options{})
	if err != nil {
		b.Fatal(err)
	}
	n.Init(1)
	r := rand.New(rand.NewPCG(1, 2))
	x := tensor.New(batch, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	y := make([]int32, batch)
	for i := range y {
		y[i] = int32(r.IntN(10))
	}
	var ce nn.CrossEntropy
	step := func() {
		if predict {
			ce.Forward(n.Predict(x), y)
			return
		}
		logits := n.Forward(x, train)
		ce.Forward(logits, y)
		if train {
			n.Backward(ce.Backward())
		}
	}
	step()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
}

func BenchmarkTrainStepTernResNet20(b *testing.B) { benchStep(b, "tern_resnet20", 128, true) }
func BenchmarkTrainStepResNet20(b *testing.B)     { benchStep(b, "resnet20", 128, true) }
func BenchmarkInferResNet20(b *testing.B)         { benchStep(b, "resnet20", 128, false) }

// TestTrainStepDoesNotAllocate checks on a small input what the benchmarks
// show with -benchmem: once its buffers are sized, a training step (forward,
// loss, backward) of a ternary ResNet allocates nothing.
func TestTrainStepDoesNotAllocate(t *testing.T) {
	s, err := New("tern_resnet20", Config{InC: 3, H: 8, W: 8, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Build(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Init(1)
	r := rand.New(rand.NewPCG(3, 4))
	x := tensor.New(4, 3, 8, 8)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	y := []int32{1, 2, 3, 4}
	var ce nn.CrossEntropy
	step := func() {
		ce.Forward(n.Forward(x, true), y)
		n.Backward(ce.Backward())
	}
	// Forced Winograd too: this small input is below ConvAuto's threshold,
	// and the layers share their temporaries, so a path that sizes them by
	// len rather than cap would allocate at every layer.
	for _, algo := range []nn.ConvAlgo{nn.ConvAuto, nn.ConvWinograd4, nn.ConvWinograd, nn.ConvIm2col} {
		prev := nn.SetConvAlgo(algo)
		for i := 0; i < 3; i++ {
			step()
		}
		a := testing.AllocsPerRun(10, step)
		nn.SetConvAlgo(prev)
		if a != 0 {
			t.Errorf("%v: a training step allocates %v times", algo, a)
		}
	}
}
