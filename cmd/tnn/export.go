package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/data"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/pth"
	"github.com/tnn-go/tnn/ternary"
	"github.com/tnn-go/tnn/train"
)

// errDeploy reports bad input to export, infer and summary.
var errDeploy = errors.New("invalid option")

type exportFlags struct {
	resume, arch, out, packing, dataset string
	tex                                 int
	tfactor                             float64
	randomInit                          bool
	seed                                uint64
}

func newExportCmd() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Pack a checkpoint into a deployable model file (packed trits, folded BatchNorm)",
		Long: `Export writes a checkpoint's network as a packed model (see packed/FORMAT.md): ternary
weights as 2-bit codes or base-3 digits (5 per byte), BatchNorm folded into per-channel
scale and bias, the input normalisation and class names, with a CRC-32.
Architecture, t_ex, threshold factor and dataset come from the checkpoint unless given.`,
		Example: `  tnn export --resume save/fashion-mnist_tern_resnet20/model_best.safetensors --out model.tnn
  tnn export --resume model_best.safetensors --out model.tnn --packing base3
  tnn export --random_init --arch tern_resnet20 --dataset cifar10 --out bench.tnn   # for tnn bench infer --model`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := exportModel(f)
			if err != nil {
				return err
			}
			if err := packed.WriteFile(f.out, m); err != nil {
				return err
			}
			s, err := packed.Summarize(m)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s t_ex=%d %s, %d bytes (float32 parameters: %d bytes, %.2fx smaller)\n",
				f.out, m.Spec.Arch, m.TEx, m.Packing, s.FileBytes, s.Float32Bytes, s.Ratio())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.resume, "resume", "", "checkpoint to export (required)")
	fl.StringVar(&f.out, "out", "", "packed model file to write (required)")
	fl.StringVar(&f.arch, "arch", "", "architecture (default: the checkpoint's)")
	fl.StringVar(&f.packing, "packing", "2bit", "weight packing: 2bit (4 trits per byte) or base3 (5 trits per byte)")
	fl.StringVar(&f.dataset, "dataset", "", "dataset whose normalisation and class names to store (default: the checkpoint's)")
	fl.IntVar(&f.tex, "tex", 0, "residual expansion terms t_ex (default: the checkpoint's)")
	fl.Float64Var(&f.tfactor, "tfactor", 0, "ternary threshold factor (default: the checkpoint's)")
	fl.BoolVar(&f.randomInit, "random_init", false, "export a freshly initialised --arch for --dataset instead of a checkpoint (to measure speed)")
	fl.Uint64Var(&f.seed, "manualSeed", 1, "with --random_init: the initialisation seed")
	return cmd
}

func exportModel(f exportFlags) (*packed.Model, error) {
	if (f.resume == "") == !f.randomInit || f.out == "" {
		return nil, fmt.Errorf("%w: export needs --out FILE and either --resume CHECKPOINT or --random_init", errDeploy)
	}
	p, err := packed.ParsePacking(f.packing)
	if err != nil {
		return nil, err
	}
	ck := &checkpoint.Checkpoint{}
	var imported *pth.File // a PyTorch --resume file
	if !f.randomInit {
		if ck, imported, err = train.LoadCheckpoint(f.resume); err != nil {
			return nil, fmt.Errorf("--resume %s: %w", f.resume, err)
		}
		if imported != nil && f.arch == "" {
			f.arch = imported.Arch
		}
	}
	var info train.Info
	if len(ck.Info) > 0 {
		if err := json.Unmarshal(ck.Info, &info); err != nil {
			return nil, fmt.Errorf("%w: --resume %s: training state unreadable: %v", train.ErrCheckpoint, f.resume, err)
		}
	}
	if f.arch == "" {
		f.arch = info.Arch
	}
	if f.dataset == "" {
		f.dataset = info.Dataset
	}
	if f.tex == 0 {
		f.tex = max(info.TEx, 1)
	}
	if f.tfactor == 0 {
		f.tfactor = info.TFactor
		if f.tfactor == 0 {
			f.tfactor = ternary.DefaultTFactor
		}
	}
	if f.arch == "" || f.dataset == "" {
		if f.randomInit {
			return nil, fmt.Errorf("%w: --random_init needs --arch and --dataset", errDeploy)
		}
		return nil, fmt.Errorf("%w: %s has no training state; give --arch and --dataset", errDeploy, f.resume)
	}
	ds, err := data.Spec(f.dataset)
	if err != nil {
		return nil, err
	}
	cfg := models.Config{InC: ds.C, H: ds.H, W: ds.W, Classes: ds.Classes}
	if info.InC > 0 {
		cfg = models.Config{InC: info.InC, H: info.H, W: info.W, Classes: info.Classes}
	}
	spec, err := models.New(f.arch, cfg)
	if err != nil {
		return nil, err
	}
	net, err := models.Build(spec, models.Options{TFactor: f.tfactor, TEx: f.tex})
	if err != nil {
		return nil, err
	}
	if f.randomInit {
		net.Init(f.seed)
	} else {
		// Fit only supplies the BatchNorm counters old PyTorch files lack.
		sd, _ := pth.Fit(net, ck.Model, pth.FitOptions{})
		if err := net.LoadStateDict(sd); err != nil {
			return nil, fmt.Errorf("--resume %s: %w", f.resume, err)
		}
	}
	names := ds.ClassNames
	if len(names) != cfg.Classes {
		names = nil
	}
	if cfg.InC != ds.C {
		return nil, fmt.Errorf("%w: the model takes %d channels, dataset %s has %d", errDeploy, cfg.InC, f.dataset, ds.C)
	}
	return packed.FromNet(net, packed.Options{Packing: p, TFactor: f.tfactor, TEx: f.tex, Dataset: f.dataset,
		Norm: packed.Norm{Mean: perChannel(ds.Norm.Mean, ds.C, 0), Std: perChannel(ds.Norm.Std, ds.C, 1)}, ClassNames: names})
}

// perChannel expands a normalisation list as data.Loader reads it: short
// lists repeat their last entry, empty ones mean def.
func perChannel(v []float32, c int, def float32) []float32 {
	out := make([]float32, c)
	for i := range out {
		out[i] = def
		if len(v) > 0 {
			out[i] = v[min(i, len(v)-1)]
		}
	}
	return out
}
