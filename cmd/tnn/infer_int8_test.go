package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/internal/fakedata"
)

// TestRandomInitBenchInt8 exports a freshly initialised CIFAR-shaped
// model, times it in both modes with tnn bench infer --model, and runs
// tnn infer --int8 on a test set: the mode is named and the last line of
// bench is machine-readable.
func TestRandomInitBenchInt8(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "bench.tnn")
	out, err := tnnDo("export", "--random_init", "--arch", "tern_resnet20", "--dataset", "cifar10", "--out", model)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tern_resnet20") {
		t.Errorf("export says %q", out)
	}
	last := regexp.MustCompile(`(?m)^img_per_s=[0-9.]+ ms_per_step=[0-9.]+\n$`)
	for _, mode := range []string{"exact", "int8"} {
		args := []string{"bench", "infer", "--model", model, "--batch_size", "3", "--steps", "2", "--warmup", "1", "--threads", "2"}
		if mode == "int8" {
			args = append(args, "--int8")
		}
		out, err := tnnDo(args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "input=3x32x32 mode="+mode) || !last.MatchString(out) {
			t.Errorf("bench infer %s says %q", mode, out)
		}
	}

	dataDir := filepath.Join(dir, "data")
	os.MkdirAll(dataDir, 0o755)
	if err := fakedata.WriteFashion(dataDir, 8, 24); err != nil {
		t.Fatal(err)
	}
	fm := filepath.Join(dir, "fm.tnn")
	if _, err := tnnDo("export", "--random_init", "--arch", "tern_resnet20", "--dataset", "fashion-mnist", "--out", fm); err != nil {
		t.Fatal(err)
	}
	out, err = tnnDo("infer", "--model", fm, "--data_path", dataDir, "--int8")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "note: --int8") || !strings.Contains(out, "images=24 mode=int8") {
		t.Errorf("infer --int8 says %q", out)
	}

	for _, args := range [][]string{
		{"export", "--random_init", "--resume", fm, "--out", model},
		{"export", "--random_init", "--out", model}, // no arch nor dataset
		{"bench", "infer", "--model", filepath.Join(dir, "missing.tnn")},
	} {
		if _, err := tnnDo(args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestBenchRELScheme times a t_ex = 2 step with each fitting scheme and
// refuses an unknown one.
func TestBenchRELScheme(t *testing.T) {
	for _, s := range []string{"paper", "greedy", "optimal"} {
		out, err := tnnDo("bench", "train", "--tex", "2", "--rel_scheme", s, "--batch_size", "2", "--steps", "1", "--warmup", "0", "--threads", "1")
		if err != nil || !strings.Contains(out, "img_per_s=") {
			t.Errorf("%s: %v, %q", s, err, out)
		}
	}
	if _, err := tnnDo("bench", "train", "--tex", "2", "--rel_scheme", "bogus", "--steps", "1"); err == nil {
		t.Error("--rel_scheme bogus: no error")
	}
}
