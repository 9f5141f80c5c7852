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
	if testing.Short() {
		t.Skip("trains for ~1 minute")
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
	copySplit(true, "train", 2000)
	copySplit(false, "t10k", 1000)

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
