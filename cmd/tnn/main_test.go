package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/internal/fakedata"
)

// buildTnn compiles the real binary once for the CLI tests.
func buildTnn(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tnn")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func runTnn(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	return runTnnIn(t, "", bin, args...)
}

// runTnnIn is runTnn with dir as the working directory ("" = the test's).
func runTnnIn(t *testing.T, dir, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
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

// TestBadInput runs the real binary on bad flags and files: each must exit
// with status 2 and a single line naming the problem, never a panic trace,
// and must leave an existing checkpoint untouched.
func TestBadInput(t *testing.T) {
	bin := buildTnn(t)
	dir := t.TempDir()
	notCkpt := filepath.Join(dir, "notes.txt")
	os.WriteFile(notCkpt, []byte("hello, not a checkpoint\n"), 0o644)
	truncated := filepath.Join(dir, "train-images-idx3-ubyte")
	os.WriteFile(truncated, []byte{0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3}, 0o644)
	os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0}, 0o644)
	// A valid one-image test split, so that the truncated training file is what fails.
	os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte"), append([]byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28}, make([]byte, 784)...), 0o644)
	os.WriteFile(filepath.Join(dir, "t10k-labels-idx1-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 1, 3}, 0o644)
	// Fashion-MNIST folders that are wrong in one way each.
	idx := func(sub, name string, dims []int, payload []byte) string {
		d := filepath.Join(dir, sub)
		os.MkdirAll(d, 0o755)
		if err := fakedata.WriteIDX(filepath.Join(d, name), dims, payload); err != nil {
			t.Fatal(err)
		}
		return d
	}
	testSplit := func(sub string) {
		idx(sub, "t10k-images-idx3-ubyte.gz", []int{2, 28, 28}, make([]byte, 2*784))
		idx(sub, "t10k-labels-idx1-ubyte.gz", []int{2}, []byte{1, 2})
	}
	mismatch := idx("mismatch", "train-images-idx3-ubyte.gz", []int{3, 28, 28}, make([]byte, 3*784))
	idx("mismatch", "train-labels-idx1-ubyte.gz", []int{2}, []byte{1, 2})
	testSplit("mismatch")
	wrongSize := idx("size", "train-images-idx3-ubyte.gz", []int{2, 32, 32}, make([]byte, 2*1024))
	idx("size", "train-labels-idx1-ubyte.gz", []int{2}, []byte{1, 2})
	testSplit("size")
	badLabel := idx("label", "train-images-idx3-ubyte.gz", []int{2, 28, 28}, make([]byte, 2*784))
	idx("label", "train-labels-idx1-ubyte.gz", []int{2}, []byte{1, 12})
	testSplit("label")
	garbage := filepath.Join(dir, "garbage")
	os.MkdirAll(garbage, 0o755)
	testSplit("garbage")
	os.WriteFile(filepath.Join(garbage, "train-images-idx3-ubyte.gz"), []byte("\x1f\x8bnot really gzip"), 0o644)
	os.WriteFile(filepath.Join(garbage, "train-labels-idx1-ubyte.gz"), []byte("\x1f\x8bnot really gzip"), 0o644)

	readOnly := filepath.Join(dir, "ro")
	os.Mkdir(readOnly, 0o500)
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, []byte("x"), 0o644)

	// A real checkpoint that must survive every failing command.
	save := filepath.Join(dir, "run")
	if code, _, errOut := runTnn(t, bin, "train", "--subset", "32", "--epochs", "1", "--batch_size", "16", "--save_path", save, "--arch", "resnet20"); code != 0 {
		t.Fatalf("setup training failed (%d): %s", code, errOut)
	}
	ckpt := filepath.Join(save, "checkpoint.safetensors")
	before, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown arch", []string{"train", "--arch", "resnet19"}, "tern_resnet20"},
		{"unknown dataset", []string{"train", "--dataset", "imagenet1k"}, "cifar10"},
		{"zero epochs", []string{"train", "--epochs", "0"}, "--epochs"},
		{"negative batch", []string{"train", "--batch_size", "-4"}, "--batch_size"},
		{"zero lr", []string{"train", "--learning_rate", "0"}, "--learning_rate"},
		{"schedule/gammas lengths", []string{"train", "--schedule", "1", "2", "--gammas", "0.1"}, "--gammas"},
		{"bad lr schedule", []string{"train", "--lr_schedule", "linear"}, "--lr_schedule"},
		{"bad tex", []string{"train", "--tex", "40"}, "--tex"},
		{"not a number", []string{"train", "--epochs", "many"}, "epochs"},
		{"unknown flag", []string{"train", "--epoch", "3"}, "unknown flag"},
		{"unknown command", []string{"fly"}, "unknown command"},
		{"positional argument", []string{"train", "extra"}, "unknown command"},
		{"missing resume file", []string{"train", "--resume", filepath.Join(dir, "nope.safetensors"), "--save_path", save}, "nope.safetensors"},
		{"resume not a checkpoint", []string{"train", "--resume", notCkpt, "--save_path", save}, "not a tnn checkpoint"},
		{"checkpoint of another arch", []string{"train", "--resume", ckpt, "--arch", "resnet32", "--save_path", save}, "stage_1.3"},
		{"checkpoint with other classes", []string{"eval", "--resume", ckpt, "--num_classes", "7"}, "classifier.weight has shape [10 64], model wants [7 64]"},
		{"eval without checkpoint", []string{"eval"}, "--resume"},
		{"fine_tune without resume", []string{"train", "--fine_tune"}, "--fine_tune"},
		{"missing dataset files", []string{"train", "--dataset", "cifar10", "--data_path", filepath.Join(dir, "empty")}, "cifar"},
		{"truncated dataset", []string{"train", "--dataset", "mnist", "--data_path", dir, "--save_path", filepath.Join(dir, "r2")}, "train-images-idx3-ubyte"},
		{"label/image count mismatch", []string{"train", "--dataset", "fashion-mnist", "--data_path", mismatch, "--save_path", filepath.Join(dir, "r3")}, "3 images but"},
		{"wrong image size", []string{"train", "--dataset", "fashion-mnist", "--data_path", wrongSize, "--save_path", filepath.Join(dir, "r4")}, "32x32, want 28x28"},
		{"label out of range", []string{"train", "--dataset", "fashion-mnist", "--data_path", badLabel, "--save_path", filepath.Join(dir, "r5")}, "label 12"},
		{"corrupt gzip", []string{"train", "--dataset", "fashion-mnist", "--data_path", garbage, "--save_path", filepath.Join(dir, "r6")}, "train-images-idx3-ubyte.gz"},
		{"unwritable save_path", []string{"train", "--save_path", filepath.Join(blocker, "sub")}, "--save_path"},
		{"download without folder", []string{"download", "--dataset", "cifar10"}, "--data_path"},
		{"negative threads", []string{"train", "--threads", "-1"}, "--threads"},
	}
	if os.Geteuid() != 0 { // root can write anywhere
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"read-only save_path", []string{"train", "--save_path", readOnly}, "not writable"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// In an empty folder, which a failed command must leave empty:
			// no default save/ folder for a run that never started.
			cwd := t.TempDir()
			code, _, errOut := runTnnIn(t, cwd, bin, c.args...)
			if left, _ := os.ReadDir(cwd); len(left) > 0 {
				t.Errorf("left %s behind in its working folder", left[0].Name())
			}
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
		})
	}
	after, err := os.ReadFile(ckpt)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the existing checkpoint was changed or lost (%v)", err)
	}
}

func TestJoinNargs(t *testing.T) {
	got := strings.Join(joinNargs([]string{"train", "--schedule", "80", "120", "160", "--gammas", "0.1", "0.1", "0.5", "--epochs", "3"}, "--schedule", "--gammas"), " ")
	if want := "train --schedule 80,120,160 --gammas 0.1,0.1,0.5 --epochs 3"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestKillNineKeepsCheckpoint kills training with SIGKILL at arbitrary
// moments, including during checkpoint writes: whatever checkpoint exists
// afterwards must load, and resuming from it must work.
func TestKillNineKeepsCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills training several times")
	}
	bin := buildTnn(t)
	dataDir := t.TempDir()
	if err := fakedata.WriteFashion(dataDir, 64, 16); err != nil {
		t.Fatal(err)
	}
	save := filepath.Join(t.TempDir(), "run")
	ckpt := filepath.Join(save, "checkpoint.safetensors")
	args := []string{"train", "--dataset", "fashion-mnist", "--data_path", dataDir, "--arch", "resnet20",
		"--epochs", "1000", "--batch_size", "16", "--threads", "1", "--save_path", save}
	r := rand.New(rand.NewPCG(1, 2))
	loaded := 0
	for i := 0; i < 6; i++ {
		a := args
		if _, err := os.Stat(ckpt); err == nil {
			a = append(a, "--resume", ckpt)
		}
		cmd := exec.Command(bin, a...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// However slow the machine, let a first checkpoint appear.
			for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if _, err := os.Stat(ckpt); err == nil {
					break
				}
			}
		}
		time.Sleep(time.Duration(r.IntN(1500)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL: no chance to clean up
		cmd.Wait()
		if _, err := os.Stat(ckpt); err != nil {
			continue // killed before the first epoch ended
		}
		if _, err := checkpoint.Load(ckpt); err != nil {
			t.Fatalf("after kill %d the checkpoint is unreadable: %v", i+1, err)
		}
		loaded++
	}
	if loaded == 0 {
		t.Fatal("no checkpoint was ever written; the test proved nothing")
	}
}

// TestInterruptSavesAndResumes sends SIGINT: tnn must finish the step, save a
// resumable checkpoint, say how to resume, and exit with status 130.
func TestInterruptSavesAndResumes(t *testing.T) {
	bin := buildTnn(t)
	dataDir := t.TempDir()
	if err := fakedata.WriteFashion(dataDir, 64, 16); err != nil {
		t.Fatal(err)
	}
	save := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--dataset", "fashion-mnist", "--data_path", dataDir, "--arch", "resnet20",
		"--epochs", "1000", "--batch_size", "16", "--threads", "1", "--save_path", save}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d, want 130; output:\n%s", code, out.String())
	}
	ckpt := filepath.Join(save, "checkpoint.safetensors")
	if !strings.Contains(out.String(), "--resume "+ckpt) {
		t.Fatalf("no resume instructions in:\n%s", out.String())
	}
	ck, err := checkpoint.Load(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Epoch, Step int }
	if err := json.Unmarshal(ck.Info, &info); err != nil {
		t.Fatal(err)
	}
	// Finish the interrupted epoch (or one more) from the checkpoint.
	resume := []string{"train", "--dataset", "fashion-mnist", "--data_path", dataDir, "--threads", "1", "--batch_size", "16",
		"--save_path", save, "--resume", ckpt, "--epochs", fmt.Sprint(info.Epoch + 1)}
	code, stdout, stderr := runTnn(t, bin, resume...)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("epoch %d/%d", info.Epoch+1, info.Epoch+1)) {
		t.Fatalf("resume from epoch %d step %d failed (%d): %s %s", info.Epoch, info.Step, code, stdout, stderr)
	}
}
