// Package data reads the image classification datasets the reference CLI
// trains on (MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100) from their original
// distribution files, downloads them with checksum verification, embeds a
// small real Fashion-MNIST sample so the CLI works offline, and feeds batches
// through a concurrent, deterministic loader that applies the augmentation
// and normalisation of the paper's training scripts.
//
// Load looks for a dataset's files in the given folder and in its
// per-dataset subfolder (dir/mnist, dir/fashion-mnist, dir/cifar10,
// dir/cifar100), which is where Download puts them:
//
//	mnist, fashion-mnist: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
//	cifar10:  cifar-10-binary.tar.gz or cifar-10-batches-bin/*.bin
//	cifar100: cifar-100-binary.tar.gz or cifar-100-binary/*.bin
package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

var (
	// ErrUnknownDataset reports a dataset name this package does not know.
	ErrUnknownDataset = errors.New("data: unknown dataset")
	// ErrNotFound reports dataset files that are absent from every searched folder.
	ErrNotFound = errors.New("data: dataset files not found")
	// ErrCorrupt reports a dataset file whose header or contents are invalid or truncated.
	ErrCorrupt = errors.New("data: corrupt dataset file")
	// ErrChecksum reports a downloaded file whose MD5 differs from the published one.
	ErrChecksum = errors.New("data: checksum mismatch")
	// ErrDownload reports files that could not be fetched from any mirror.
	ErrDownload = errors.New("data: download failed")
)

// Dataset is a whole split held as raw bytes; conversion to float32 happens
// per batch in the Loader so that a CIFAR split costs 150 MB, not 600 MB.
type Dataset struct {
	Name       string
	N, C, H, W int
	Pixels     []uint8 // N*C*H*W, NCHW, 0..255
	Labels     []int32 // N entries in [0, Classes)
	Classes    int
	ClassNames []string
}

// Subset returns a view of the first n samples sharing d's storage.
// n <= 0 or n >= d.N returns d itself, so a zero --subset means "all".
func (d *Dataset) Subset(n int) *Dataset {
	if n <= 0 || n >= d.N {
		return d
	}
	s := *d
	s.N = n
	s.Pixels = d.Pixels[:n*d.C*d.H*d.W]
	s.Labels = d.Labels[:n]
	return &s
}

// Image returns the C*H*W bytes of sample i, sharing d's storage.
func (d *Dataset) Image(i int) []uint8 {
	sz := d.C * d.H * d.W
	return d.Pixels[i*sz : (i+1)*sz]
}

// Norm holds per-channel mean and standard deviation on the 0..1 pixel scale,
// applied as (x/255 - Mean[c]) / Std[c].
type Norm struct {
	Mean, Std []float32
}

// Augment describes training-time augmentation: a random crop back to H×W
// from the image zero-padded by Pad on every side (offsets uniform in
// [0, 2*Pad]), then, if Flip, a horizontal flip with probability 0.5.
// The order matches torchvision's RandomCrop followed by RandomHorizontalFlip.
// RandomResizedCrop, for ImageFolder sources only, replaces the validation
// resize and center crop by torchvision's RandomResizedCrop (scale 0.08–1,
// ratio 3/4–4/3).
type Augment struct {
	Pad               int
	Flip              bool
	RandomResizedCrop bool
}

// DatasetSpec is what the training code needs to know about a dataset before
// loading it: geometry, classes, normalisation and training augmentation.
type DatasetSpec struct {
	Name                string
	Classes             int
	C, H, W             int
	TrainSize, TestSize int
	Norm                Norm
	TrainAugment        Augment
	ClassNames          []string
}

// Fashion-MNIST training-set statistics, computed over all 60000×784 pixels
// of the official training file (population std, 0..1 scale); the
// real-data test recomputes them.
const (
	fashionMean = 0.2860406
	fashionStd  = 0.3530242
)

var (
	digitNames   = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	fashionNames = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
		"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	cifar10Names = []string{"airplane", "automobile", "bird", "cat", "deer",
		"dog", "frog", "horse", "ship", "truck"}
	cifar100Names = []string{
		"apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
		"bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
		"chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
		"dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
		"lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
		"mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
		"plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
		"rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
		"squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
		"train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
	}
)

// Names lists the datasets Load accepts.
func Names() []string {
	return []string{"mnist", "fashion-mnist", "fashion-mnist-sample", "cifar10", "cifar100", "imagenet", "imagefolder"}
}

func unknown(name string) error {
	if IsImageFolder(name) {
		// Reached from Load and Download, which handle in-memory,
		// downloadable datasets only; Open reads image folders.
		var mem []string
		for _, n := range Names() {
			if !IsImageFolder(n) {
				mem = append(mem, n)
			}
		}
		return fmt.Errorf("%w: %q is a folder of image files (train/<class>/… and val/<class>/…) read in place; it is not downloaded or loaded whole as %s are",
			ErrUnknownDataset, name, strings.Join(mem, ", "))
	}
	return fmt.Errorf("%w: %q (valid: %s)", ErrUnknownDataset, name, strings.Join(Names(), ", "))
}

func div255(v ...float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x / 255)
	}
	return out
}

// Spec returns the defaults for a dataset. Normalisation constants follow the
// reference training scripts; Fashion-MNIST, which they do not cover, uses its
// own training-set statistics. Padding is 4 for 32×32 images as in the paper
// and scaled to 2 for 28×28 ones.
func Spec(name string) (DatasetSpec, error) {
	switch name {
	case "mnist":
		return DatasetSpec{Name: name, Classes: 10, C: 1, H: 28, W: 28, TrainSize: 60000, TestSize: 10000,
			Norm:         Norm{Mean: []float32{0.5}, Std: []float32{0.5}},
			TrainAugment: Augment{Pad: 2, Flip: true}, ClassNames: digitNames}, nil
	case "fashion-mnist", "fashion-mnist-sample":
		s := DatasetSpec{Name: name, Classes: 10, C: 1, H: 28, W: 28, TrainSize: 60000, TestSize: 10000,
			Norm:         Norm{Mean: []float32{fashionMean}, Std: []float32{fashionStd}},
			TrainAugment: Augment{Pad: 2, Flip: true}, ClassNames: fashionNames}
		if name == "fashion-mnist-sample" {
			s.TrainSize, s.TestSize = sampleTrain, sampleTest
		}
		return s, nil
	case "cifar10":
		return DatasetSpec{Name: name, Classes: 10, C: 3, H: 32, W: 32, TrainSize: 50000, TestSize: 10000,
			Norm:         Norm{Mean: div255(125.3, 123.0, 113.9), Std: div255(63.0, 62.1, 66.7)},
			TrainAugment: Augment{Pad: 4, Flip: true}, ClassNames: cifar10Names}, nil
	case "cifar100":
		return DatasetSpec{Name: name, Classes: 100, C: 3, H: 32, W: 32, TrainSize: 50000, TestSize: 10000,
			Norm:         Norm{Mean: div255(129.3, 124.1, 112.4), Std: div255(68.2, 65.4, 70.4)},
			TrainAugment: Augment{Pad: 4, Flip: true}, ClassNames: cifar100Names}, nil
	case "imagenet", "imagefolder":
		// Image folders: the size of ImageNet's; SpecOf reads the real
		// classes and sizes from the folder.
		s := DatasetSpec{Name: name, C: 3, H: DefaultImageSize, W: DefaultImageSize,
			Norm:         Norm{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
			TrainAugment: Augment{RandomResizedCrop: true, Flip: true}}
		if name == "imagenet" {
			s.Classes, s.TrainSize, s.TestSize = 1000, 1281167, 50000
		}
		return s, nil
	}
	return DatasetSpec{}, unknown(name)
}

// systemDirs are the Debian package locations (dataset-fashion-mnist and a
// possible MNIST counterpart) consulted when Load is given no folder.
var systemDirs = map[string]string{
	"fashion-mnist": "/usr/share/datasets/fashion-mnist",
	"mnist":         "/usr/share/datasets/mnist",
}

// searchDirs lists where a dataset's files may be: the folder itself and its
// per-dataset subfolder (where Download puts them, because MNIST and
// Fashion-MNIST share file names). An empty dir means the current folder and
// the system package location.
func searchDirs(name, dir string) []string {
	if dir == "" {
		ds := []string{".", name}
		if s, ok := systemDirs[name]; ok {
			ds = append(ds, s)
		}
		return ds
	}
	return []string{dir, filepath.Join(dir, name)}
}

// Load reads the training or test split of a dataset from dir (see Download
// for the layout; files may also sit directly in dir). "fashion-mnist-sample"
// is embedded in the binary and ignores dir.
func Load(name, dir string, train bool) (*Dataset, error) {
	spec, err := Spec(name)
	if err != nil {
		return nil, err
	}
	var ds *Dataset
	switch name {
	case "fashion-mnist-sample":
		ds, err = loadSample(spec, train)
	case "mnist", "fashion-mnist":
		ds, err = loadIDXDataset(spec, searchDirs(name, dir), train)
	case "cifar10", "cifar100":
		ds, err = loadCIFAR(spec, searchDirs(name, dir), train)
	default:
		return nil, unknown(name)
	}
	if err != nil {
		return nil, err
	}
	ds.Name = name
	return ds, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
