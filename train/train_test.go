package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/internal/fakedata"
)

func writeIDX(t *testing.T, path string, dims []int, payload []byte) {
	t.Helper()
	if err := fakedata.WriteIDX(path, dims, payload); err != nil {
		t.Fatal(err)
	}
}

func writeFashion(t *testing.T, dir string, ntrain, ntest int) {
	t.Helper()
	if err := fakedata.WriteFashion(dir, ntrain, ntest); err != nil {
		t.Fatal(err)
	}
}

func smallConfig(t *testing.T, dataDir string) Config {
	c := Defaults()
	c.Dataset = "fashion-mnist"
	c.DataPath = dataDir
	c.Arch = "tern_resnet20"
	c.Epochs = 4
	c.BatchSize = 16
	c.Threads = 1
	c.Workers = 2
	c.PrintFreq = 1000
	c.SavePath = t.TempDir()
	// A step schedule does not depend on --epochs, so a 2-epoch run and
	// the first half of a 4-epoch run see the same learning rates.
	c.LRSchedule = "step"
	c.Schedule, c.Gammas = []int{1, 3}, []float64{0.5, 0.5}
	return c
}

func loadCk(t *testing.T, path string) *checkpoint.Checkpoint {
	t.Helper()
	ck, err := checkpoint.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

func sameCheckpoints(t *testing.T, a, b *checkpoint.Checkpoint) {
	t.Helper()
	if len(a.Model) != len(b.Model) || len(a.Optim) != len(b.Optim) {
		t.Fatalf("checkpoints differ in size: %d/%d model, %d/%d optimizer tensors", len(a.Model), len(b.Model), len(a.Optim), len(b.Optim))
	}
	cmp := func(kind string, x, y []float32, name string) {
		for i := range x {
			if x[i] != y[i] {
				t.Fatalf("%s %s differs at %d: %g vs %g", kind, name, i, x[i], y[i])
			}
		}
	}
	for i := range a.Model {
		cmp("model", a.Model[i].T.Data, b.Model[i].T.Data, a.Model[i].Name)
	}
	for i := range a.Optim {
		cmp("optimizer", a.Optim[i].T.Data, b.Optim[i].T.Data, a.Optim[i].Name)
	}
}

func history(t *testing.T, ck *checkpoint.Checkpoint) Info {
	var info Info
	if err := jsonUnmarshal(ck.Info, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// TestResumeExact trains 4 epochs straight, and 2 epochs then 2 more from
// the checkpoint, with one thread and the same seed: weights, optimizer
// state and every metric must be bit-identical.
func TestResumeExact(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 48, 16)
	ctx := context.Background()

	straight := smallConfig(t, dataDir)
	sumA, err := Run(ctx, straight, ioDiscard{})
	if err != nil {
		t.Fatal(err)
	}

	split := smallConfig(t, dataDir)
	split.Epochs = 2
	if _, err := Run(ctx, split, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	split.Epochs = 4
	split.Resume = filepath.Join(split.SavePath, CheckpointFile)
	sumB, err := Run(ctx, split, ioDiscard{})
	if err != nil {
		t.Fatal(err)
	}
	a := loadCk(t, filepath.Join(straight.SavePath, CheckpointFile))
	b := loadCk(t, filepath.Join(split.SavePath, CheckpointFile))
	sameCheckpoints(t, a, b)
	ha, hb := history(t, a).History, history(t, b).History
	if len(ha) != 4 || len(hb) != 4 {
		t.Fatalf("history lengths %d, %d", len(ha), len(hb))
	}
	for i := range ha {
		if ha[i].TrainLoss != hb[i].TrainLoss || ha[i].TestTop1 != hb[i].TestTop1 || ha[i].TestLoss != hb[i].TestLoss {
			t.Fatalf("epoch %d metrics differ: %+v vs %+v", i+1, ha[i], hb[i])
		}
	}
	if sumA.FinalTop1 != sumB.FinalTop1 || sumA.BestTop1 != sumB.BestTop1 {
		t.Fatalf("summaries differ: %+v vs %+v", sumA, sumB)
	}
	for _, f := range []string{AccuracyFile, CurveFile, SummaryFile, BestFile, "log_seed_5000.txt"} {
		if fi, err := os.Stat(filepath.Join(straight.SavePath, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
}

// stopAfter is a context whose Err turns non-nil after n checks, so the
// interruption lands on a known step.
type stopAfter struct {
	context.Context
	n int
}

func (s *stopAfter) Err() error {
	s.n--
	if s.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestInterruptResume stops in the middle of epoch 2, resumes, and must end
// where an uninterrupted run ends.
func TestInterruptResume(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 48, 16)
	straight := smallConfig(t, dataDir)
	straight.Epochs = 2
	if _, err := Run(context.Background(), straight, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	cut := smallConfig(t, dataDir)
	cut.Epochs = 2
	// 3 steps per epoch: stop after the second step of epoch 2.
	_, err := Run(&stopAfter{Context: context.Background(), n: 4}, cut, ioDiscard{})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	info := history(t, loadCk(t, filepath.Join(cut.SavePath, CheckpointFile)))
	if info.Epoch != 1 || info.Step != 2 {
		t.Fatalf("interrupted checkpoint at epoch %d step %d, want 1, 2", info.Epoch, info.Step)
	}
	cut.Resume = filepath.Join(cut.SavePath, CheckpointFile)
	if _, err := Run(context.Background(), cut, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	sameCheckpoints(t, loadCk(t, filepath.Join(straight.SavePath, CheckpointFile)), loadCk(t, filepath.Join(cut.SavePath, CheckpointFile)))
}

func TestFineTuneAndEvaluate(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 32, 16)
	c := smallConfig(t, dataDir)
	c.Epochs = 1
	sum, err := Run(context.Background(), c, ioDiscard{})
	if err != nil {
		t.Fatal(err)
	}
	ev := c
	ev.Resume = filepath.Join(c.SavePath, CheckpointFile)
	ev.Arch = "" // taken from the checkpoint
	r, err := Evaluate(ev, ioDiscard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Top1 != sum.FinalTop1 || r.Images != 16 {
		t.Fatalf("evaluate gave %+v, training ended at %.2f", r, sum.FinalTop1)
	}
	ft := c
	ft.SavePath = t.TempDir()
	ft.Resume = ev.Resume
	ft.FineTune = true
	ft.Epochs = 1
	if _, err := Run(context.Background(), ft, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	if info := history(t, loadCk(t, filepath.Join(ft.SavePath, CheckpointFile))); len(info.History) != 1 || info.Epoch != 1 {
		t.Fatalf("fine-tune should start at epoch 0: history %d, epoch %d", len(info.History), info.Epoch)
	}
	// A checkpoint of another architecture is refused with the tensor names.
	other := c
	other.Arch = "resnet32"
	other.Resume = ev.Resume
	other.SavePath = t.TempDir()
	if _, err := Run(context.Background(), other, ioDiscard{}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("loading resnet20 weights into resnet32: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Epochs = 0 },
		func(c *Config) { c.BatchSize = -1 },
		func(c *Config) { c.LearningRate = 0 },
		func(c *Config) { c.Schedule = []int{10, 20}; c.Gammas = []float64{0.1} },
		func(c *Config) { c.LRSchedule = "linear" },
		func(c *Config) { c.TEx = 30 },
		func(c *Config) { c.FineTune = true },
	} {
		c := Defaults()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: got %v", c, err)
		}
	}
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestDivergenceKeepsCheckpoint resumes a good run with an absurd learning
// rate: training must stop with ErrDiverged, naming the learning rate, and
// leave the last good checkpoint byte for byte.
func TestDivergenceKeepsCheckpoint(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 32, 16)
	c := smallConfig(t, dataDir)
	c.Arch = "resnet20"
	c.Epochs = 1
	if _, err := Run(context.Background(), c, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.SavePath, CheckpointFile)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Resume = path
	c.Epochs = 3
	c.LearningRate = 1e30
	c.Schedule, c.Gammas = nil, nil
	_, err = Run(context.Background(), c, ioDiscard{})
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "--learning_rate") {
		t.Fatalf("got %v, want ErrDiverged suggesting a lower --learning_rate", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatal("the last good checkpoint was changed")
	}
}

// TestRELSchemes trains briefly with every way of fitting t_ex = 2 terms and
// checks the log reports per-layer sparsity and reconstruction error.
func TestRELSchemes(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 32, 16)
	for _, s := range []string{"paper", "greedy", "optimal"} {
		c := smallConfig(t, dataDir)
		c.Epochs, c.TEx, c.RELScheme = 1, 2, s
		sum, err := Run(context.Background(), c, ioDiscard{})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		js, err := os.ReadFile(filepath.Join(c.SavePath, "summary.json"))
		if err != nil || sum.RELScheme != s || !strings.Contains(string(js), `"rel_scheme": "`+s+`"`) || sum.TrainSeconds <= 0 {
			t.Errorf("%s: summary.json does not name the scheme (%v):\n%s", s, err, js)
		}
		log, err := os.ReadFile(filepath.Join(c.SavePath, "log_seed_5000.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), "rel_scheme="+s) || !strings.Contains(string(log), "ternary stage_3.2.conv_b") || !strings.Contains(string(log), "rel_err") {
			t.Fatalf("%s: log lacks the scheme or per-layer lines:\n%s", s, log)
		}
	}
	c := smallConfig(t, dataDir)
	c.RELScheme = "magic"
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("unknown scheme: %v", err)
	}
}

// An architecture whose name carries t_ex (the seed's resnet18b_..._tex_2)
// trains with it unless --tex overrides; TEx = 0 means "the architecture's".
func TestTExFromArchName(t *testing.T) {
	dataDir := t.TempDir()
	writeFashion(t, dataDir, 16, 8)
	for _, tc := range []struct{ tex, want int }{{0, 2}, {1, 1}, {3, 3}} {
		c := smallConfig(t, dataDir)
		c.Arch, c.Epochs, c.TEx = "resnet18b_fq_lq_tern_tex_2", 1, tc.tex
		sum, err := Run(context.Background(), c, ioDiscard{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.TEx != tc.want {
			t.Errorf("--tex %d: trained with t_ex %d, want %d", tc.tex, sum.TEx, tc.want)
		}
	}
}
