package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/data"
	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/optim"
	"github.com/tnn-go/tnn/pth"
	"github.com/tnn-go/tnn/report"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/ternary"
)

// ErrDiverged reports a NaN or infinite loss.
var ErrDiverged = errors.New("training diverged")

// ErrInterrupted reports a run stopped by a signal after saving a checkpoint.
var ErrInterrupted = errors.New("interrupted")

// ErrCheckpoint reports a --resume file that cannot be used.
var ErrCheckpoint = errors.New("bad checkpoint")

// File names inside --save_path.
const (
	CheckpointFile = "checkpoint.safetensors"
	BestFile       = "model_best.safetensors"
	AccuracyFile   = "accuracy.txt"
	CurveFile      = "curve.png"
	SummaryFile    = "summary.json"
)

// Info is the training state stored in a checkpoint's metadata.
type Info struct {
	Arch    string  `json:"arch"`
	Dataset string  `json:"dataset"`
	InC     int     `json:"in_channels"`
	H       int     `json:"height"`
	W       int     `json:"width"`
	Classes int     `json:"classes"`
	TFactor float64 `json:"tfactor"`
	TEx     int     `json:"tex"`
	Epoch   int     `json:"epoch"` // epochs completed
	// Step > 0 marks a checkpoint taken mid-epoch (after an interrupt):
	// Step batches of epoch Epoch are done and Partial holds their sums.
	Step     int              `json:"step,omitempty"`
	Partial  *partial         `json:"partial,omitempty"`
	BestTop1 float64          `json:"best_top1"`
	History  []report.Epoch   `json:"history"`
	Optim    *optim.StateInfo `json:"optimizer,omitempty"`
	Args     Config           `json:"args"`
}

type partial struct {
	Images  int     `json:"images"`
	LossSum float64 `json:"loss_sum"`
	Correct int     `json:"correct"`
	Seconds float64 `json:"seconds"`
}

// Summary is summary.json.
type Summary struct {
	Arch         string  `json:"arch"`
	Dataset      string  `json:"dataset"`
	Epochs       int     `json:"epochs"`
	TrainImages  int     `json:"train_images"`
	TestImages   int     `json:"test_images"`
	BestTop1     float64 `json:"best_top1"`
	FinalTop1    float64 `json:"final_top1"`
	FinalTop5    float64 `json:"final_top5"`
	FinalLoss    float64 `json:"final_loss"`
	TrainImgPerS float64 `json:"train_img_per_s"`
	// TrainSeconds sums the training time of every epoch, across resumes;
	// WallSeconds is the time of the process that finished the run.
	TrainSeconds float64 `json:"train_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	Threads      int     `json:"threads"`
	Seed         uint64  `json:"seed"`
	TFactor      float64 `json:"tfactor"`
	TEx          int     `json:"tex"`
	RELScheme    string  `json:"rel_scheme,omitempty"` // with tex > 1
	GOARCH       string  `json:"goarch"`
}

// Result of an evaluation pass.
type Result struct {
	Loss, Top1, Top5 float64
	Images           int
}

// session is everything one run holds.
type session struct {
	cfg         Config
	out         io.Writer
	log         *report.Log
	train, test data.Source
	spec        data.DatasetSpec
	net         *models.Net
	opt         optim.Optimizer
	sched       optim.Schedule
	info        Info
	ce          nn.CrossEntropy
	dev         Device // nil: the CPU engine runs the steps

	imported *pth.File // the PyTorch file of --resume or --pretrained
	notes    []string  // what loading the weights adapted, for the log
}

// Run trains (or with Evaluate only evaluates) as configured, printing to out.
// Cancelling ctx stops training after the current step and saves a
// resumable checkpoint; Run then returns ErrInterrupted.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	parallel.SetThreads(cfg.Threads)
	s := &session{cfg: cfg, out: out}
	if err := s.setup(); err != nil {
		return nil, err
	}
	defer s.closeDevice()
	if cfg.Evaluate {
		r, err := s.evaluate()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "**Test** Prec@1 %.2f Prec@5 %.2f Loss %.4f (%d images)\n", r.Top1, r.Top5, r.Loss, r.Images)
		return &Summary{Arch: cfg.Arch, Dataset: cfg.Dataset, TestImages: r.Images, FinalTop1: r.Top1, FinalTop5: r.Top5, FinalLoss: r.Loss, BestTop1: r.Top1}, nil
	}
	defer s.log.Close()
	return s.loop(ctx)
}

// Evaluate loads a checkpoint and reports test top-1/top-5/loss.
func Evaluate(cfg Config, out io.Writer) (Result, error) {
	cfg.Evaluate = true
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	parallel.SetThreads(cfg.Threads)
	s := &session{cfg: cfg, out: out}
	if err := s.setup(); err != nil {
		return Result{}, err
	}
	defer s.closeDevice()
	return s.evaluate()
}

func (s *session) setup() error {
	cfg := &s.cfg
	var ck *checkpoint.Checkpoint
	var ckInfo *Info
	if cfg.Resume != "" || cfg.Pretrained {
		var err error
		if ck, err = s.openCheckpoint(); err != nil {
			return err
		}
		if len(ck.Info) > 0 {
			ckInfo = new(Info)
			if err := json.Unmarshal(ck.Info, ckInfo); err != nil {
				return fmt.Errorf("%w: --resume %s: training state unreadable: %v", ErrCheckpoint, cfg.Resume, err)
			}
			// A checkpoint knows its model; flags that were not given follow it.
			if cfg.Arch == "" {
				cfg.Arch = ckInfo.Arch
			}
			if !cfg.FineTune && cfg.TEx == 0 {
				cfg.TEx = ckInfo.TEx
			}
			if !cfg.FineTune && cfg.RELScheme == "" {
				cfg.RELScheme = ckInfo.Args.RELScheme
			}
			if cfg.Dataset == "" {
				cfg.Dataset = ckInfo.Dataset
				if cfg.DataPath == "" {
					cfg.DataPath = ckInfo.Args.DataPath
				}
			}
			if cfg.ImageSize == 0 {
				cfg.ImageSize = ckInfo.Args.ImageSize
			}
		}
	}
	if cfg.Dataset == "" {
		cfg.Dataset = Defaults().Dataset
	}
	if cfg.Arch == "" {
		cfg.Arch = Defaults().Arch
	}
	if cfg.ImageSize != 0 && !data.IsImageFolder(cfg.Dataset) {
		return fmt.Errorf("%w: --image_size applies to the image-folder datasets (imagenet, imagefolder), not %s", ErrConfig, cfg.Dataset)
	}
	dopt := data.Options{ImageSize: cfg.ImageSize}
	spec, err := data.SpecOf(cfg.Dataset, cfg.DataPath, dopt)
	if err != nil {
		return err
	}
	s.spec = spec
	classes := spec.Classes
	if cfg.NumClasses > 0 {
		classes = cfg.NumClasses
	}
	ms, err := models.New(cfg.Arch, models.Config{InC: spec.C, H: spec.H, W: spec.W, Classes: classes})
	if err != nil {
		return err
	}
	if cfg.TEx == 0 {
		cfg.TEx = max(ms.TEx, 1) // resnet18b_fq_lq_tern_tex_4 means t_ex = 4 unless --tex says otherwise
	}
	scheme, err := ternary.ParseScheme(cfg.RELScheme)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if s.net, err = models.Build(ms, models.Options{TFactor: cfg.TFactor, TEx: cfg.TEx, Scheme: scheme}); err != nil {
		return err
	}
	s.net.Init(cfg.ManualSeed)
	if s.test, err = data.Open(cfg.Dataset, cfg.DataPath, false, dopt); err != nil {
		return err
	}
	if !cfg.Evaluate {
		if s.train, err = data.Open(cfg.Dataset, cfg.DataPath, true, dopt); err != nil {
			return err
		}
		s.train = data.Subset(s.train, cfg.Subset)
		// Only once the data is known to be there, so that a mistyped
		// --data_path leaves no empty run folder behind.
		if cfg.SavePath == "" {
			cfg.SavePath = DefaultSavePath(*cfg)
		}
		if err := prepareSavePath(cfg.SavePath); err != nil {
			return err
		}
	}
	// The reference always uses Nesterov momentum with SGD.
	hyper := optim.Hyper{LR: cfg.LearningRate, WeightDecay: cfg.Decay, Momentum: cfg.Momentum, Nesterov: cfg.Momentum > 0}
	if s.opt, err = optim.New(cfg.Optimizer, s.net.Params(), hyper); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	kind := cfg.LRSchedule
	if s.sched, err = optim.NewSchedule(kind, cfg.LearningRate, cfg.Epochs, cfg.Schedule, cfg.Gammas); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	s.info = Info{Arch: cfg.Arch, Dataset: cfg.Dataset, InC: spec.C, H: spec.H, W: spec.W, Classes: classes,
		TFactor: cfg.TFactor, TEx: cfg.TEx, Args: *cfg}
	if ck != nil {
		if err := s.loadWeights(ck); err != nil {
			return err
		}
		if ckInfo != nil && !cfg.FineTune && !cfg.Evaluate {
			s.info.Epoch, s.info.Step, s.info.Partial = ckInfo.Epoch, ckInfo.Step, ckInfo.Partial
			s.info.BestTop1, s.info.History = ckInfo.BestTop1, ckInfo.History
			if ckInfo.Optim != nil && len(ck.Optim) > 0 {
				if err := s.opt.LoadState(ck.Optim, *ckInfo.Optim); err != nil {
					return fmt.Errorf("%w: --resume %s: %v", ErrCheckpoint, cfg.Resume, err)
				}
			}
		}
	}
	if cfg.StartEpoch >= 0 && !cfg.Evaluate {
		s.info.Epoch, s.info.Step, s.info.Partial = cfg.StartEpoch, 0, nil
	}
	if usesDevice(cfg.Device) {
		// Opened last: the device starts from the resumed weights and optimizer state.
		if s.dev, err = OpenDevice(cfg.Device, s.net, s.opt); err != nil {
			return err
		}
	}
	if !cfg.Evaluate {
		if s.log, err = report.OpenLog(cfg.SavePath, int64(cfg.ManualSeed), s.out); err != nil {
			s.closeDevice()
			return err
		}
	}
	return nil
}

func (s *session) closeDevice() {
	if s.dev != nil {
		s.dev.Close()
		s.dev = nil
	}
}

// syncDevice brings the host network and optimizer up to date with the
// device before they are logged, checkpointed or checked.
func (s *session) syncDevice() error {
	if s.dev == nil {
		return nil
	}
	return s.dev.Sync()
}

// evalForward returns eval-mode logits from the device or the CPU engine.
func (s *session) evalForward(x *tensor.Tensor) *tensor.Tensor {
	if s.dev != nil {
		logits, err := s.dev.Forward(x)
		if err == nil {
			return logits
		}
		// The host copy is current whenever evaluate runs (after an epoch's
		// Sync): finish on the CPU engine rather than lose the epoch.
		msg := fmt.Sprintf("device evaluation failed (%v); continuing on the CPU engine", err)
		if s.log != nil {
			s.log.Printf("%s", msg)
		} else {
			fmt.Fprintln(s.out, msg)
		}
		s.closeDevice()
	}
	return s.net.Predict(x)
}

// step trains on one batch with the CPU engine or the device.
func (s *session) step(b *data.Batch, lr float64) (loss float64, correct int, err error) {
	if s.dev != nil {
		return s.dev.TrainStep(b.X, b.Y, lr)
	}
	logits := s.net.Forward(b.X, true)
	loss = s.ce.Forward(logits, b.Y)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, 0, nil
	}
	correct = nn.TopK(logits, b.Y, 1)
	s.net.Backward(s.ce.Backward())
	return loss, correct, s.opt.Step()
}

func (s *session) loop(ctx context.Context) (*Summary, error) {
	cfg := s.cfg
	lg := s.log
	lg.Printf("tnn train: arch=%s dataset=%s (%d train / %d test images, %dx%dx%d, %d classes) epochs=%d batch=%d optimizer=%s lr=%g lr_schedule=%s decay=%g tex=%d rel_scheme=%s tfactor=%g threads=%d seed=%d",
		cfg.Arch, cfg.Dataset, s.train.Len(), s.test.Len(), s.spec.C, s.spec.H, s.spec.W, s.info.Classes, cfg.Epochs, cfg.BatchSize,
		cfg.Optimizer, cfg.LearningRate, cfg.LRSchedule, cfg.Decay, cfg.TEx, scheme(cfg.RELScheme), cfg.TFactor, parallel.Threads(), cfg.ManualSeed)
	if s.dev != nil {
		lg.Printf("device %s: steps and evaluation run there; the first step of each batch size compiles", cfg.Device)
	}
	if data.IsImageFolder(cfg.Dataset) {
		lg.Printf("images are decoded as batches are made (--workers %d); JPEG decoder: %s", cfg.Workers, data.JPEGDecoder)
	}
	if cfg.Resume != "" {
		// Counted from 1, as the interruption message and the epoch lines do.
		lg.Printf("resumed from %s at epoch %d step %d", cfg.Resume, s.info.Epoch+1, s.info.Step)
	}
	for _, n := range s.notes {
		lg.Printf("%s", n)
	}
	loader := data.NewLoader(s.train, data.LoaderConfig{BatchSize: cfg.BatchSize, Shuffle: true, Augment: s.spec.TrainAugment,
		Norm: s.spec.Norm, Seed: cfg.ManualSeed, Workers: cfg.Workers})
	defer loader.Close()
	start := time.Now()
	for epoch := s.info.Epoch; epoch < cfg.Epochs; epoch++ {
		lr := s.sched.LR(epoch)
		if err := s.opt.SetLR(lr); err != nil {
			return nil, err
		}
		rec, err := s.trainEpoch(ctx, loader, epoch, lr)
		if err != nil {
			return nil, err
		}
		r, err := s.evaluate()
		if err != nil {
			return nil, err
		}
		rec.TestLoss, rec.TestTop1, rec.TestTop5 = r.Loss, r.Top1, r.Top5
		s.info.History = append(s.info.History, rec)
		s.info.Epoch, s.info.Step, s.info.Partial = epoch+1, 0, nil
		best := r.Top1 > s.info.BestTop1 || len(s.info.History) == 1
		if best {
			s.info.BestTop1 = r.Top1
		}
		lg.Printf("epoch %d/%d lr %.6f train_loss %.4f train_acc %.2f test_loss %.4f test_acc %.2f test_top5 %.2f best %.2f time %.1fs (%.0f img/s)",
			epoch+1, cfg.Epochs, lr, rec.TrainLoss, rec.TrainTop1, r.Loss, r.Top1, r.Top5, s.info.BestTop1, rec.Seconds, rec.ImgPerS)
		s.logTernary()
		if err := s.save(best); err != nil {
			return nil, err
		}
		if err := s.writeReports(start); err != nil {
			return nil, err
		}
	}
	sum := s.summary(start)
	lg.Printf("done: final top-1 %.2f top-5 %.2f, best top-1 %.2f, %.0f train img/s; outputs in %s", sum.FinalTop1, sum.FinalTop5, sum.BestTop1, sum.TrainImgPerS, cfg.SavePath)
	if cfg.Dataset == "fashion-mnist-sample" {
		lg.Printf("This was the built-in 6,000-image sample. For the full Fashion-MNIST: tnn train --dataset fashion-mnist --epochs 15 " +
			"(files from Debian's dataset-fashion-mnist package, or 'tnn download --dataset fashion-mnist --data_path DIR' and add --data_path DIR); " +
			"for CIFAR-10: tnn download --dataset cifar10 --data_path DIR, then tnn train --dataset cifar10 --data_path DIR")
	}
	return sum, nil
}

func (s *session) trainEpoch(ctx context.Context, loader *data.Loader, epoch int, lr float64) (report.Epoch, error) {
	cfg := s.cfg
	p := partial{}
	skip := 0
	if s.info.Step > 0 && s.info.Epoch == epoch {
		skip = s.info.Step
		if s.info.Partial != nil {
			p = *s.info.Partial
		}
	}
	prog := s.log.Progress(epoch, loader.Len(), cfg.PrintFreq)
	t0 := time.Now()
	loader.Start(epoch)
	step := 0
	for {
		b, ok := loader.Next()
		if !ok {
			break
		}
		step++
		if step <= skip {
			loader.Release(b)
			continue
		}
		loss, correct, err := s.step(b, lr)
		if err != nil {
			loader.Release(b)
			return report.Epoch{}, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			loader.Release(b)
			return report.Epoch{}, fmt.Errorf("%w: loss is %v at epoch %d step %d; lower --learning_rate (now %g). The last good checkpoint is %s",
				ErrDiverged, loss, epoch+1, step, lr, filepath.Join(cfg.SavePath, CheckpointFile))
		}
		n := len(b.Y)
		loader.Release(b)
		p.Images += n
		p.LossSum += loss * float64(n)
		p.Correct += correct
		prog.Update(step-1, n, loss, 100*float64(correct)/float64(n))
		if ctx.Err() != nil && step < loader.Len() {
			prog.Finish()
			p.Seconds += time.Since(t0).Seconds()
			s.info.Epoch, s.info.Step, s.info.Partial = epoch, step, &p
			if err := s.save(false); err != nil {
				return report.Epoch{}, err
			}
			s.log.Printf("interrupted at epoch %d step %d/%d; checkpoint saved. Resume with the same command plus --resume %s",
				epoch+1, step, loader.Len(), filepath.Join(cfg.SavePath, CheckpointFile))
			return report.Epoch{}, ErrInterrupted
		}
	}
	prog.Finish()
	if err := loader.Err(); err != nil {
		return report.Epoch{}, fmt.Errorf("epoch %d: %w", epoch+1, err)
	}
	p.Seconds += time.Since(t0).Seconds()
	if err := s.syncDevice(); err != nil {
		return report.Epoch{}, err
	}
	rec := report.Epoch{Epoch: epoch + 1, LR: lr, Seconds: p.Seconds}
	if p.Images > 0 {
		rec.TrainLoss = p.LossSum / float64(p.Images)
		rec.TrainTop1 = 100 * float64(p.Correct) / float64(p.Images)
		rec.ImgPerS = float64(p.Images) / p.Seconds
	}
	return rec, nil
}

// evaluate runs the test set in eval mode.
func (s *session) evaluate() (Result, error) {
	bs := max(s.cfg.BatchSize, 256)
	loader := data.NewLoader(s.test, data.LoaderConfig{BatchSize: bs, Norm: s.spec.Norm, Seed: s.cfg.ManualSeed, Workers: s.cfg.Workers})
	defer loader.Close()
	loader.Start(0)
	var r Result
	var lossSum float64
	var top1, top5 int
	for {
		b, ok := loader.Next()
		if !ok {
			break
		}
		logits := s.evalForward(b.X)
		lossSum += s.ce.Forward(logits, b.Y) * float64(len(b.Y))
		top1 += nn.TopK(logits, b.Y, 1)
		top5 += nn.TopK(logits, b.Y, 5)
		r.Images += len(b.Y)
		loader.Release(b)
	}
	if err := loader.Err(); err != nil {
		return Result{}, fmt.Errorf("evaluation: %w", err)
	}
	if r.Images > 0 {
		r.Loss = lossSum / float64(r.Images)
		r.Top1 = 100 * float64(top1) / float64(r.Images)
		r.Top5 = 100 * float64(top5) / float64(r.Images)
	}
	return r, nil
}

// logTernary reports per-layer α, sparsity and reconstruction error.
func (s *session) logTernary() {
	for _, tl := range s.net.TernaryLayers() {
		w := tl.Weight.Data.Data
		wq := make([]float32, len(w))
		tl.Quant.Quantize(w, wq)
		var num, den float64
		for i, v := range w {
			d := float64(v - wq[i])
			num += d * d
			den += float64(v) * float64(v)
		}
		rel := 0.0
		if den > 0 {
			rel = math.Sqrt(num / den)
		}
		s.log.Detailf("  ternary %-24s alpha %v sparsity %.3f rel_err %.4f", tl.Name, tl.Quant.Alpha, tl.Quant.Sparsity(w), rel)
	}
}

func (s *session) save(best bool) error {
	if err := s.syncDevice(); err != nil {
		return err
	}
	// Never replace a good checkpoint with a broken model: a finite loss
	// can hide weights that have already overflowed.
	for _, e := range s.net.StateDict() {
		if !tensor.AllFinite(e.T.Data) {
			return fmt.Errorf("%w: %s contains NaN or Inf after epoch %d; lower --learning_rate (now %g). The last good checkpoint is %s",
				ErrDiverged, e.Name, s.info.Epoch, s.opt.LR(), filepath.Join(s.cfg.SavePath, CheckpointFile))
		}
	}
	info, err := json.Marshal(s.info)
	if err != nil {
		return err
	}
	ck := &checkpoint.Checkpoint{Model: s.net.StateDict(), Info: info}
	if !s.cfg.ModelOnly {
		var st optim.StateInfo
		ck.Optim, st = s.opt.State()
		s.info.Optim = &st
		if ck.Info, err = json.Marshal(s.info); err != nil {
			return err
		}
	}
	if err := checkpoint.Save(filepath.Join(s.cfg.SavePath, CheckpointFile), ck); err != nil {
		return err
	}
	if best {
		return checkpoint.Save(filepath.Join(s.cfg.SavePath, BestFile), &checkpoint.Checkpoint{Model: ck.Model, Info: ck.Info})
	}
	return nil
}

func (s *session) summary(start time.Time) *Summary {
	h := s.info.History
	sum := &Summary{Arch: s.cfg.Arch, Dataset: s.cfg.Dataset, Epochs: len(h), TrainImages: s.train.Len(), TestImages: s.test.Len(),
		BestTop1: s.info.BestTop1, WallSeconds: time.Since(start).Seconds(), Threads: parallel.Threads(),
		Seed: s.cfg.ManualSeed, TFactor: s.cfg.TFactor, TEx: s.cfg.TEx, GOARCH: runtime.GOARCH}
	if s.cfg.TEx > 1 {
		sum.RELScheme = scheme(s.cfg.RELScheme)
	}
	if len(h) > 0 {
		last := h[len(h)-1]
		sum.FinalTop1, sum.FinalTop5, sum.FinalLoss = last.TestTop1, last.TestTop5, last.TestLoss
		var imgs, secs float64
		for _, e := range h {
			imgs += e.ImgPerS * e.Seconds
			secs += e.Seconds
		}
		sum.TrainSeconds = secs
		if secs > 0 {
			sum.TrainImgPerS = imgs / secs
		}
	}
	return sum
}

func (s *session) writeReports(start time.Time) error {
	dir := s.cfg.SavePath
	if err := report.WriteAccuracy(filepath.Join(dir, AccuracyFile), s.info.History); err != nil {
		return err
	}
	if err := report.WriteCurve(filepath.Join(dir, CurveFile), s.info.History); err != nil {
		return err
	}
	return report.WriteJSON(filepath.Join(dir, SummaryFile), s.summary(start))
}

func scheme(s string) string {
	if s == "" {
		return string(ternary.Paper)
	}
	return s
}
