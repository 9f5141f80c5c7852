package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/pth"
)

// pthFixture unpacks a PyTorch-made fixture of package pth into dir.
func pthFixture(t *testing.T, dir, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "pth", "testdata", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runTnnEnv is runTnn with extra environment variables.
func runTnnEnv(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestPyTorchFiles runs the real binary on PyTorch files: convert both
// ways, eval and fine-tune the seed's checkpoint, and bad input, which must
// exit with status 2 and one line naming the problem.
func TestPyTorchFiles(t *testing.T) {
	bin := buildTnn(t)
	dir := t.TempDir()
	r18 := pthFixture(t, dir, "resnet18.pth")
	seed := pthFixture(t, dir, "seed_tern_resnet20.pth.tar")
	orig, err := pth.Load(r18)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("convert round trip", func(t *testing.T) {
		st := filepath.Join(dir, "r18.safetensors")
		code, out, errOut := runTnn(t, bin, "convert", r18, st, "--arch", "resnet18")
		if code != 0 || !strings.Contains(out, "wrote "+st+": 122 tensors") || !strings.Contains(out, "matches resnet18 with 1000 classes") {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		ck, err := checkpoint.Load(st)
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Arch string }
		if err := json.Unmarshal(ck.Info, &info); err != nil || info.Arch != "resnet18" {
			t.Errorf("info %s (%v)", ck.Info, err)
		}
		back := filepath.Join(dir, "back.pth")
		if code, out, errOut := runTnn(t, bin, "convert", st, back); code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		got, err := pth.Load(back)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.StateDict) != len(orig.StateDict) {
			t.Fatalf("%d tensors, want %d", len(got.StateDict), len(orig.StateDict))
		}
		for i, e := range orig.StateDict {
			g := got.StateDict[i]
			if g.Name != e.Name || !bytes.Equal(f32bytes(g.T.Data), f32bytes(e.T.Data)) {
				t.Fatalf("tensor %d: %s differs from %s", i, g.Name, e.Name)
			}
		}
	})

	t.Run("eval the seed's file", func(t *testing.T) {
		code, out, errOut := runTnn(t, bin, "eval", "--resume", seed, "--dataset", "fashion-mnist-sample", "--threads", "1")
		if code != 0 || !strings.Contains(out, "top1=") || !strings.Contains(out, `"module." prefix removed`) {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
	})

	t.Run("fine-tune for other classes", func(t *testing.T) {
		save := filepath.Join(dir, "ft")
		code, out, errOut := runTnn(t, bin, "train", "--resume", seed, "--fine_tune", "--num_classes", "12", "--subset", "32",
			"--epochs", "1", "--batch_size", "16", "--threads", "1", "--save_path", save)
		if code != 0 || !strings.Contains(out, "classifier classifier: the file's has 10 outputs") || !strings.Contains(out, "epoch 1/1") {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
	})

	notCkpt := filepath.Join(dir, "notes.pth")
	os.WriteFile(notCkpt, []byte("hello, not a checkpoint\n"), 0o644)
	b, _ := os.ReadFile(r18)
	truncated := filepath.Join(dir, "truncated.pth")
	os.WriteFile(truncated, b[:len(b)/2], 0o644)
	b, _ = os.ReadFile(seed)
	truncatedSeed := filepath.Join(dir, "truncated.pth.tar")
	os.WriteFile(truncatedSeed, b[:len(b)-100], 0o644)
	home := t.TempDir()
	offline := []string{"TNN_HOME=" + home, "TORCH_HOME=" + t.TempDir(), "HTTPS_PROXY=http://127.0.0.1:1", "https_proxy=http://127.0.0.1:1"}

	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"convert a text file", nil, []string{"convert", notCkpt, filepath.Join(dir, "x.safetensors")}, "nor a PyTorch file"},
		{"convert a truncated .pth", nil, []string{"convert", truncated, filepath.Join(dir, "x.safetensors")}, "corrupt PyTorch checkpoint: zip archive unreadable (truncated?)"},
		{"convert to another architecture", nil, []string{"convert", r18, filepath.Join(dir, "x.safetensors"), "--arch", "resnet50"},
			"layer1.0.conv1.weight has shape [64 64 3 3], model wants [64 64 1 1]"},
		{"convert to an unknown format", nil, []string{"convert", r18, filepath.Join(dir, "x.onnx")}, ".safetensors"},
		{"convert a missing file", nil, []string{"convert", filepath.Join(dir, "nope.pth"), filepath.Join(dir, "x.pth")}, "nope.pth"},
		{"convert with one argument", nil, []string{"convert", r18}, "accepts 2 arg(s)"},
		{"resume a text file", nil, []string{"train", "--resume", notCkpt, "--save_path", filepath.Join(dir, "r1")}, "not a tnn checkpoint"},
		{"resume a truncated legacy file", nil, []string{"eval", "--resume", truncatedSeed}, "truncated"},
		{"eval a .pth of another architecture", nil, []string{"eval", "--resume", r18, "--arch", "resnet50", "--dataset", "fashion-mnist-sample"},
			"state_dict does not match the model resnet50"},
		{"eval a .pth with other classes", nil, []string{"eval", "--resume", seed, "--num_classes", "7"}, "add --fine_tune"},
		{"export a truncated .pth", nil, []string{"export", "--resume", truncated, "--out", filepath.Join(dir, "m.tnn")}, "truncated"},
		{"pretrained and resume", nil, []string{"train", "--pretrained", "--resume", seed}, "--pretrained and --resume"},
		{"pretrained for a CIFAR model", nil, []string{"train", "--pretrained", "--save_path", filepath.Join(dir, "r2")}, "no pretrained weights for tern_resnet20"},
		{"pretrained AlexNet", nil, []string{"train", "--pretrained", "--arch", "alexnet_vanilla", "--save_path", filepath.Join(dir, "r3")}, "BatchNorm"},
		{"pretrained offline", offline, []string{"eval", "--pretrained", "--arch", "resnet18b_fq_lq_tex1", "--dataset", "fashion-mnist-sample"},
			"resnet18-5c106cde.pth from https://download.pytorch.org/models/resnet18-5c106cde.pth"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runTnnEnv(t, bin, c.env, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "tnn: ") {
				t.Errorf("want one 'tnn: ...' line, got %q", errOut)
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("panic trace: %s", errOut)
			}
			if !strings.Contains(errOut, c.want) {
				t.Errorf("message %q does not mention %q", errOut, c.want)
			}
			if c.name == "pretrained offline" && !strings.Contains(errOut, "place it at "+filepath.Join(home, "checkpoints", "resnet18-5c106cde.pth")) {
				t.Errorf("the message does not say where to put the file: %s", errOut)
			}
		})
	}
}

// f32bytes compares float32 slices bit for bit (NaN and -0 included).
func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
