package train

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tnn-go/tnn/data"
)

// debianFashion is where Debian's dataset-fashion-mnist package installs the
// files; CI installs it.
const debianFashion = "/usr/share/datasets/fashion-mnist"

// realSubset writes the first nTrain/nTest real Fashion-MNIST images as IDX
// files into a temporary folder, or skips the test when the data is absent.
func realSubset(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	if testing.Short() {
		t.Skip("trains on real data for about a minute")
	}
	if _, err := os.Stat(filepath.Join(debianFashion, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skip("Debian's dataset-fashion-mnist is not installed")
	}
	dir := t.TempDir()
	copySplit := func(train bool, prefix string, n int) {
		ds, err := data.Load("fashion-mnist", debianFashion, train)
		if err != nil {
			t.Fatal(err)
		}
		ds = ds.Subset(n)
		lab := make([]byte, ds.N)
		for i, l := range ds.Labels {
			lab[i] = byte(l)
		}
		writeIDX(t, filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"), []int{ds.N, 28, 28}, ds.Pixels)
		writeIDX(t, filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"), []int{ds.N}, lab)
	}
	copySplit(true, "train", nTrain)
	copySplit(false, "t10k", nTest)
	return dir
}

// TestLearnsRealFashionMNIST trains a ternary ResNet-20 on the first 2,000
// real Fashion-MNIST training images for 3 epochs and evaluates on the first
// 1,000 test images.
//
// How the threshold was chosen: this test run on a correct engine and on two
// deliberately broken copies of package ternary (seed 5000, 2 threads):
//
//	working engine                                  61.9 % top-1 (67.6 % with an
//	                                                earlier build: summation order)
//	straight-through gradient always 0              28.6 %  (only BatchNorm learns)
//	α always 0 (every ternary weight is 0)          10.5 %  (constant logits)
//
// 50 % lies well clear of both failures and of the working run. Subtler
// errors (a missing |W| ≥ 1 cut, α averaged over the wrong set) still learn
// here; the hand-computed tests in package ternary and the PyTorch-parity
// fixtures catch those.
func TestLearnsRealFashionMNIST(t *testing.T) {
	dir := realSubset(t, 2000, 1000)
	c := Defaults()
	c.Dataset = "fashion-mnist"
	c.DataPath = dir
	c.Arch = "tern_resnet20"
	c.Epochs = 3
	c.SavePath = t.TempDir()
	c.PrintFreq = 1000
	sum, err := Run(context.Background(), c, ioDiscard{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tern_resnet20, 2000 images, 3 epochs: test top-1 %.2f (best %.2f), %.0f img/s", sum.FinalTop1, sum.BestTop1, sum.TrainImgPerS)
	if sum.FinalTop1 < 50 {
		t.Fatalf("test top-1 %.2f%% after 3 epochs; a working ternary engine reaches ~68%%", sum.FinalTop1)
	}
}

// TestRELSchemesRealData is the quick check of the residual-expansion
// schemes: with t_ex = 2 on the same 2,000 real images and 3 epochs, the
// fitted schemes must not lose against the paper's fixed thresholds.
//
// Measured with the CLI on this configuration (--subset 2000, 3 epochs, full
// 10k test set, 1 thread), final top-1 for seeds 5000 / 5001:
//
//	t_ex = 1 (paper)         68.3 / 65.6
//	t_ex = 2 paper           31.3 / 14.4   (W_eff ≈ 2·W and a 2× straight-through
//	                                        gradient: the step is 4× too large at lr 0.1)
//	t_ex = 2 greedy          60.5 / 70.7
//	t_ex = 2 optimal         63.7 / (not run)
//
// and this test itself (first 1,000 test images, 2 threads): paper 29.2,
// optimal 57.9,
// so "fitted >= paper" holds by tens of points. The assertion keeps a margin
// of 5 below the paper's run rather than requiring the gap, so it checks
// "no loss" without depending on the paper's collapse.
func TestRELSchemesRealData(t *testing.T) {
	dir := realSubset(t, 2000, 1000)
	top1 := map[string]float64{}
	for _, s := range []string{"paper", "optimal"} {
		c := Defaults()
		c.Dataset, c.DataPath, c.Arch = "fashion-mnist", dir, "tern_resnet20"
		c.Epochs, c.TEx, c.RELScheme = 3, 2, s
		c.SavePath = t.TempDir()
		c.PrintFreq = 1000
		sum, err := Run(context.Background(), c, ioDiscard{})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		top1[s] = sum.FinalTop1
		t.Logf("t_ex 2 %s: test top-1 %.2f", s, sum.FinalTop1)
	}
	if top1["optimal"] < top1["paper"]-5 {
		t.Fatalf("t_ex = 2: optimal %.2f%% loses against the paper's thresholds %.2f%%", top1["optimal"], top1["paper"])
	}
	if top1["optimal"] < 50 {
		t.Fatalf("t_ex = 2 optimal reached only %.2f%%; t_ex = 1 reaches ~65%% here", top1["optimal"])
	}
}
