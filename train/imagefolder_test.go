package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/data"
)

// writeImageFolder makes root/{train,val}/<class>/ with JPEG and PNG images
// of odd sizes in both orientations, each class a different colour cast.
func writeImageFolder(t *testing.T, root string, perClass map[string]int) {
	t.Helper()
	classes := []string{"ants", "bees", "wasps"}
	for split, n := range perClass {
		for ci, c := range classes {
			for i := range n {
				w, h := 40+7*i, 30+5*ci
				if i%2 == 1 {
					w, h = h, w
				}
				img := image.NewRGBA(image.Rect(0, 0, w, h))
				for y := range h {
					for x := range w {
						v := uint8((x*5 + y*3 + i*11) % 200)
						rgb := [3]uint8{v, v, v}
						rgb[ci] += 55
						img.Set(x, y, color.RGBA{rgb[0], rgb[1], rgb[2], 255})
					}
				}
				var b bytes.Buffer
				name := fmt.Sprintf("%s_%d.jpg", c, i)
				var err error
				if i%3 == 2 {
					name = fmt.Sprintf("%s_%d.PNG", c, i)
					err = png.Encode(&b, img)
				} else {
					err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
				}
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(root, split, c, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestImageFolderRun trains a ResNet-18 for one epoch on a tiny image folder
// at 32×32 (3 classes, so top-5 is always 100), evaluates the checkpoint
// through Evaluate, and checks that a corrupt image stops training and
// evaluation with an error naming it.
func TestImageFolderRun(t *testing.T) {
	root := t.TempDir()
	writeImageFolder(t, root, map[string]int{"train": 4, "val": 2})
	c := Defaults()
	c.Dataset, c.DataPath, c.Arch = "imagefolder", root, "resnet18"
	c.ImageSize = 32
	c.Epochs, c.BatchSize, c.Threads, c.Workers, c.PrintFreq = 1, 4, 1, 2, 1000
	c.LearningRate = 0.01
	c.ModelOnly = true // ResNet-18 checkpoints are large: skip the optimizer state
	c.SavePath = t.TempDir()
	sum, err := Run(context.Background(), c, ioDiscard{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.TrainImages != 12 || sum.TestImages != 6 || sum.Epochs != 1 || sum.FinalTop5 != 100 {
		t.Errorf("summary %+v", sum)
	}
	info := history(t, loadCk(t, filepath.Join(c.SavePath, CheckpointFile)))
	if info.InC != 3 || info.H != 32 || info.W != 32 || info.Classes != 3 || info.Args.ImageSize != 32 {
		t.Errorf("checkpoint geometry %d×%d×%d, %d classes, image size %d", info.InC, info.H, info.W, info.Classes, info.Args.ImageSize)
	}

	// Evaluation from the checkpoint alone: dataset, folder, architecture
	// and image size come from it.
	ev := Defaults()
	ev.Dataset, ev.Arch = "", ""
	ev.Resume, ev.BatchSize, ev.Threads, ev.Workers = filepath.Join(c.SavePath, CheckpointFile), 3, 1, 1
	r, err := Evaluate(ev, ioDiscard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Images != 6 || r.Top1 != sum.FinalTop1 || r.Top5 != 100 {
		t.Errorf("evaluate gave %+v, training ended at top-1 %.2f", r, sum.FinalTop1)
	}

	// A corrupt image: training stops with an error naming the file. The
	// CIFAR ResNet-20 takes 3×32×32 too and initialises in no time.
	c.Arch = "resnet20"
	ev.Resume, ev.Arch, ev.Dataset, ev.DataPath, ev.ImageSize = "", "resnet20", "imagefolder", root, 32
	ev.Evaluate = true
	bad := filepath.Join(root, "train", "bees", "broken.jpg")
	if err := os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 not really a JPEG"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.SavePath = t.TempDir()
	_, err = Run(context.Background(), c, ioDiscard{})
	if !errors.Is(err, data.ErrImage) || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt training image: got %v", err)
	}
	// … and so does evaluation.
	if err := os.Rename(bad, filepath.Join(root, "val", "bees", "broken.jpg")); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), ev, ioDiscard{}); !errors.Is(err, data.ErrImage) || !strings.Contains(err.Error(), "broken.jpg") {
		t.Errorf("corrupt validation image: got %v", err)
	}

	// --image_size is for image folders only.
	c2 := Defaults()
	c2.ImageSize = 64
	c2.SavePath = t.TempDir()
	if _, err := Run(context.Background(), c2, ioDiscard{}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "image_size") {
		t.Errorf("--image_size with %s: got %v", c2.Dataset, err)
	}
}
