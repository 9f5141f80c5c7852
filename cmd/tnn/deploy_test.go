package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/internal/fakedata"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/train"
)

// tnnDo runs the CLI in-process and returns stdout and the error.
func tnnDo(args ...string) (string, error) {
	root := newRoot(context.Background())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestExportInferSummary exports a random-weight checkpoint, checks that
// infer on a test set agrees with eval of the checkpoint, that summary's
// size is the file's, and classifies a PNG.
func TestExportInferSummary(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	os.MkdirAll(dataDir, 0o755)
	if err := fakedata.WriteFashion(dataDir, 8, 24); err != nil {
		t.Fatal(err)
	}
	spec, err := models.New("tern_resnet20", models.Config{InC: 1, H: 28, W: 28, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	net, err := models.Build(spec, models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	net.Init(7)
	info, _ := json.Marshal(train.Info{Arch: "tern_resnet20", Dataset: "fashion-mnist", InC: 1, H: 28, W: 28, Classes: 10, TFactor: 0.05, TEx: 1})
	ckpt := filepath.Join(dir, "model.safetensors")
	if err := checkpoint.Save(ckpt, &checkpoint.Checkpoint{Model: net.StateDict(), Info: info}); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.tnn")
	out, err := tnnDo("export", "--resume", ckpt, "--out", model, "--packing", "base3")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(model)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fmt.Sprintf("%d bytes", fi.Size())) {
		t.Errorf("export says %q, file has %d bytes", out, fi.Size())
	}

	out, err = tnnDo("summary", "--model", model)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fmt.Sprintf("model size: %d bytes", fi.Size())) || !strings.Contains(out, "1077736 bytes (269434 parameters)") {
		t.Errorf("summary does not report the file size %d and 269434 float parameters:\n%s", fi.Size(), out)
	}
	if _, err := tnnDo("summary", "--arch", "tern_resnet20", "--tex", "2", "--packing", "base3"); err != nil {
		t.Error(err)
	}

	out, err = tnnDo("infer", "--model", model, "--dataset", "fashion-mnist", "--data_path", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Defaults()
	cfg.Resume, cfg.Dataset, cfg.DataPath, cfg.Workers = ckpt, "fashion-mnist", dataDir, 0
	r, err := train.Evaluate(cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("top1=%.2f top5=%.2f images=24", r.Top1, r.Top5); !strings.Contains(out, want) {
		t.Errorf("infer says %q, eval of the checkpoint %q", strings.TrimSpace(out), want)
	}

	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			img.Set(x, y, color.RGBA{uint8(6 * x), uint8(8 * y), 90, 255})
		}
	}
	pngPath := filepath.Join(dir, "x.png")
	var buf bytes.Buffer
	png.Encode(&buf, img)
	os.WriteFile(pngPath, buf.Bytes(), 0o644)
	out, err = tnnDo("infer", "--model", model, pngPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, pngPath+": ") || strings.Count(out, "%") != 5 {
		t.Errorf("image output %q", out)
	}

	bad := filepath.Join(dir, "bad.tnn")
	b, _ := os.ReadFile(model)
	os.WriteFile(bad, b[:len(b)/2], 0o644)
	for _, args := range [][]string{
		{"infer", "--model", bad},
		{"infer", "--model", model, filepath.Join(dir, "missing.png")},
		{"export", "--resume", ckpt},
		{"export", "--resume", ckpt, "--out", model, "--packing", "3bit"},
		{"summary"},
	} {
		if _, err := tnnDo(args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestInferImageFolder runs tnn infer over a folder of images (the
// validation split of an ImageNet-style layout), which are decoded, resized
// and cropped to the model's input as batches are made, and checks that an
// unreadable image stops it with one line naming the file.
func TestInferImageFolder(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	for _, class := range []string{"n01", "n02"} {
		d := filepath.Join(dir, "val", class)
		os.MkdirAll(d, 0o755)
		for i := 0; i < 3; i++ {
			img := image.NewRGBA(image.Rect(0, 0, 40+7*i, 30+5*i))
			for j := range img.Pix {
				img.Pix[j] = uint8(r.IntN(256))
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, fmt.Sprintf("img%d.png", i)), buf.Bytes(), 0o644)
		}
	}
	model := filepath.Join(dir, "model.tnn")
	if _, err := tnnDo("export", "--random_init", "--arch", "resnet18b_fq_lq_tern_tex_2", "--dataset", "imagenet", "--out", model); err != nil {
		t.Fatal(err)
	}
	out, err := tnnDo("infer", "--model", model, "--dataset", "imagenet", "--data_path", dir, "--batch_size", "4")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "images=6 ") {
		t.Errorf("want 6 images scored: %s", out)
	}
	bad := filepath.Join(dir, "val", "n02", "img1.png")
	os.WriteFile(bad, []byte("not a png"), 0o644)
	_, err = tnnDo("infer", "--model", model, "--dataset", "imagenet", "--data_path", dir)
	if err == nil || !strings.Contains(err.Error(), "img1.png") {
		t.Errorf("a corrupt image: got %v, want an error naming it", err)
	}
}
