package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tnn-go/tnn/data"
	"github.com/tnn-go/tnn/infer"
	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/rng"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/train"
)

func newInferCmd() *cobra.Command {
	var model, dataset, dataPath string
	var batch, threads int
	var int8 bool
	cmd := &cobra.Command{
		Use:   "infer --model FILE [IMAGE...]",
		Short: "Run a packed model: top-1/top-5 on a test set, or the top-5 labels of image files",
		Long: `Infer runs a packed model (tnn export) from its packed weights, never from a float32
copy of them. With image files (PNG or JPEG) it converts each to the model's channels and
size, normalises it as the training data was, and prints the five most probable labels.
Without, it reports top-1 and top-5 on the test split of --dataset (default: the dataset
the model was trained on).

By default activations are float32 and the results are those of the float model (tnn eval
of the checkpoint), up to float rounding. --int8 quantises the activations entering each
ternary layer to 8 bits (one scale per image and layer) and multiplies them by the trits
with int8 SIMD instructions: several times faster, at a small cost in accuracy (measured on
Fashion-MNIST: see the README).`,
		Example: `  tnn infer --model model.tnn
  tnn infer --model model.tnn --dataset fashion-mnist --data_path ./fashion
  tnn infer --model model.tnn --int8
  tnn infer --model model.tnn shoe.png shirt.jpg`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" {
				return fmt.Errorf("%w: infer needs --model FILE", errDeploy)
			}
			if batch <= 0 || threads < 0 {
				return fmt.Errorf("%w: --batch_size must be positive and --threads not negative", errDeploy)
			}
			parallel.SetThreads(threads)
			m, err := packed.ReadFile(model)
			if err != nil {
				return err
			}
			e, err := infer.New(m, infer.Options{Int8: int8})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if int8 {
				fmt.Fprintln(out, "note: --int8 quantises activations to 8 bits; accuracy may differ from the float model's (tnn eval)")
			}
			if len(args) > 0 {
				return classify(cmd, e, args)
			}
			if dataset == "" {
				dataset = m.Dataset
			}
			if dataset == "" {
				return fmt.Errorf("%w: the model names no dataset; give --dataset", errDeploy)
			}
			s := m.Spec
			// Image folders (imagenet, imagefolder) are decoded as batches
			// are made, resized and cropped to the model's input, on every
			// core; the other datasets are in memory already.
			var opt data.Options
			workers := 1
			if data.IsImageFolder(dataset) {
				opt.ImageSize, workers = s.H, runtime.GOMAXPROCS(0)
			}
			src, err := data.Open(dataset, dataPath, false, opt)
			if err != nil {
				return err
			}
			if c, h, w := src.Dims(); c != s.InC || h != s.H || w != s.W {
				return fmt.Errorf("%w: %s images are %dx%dx%d, the model takes %dx%dx%d", errDeploy, dataset, c, h, w, s.InC, s.H, s.W)
			}
			if f, ok := src.(*data.ImageFolder); ok && len(f.ClassNames) > s.Classes {
				return fmt.Errorf("%w: %s has %d classes, the model %d", errDeploy, dataPath, len(f.ClassNames), s.Classes)
			}
			loader := data.NewLoader(src, data.LoaderConfig{BatchSize: batch, Norm: data.Norm{Mean: m.Norm.Mean, Std: m.Norm.Std}, Workers: workers})
			defer loader.Close()
			loader.Start(0)
			var top1, top5, n int
			start := time.Now()
			for {
				if err := cmd.Context().Err(); err != nil {
					return fmt.Errorf("%w: after %d images", train.ErrInterrupted, n)
				}
				b, ok := loader.Next()
				if !ok {
					break
				}
				logits, err := e.Forward(b.X)
				if err != nil {
					return err
				}
				top1 += nn.TopK(logits, b.Y, 1)
				top5 += nn.TopK(logits, b.Y, min(5, s.Classes))
				n += len(b.Y)
				loader.Release(b)
			}
			if err := loader.Err(); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: %s has no test images", errDeploy, dataset)
			}
			sec := time.Since(start).Seconds()
			fmt.Fprintf(out, "top1=%.2f top5=%.2f images=%d mode=%s kernels=%s time=%.1fs img_per_s=%.0f\n",
				100*float64(top1)/float64(n), 100*float64(top5)/float64(n), n, mode(e), e.Kernels(), sec, float64(n)/sec)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "packed model file (tnn export)")
	fl.StringVar(&dataset, "dataset", "", "test set: "+strings.Join(data.Names(), ", ")+" (default: the model's)")
	fl.StringVar(&dataPath, "data_path", "", "dataset folder (default: the dataset's standard locations)")
	fl.IntVar(&batch, "batch_size", 256, "images per batch")
	fl.IntVar(&threads, "threads", 0, "compute threads (default: all CPUs)")
	fl.BoolVar(&int8, "int8", false, "8-bit activations: faster, slightly less accurate than the float model")
	return cmd
}

func mode(e *infer.Engine) string {
	if e.Int8() {
		return "int8"
	}
	return "exact"
}

func classify(cmd *cobra.Command, e *infer.Engine, paths []string) error {
	m := e.Model
	s := m.Spec
	x := tensor.New(len(paths), s.InC, s.H, s.W)
	sz := s.InC * s.H * s.W
	for i, p := range paths {
		v, err := infer.ImageInput(p, m)
		if err != nil {
			return err
		}
		copy(x.Data[i*sz:], v)
	}
	logits, err := e.Forward(x)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for i, p := range paths {
		var parts []string
		for _, g := range infer.Top(logits.Data[i*s.Classes:(i+1)*s.Classes], m.ClassNames, 5) {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", g.Label, 100*g.Prob))
		}
		fmt.Fprintf(out, "%s: %s\n", p, strings.Join(parts, ", "))
	}
	return nil
}

// benchPacked is tnn bench infer --model: forward passes of the packed
// runtime on random normal input of the model's shape.
func benchPacked(cmd *cobra.Command, path string, int8 bool, c train.BenchConfig) error {
	if c.BatchSize <= 0 || c.Steps <= 0 || c.Warmup < 0 || c.Threads < 0 {
		return fmt.Errorf("%w: batch size and steps must be positive", errDeploy)
	}
	parallel.SetThreads(c.Threads)
	m, err := packed.ReadFile(path)
	if err != nil {
		return err
	}
	e, err := infer.New(m, infer.Options{Int8: int8})
	if err != nil {
		return err
	}
	s := m.Spec
	x := tensor.New(c.BatchSize, s.InC, s.H, s.W)
	r := rng.New(2)
	for i := range x.Data {
		x.Data[i] = float32(r.Normal())
	}
	for i := 0; i < c.Warmup; i++ {
		if _, err := e.Forward(x); err != nil {
			return err
		}
	}
	start := time.Now()
	for i := 0; i < c.Steps; i++ {
		if err := cmd.Context().Err(); err != nil {
			return fmt.Errorf("%w: after %d steps", train.ErrInterrupted, i)
		}
		if _, err := e.Forward(x); err != nil {
			return err
		}
	}
	sec := time.Since(start).Seconds()
	imgPerS, msPerStep := float64(c.BatchSize*c.Steps)/sec, 1000*sec/float64(c.Steps)
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "tnn bench infer: model=%s arch=%s input=%dx%dx%d mode=%s kernels=%s batch=%d steps=%d threads=%d: %.1f img/s, %.3f ms/step\n",
		path, s.Arch, s.InC, s.H, s.W, mode(e), e.Kernels(), c.BatchSize, c.Steps, parallel.Threads(), imgPerS, msPerStep)
	fmt.Fprintf(out, "img_per_s=%.1f ms_per_step=%.3f\n", imgPerS, msPerStep)
	return nil
}
