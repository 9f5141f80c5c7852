package data

import (
	"math"
	"testing"
)

// TestDebianFashionMNIST reads the real files of Debian's
// dataset-fashion-mnist package when it is installed.
func TestDebianFashionMNIST(t *testing.T) {
	if !isDir(systemDirs["fashion-mnist"]) {
		t.Skip("Debian dataset-fashion-mnist is not installed")
	}
	tr, err := Load("fashion-mnist", "", true)
	if err != nil {
		t.Fatal(err)
	}
	te, err := Load("fashion-mnist", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if tr.N != 60000 || te.N != 10000 || tr.C != 1 || tr.H != 28 || tr.W != 28 {
		t.Fatalf("got train %d test %d images of %dx%dx%d", tr.N, te.N, tr.C, tr.H, tr.W)
	}
	var counts [10]int
	for _, l := range tr.Labels {
		counts[l]++
	}
	for c, n := range counts {
		if n != 6000 {
			t.Errorf("class %d has %d training images, want 6000", c, n)
		}
	}
	var s, s2 float64
	for _, p := range tr.Pixels {
		v := float64(p) / 255
		s += v
		s2 += v * v
	}
	n := float64(len(tr.Pixels))
	mean := s / n
	std := math.Sqrt(s2/n - mean*mean)
	t.Logf("Fashion-MNIST training mean %.10f std %.10f", mean, std)
	if math.Abs(mean-fashionMean) > 1e-7 || math.Abs(std-fashionStd) > 1e-7 {
		t.Errorf("training mean/std %.7f/%.7f differ from the constants %.7f/%.7f", mean, std, fashionMean, fashionStd)
	}
	// The embedded sample must be the leading records of the real files.
	for _, train := range []bool{true, false} {
		full := te
		if train {
			full = tr
		}
		smp, err := Load("fashion-mnist-sample", "ignored", train)
		if err != nil {
			t.Fatal(err)
		}
		for i := range smp.N {
			if smp.Labels[i] != full.Labels[i] || string(smp.Image(i)) != string(full.Image(i)) {
				t.Fatalf("sample record %d (train=%v) differs from the real file", i, train)
			}
		}
	}
}
