package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tnn-go/tnn/data"
	"github.com/tnn-go/tnn/infer"
	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/train"
)

func newInferCmd() *cobra.Command {
	var model, dataset, dataPath string
	var batch, threads int
	cmd := &cobra.Command{
		Use:   "infer --model FILE [IMAGE...]",
		Short: "Run a packed model: top-1/top-5 on a test set, or the top-5 labels of image files",
		Long: `Infer runs a packed model (tnn export) from its packed weights: ternary layers add and
subtract activations, then scale once per channel. With image files (PNG or JPEG) it
converts each to the model's channels and size, normalises it as the training data was,
and prints the five most probable labels. Without, it reports top-1 and top-5 on the
test split of --dataset (default: the dataset the model was trained on).`,
		Example: `  tnn infer --model model.tnn
  tnn infer --model model.tnn --dataset fashion-mnist --data_path ./fashion
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
			e, err := infer.New(m)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) > 0 {
				return classify(cmd, e, args)
			}
			if dataset == "" {
				dataset = m.Dataset
			}
			if dataset == "" {
				return fmt.Errorf("%w: the model names no dataset; give --dataset", errDeploy)
			}
			ds, err := data.Load(dataset, dataPath, false)
			if err != nil {
				return err
			}
			s := m.Spec
			if ds.C != s.InC || ds.H != s.H || ds.W != s.W {
				return fmt.Errorf("%w: %s images are %dx%dx%d, the model takes %dx%dx%d", errDeploy, dataset, ds.C, ds.H, ds.W, s.InC, s.H, s.W)
			}
			loader := data.NewLoader(ds, data.LoaderConfig{BatchSize: batch, Norm: data.Norm{Mean: m.Norm.Mean, Std: m.Norm.Std}, Workers: 1})
			defer loader.Close()
			loader.Start(0)
			var top1, top5, n int
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
			if n == 0 {
				return fmt.Errorf("%w: %s has no test images", errDeploy, dataset)
			}
			fmt.Fprintf(out, "top1=%.2f top5=%.2f images=%d\n", 100*float64(top1)/float64(n), 100*float64(top5)/float64(n), n)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "packed model file (tnn export)")
	fl.StringVar(&dataset, "dataset", "", "test set: "+strings.Join(data.Names(), ", ")+" (default: the model's)")
	fl.StringVar(&dataPath, "data_path", "", "dataset folder (default: the dataset's standard locations)")
	fl.IntVar(&batch, "batch_size", 256, "images per batch")
	fl.IntVar(&threads, "threads", 0, "compute threads (default: all CPUs)")
	return cmd
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
