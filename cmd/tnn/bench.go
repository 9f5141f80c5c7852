package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tnn-go/tnn/train"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure training or inference speed on CIFAR-shaped synthetic data",
		Long: `Measure speed on random 3×32×32 images with 10 classes, as the PyTorch reference's
torch_ref.py --bench and --infer do, so the two can be compared on the same machine.
The last line is machine-readable.`,
	}
	for _, mode := range []string{"train", "infer"} {
		c := train.BenchConfig{Train: mode == "train"}
		var model string // infer only: time a packed model with the runtime instead
		var int8 bool
		short := "Time training steps (forward, backward, SGD step)"
		if mode == "infer" {
			short = "Time eval-mode forward passes"
		}
		sub := &cobra.Command{
			Use:     mode,
			Short:   short,
			Example: fmt.Sprintf("  tnn bench %s --arch tern_resnet20 --batch_size 128 --steps 10 --threads 2", mode),
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if model != "" {
					return benchPacked(cmd, model, int8, c)
				}
				r, err := train.Bench(c)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "tnn bench %s: arch=%s batch=%d steps=%d threads=%d tex=%d device=%s: %.1f img/s, %.2f ms/step\n",
					mode, c.Arch, c.BatchSize, c.Steps, r.Threads, max(c.TEx, 1), c.Device, r.ImgPerS, r.MsPerStep)
				fmt.Fprintf(out, "img_per_s=%.1f ms_per_step=%.3f\n", r.ImgPerS, r.MsPerStep)
				return nil
			},
		}
		fs := sub.Flags()
		fs.StringVar(&c.Arch, "arch", "tern_resnet20", "architecture")
		fs.IntVar(&c.BatchSize, "batch_size", 128, "batch size")
		fs.IntVar(&c.Steps, "steps", 10, "timed steps")
		fs.IntVar(&c.Warmup, "warmup", 3, "untimed steps first")
		fs.IntVar(&c.Threads, "threads", 0, "compute threads (default: all CPUs)")
		fs.IntVar(&c.TEx, "tex", 1, "residual expansion terms for ternary layers")
		fs.StringVar(&c.RELScheme, "rel_scheme", "", "how residual-expansion terms are fitted: paper (default), greedy or optimal, as tnn train's")
		fs.StringVar(&c.Device, "device", "cpu", deviceHelp)
		if mode == "infer" {
			fs.StringVar(&model, "model", "", "time this packed model (tnn export) with the runtime of tnn infer instead of --arch")
			fs.BoolVar(&int8, "int8", false, "with --model: 8-bit activations, as tnn infer --int8")
		}
		cmd.AddCommand(sub)
	}
	return cmd
}
