package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tnn-go/tnn/data"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
)

func newSummaryCmd() *cobra.Command {
	var model, arch, dataset, packing string
	var tex int
	cmd := &cobra.Command{
		Use:   "summary",
		Short: "Per-layer table of a model: shapes, parameters per bit-width, memory, MACs, sparsity",
		Long: `Summary prints, per layer, the output shape, ternary and 32-bit parameters, bytes in
the packed file, multiply-accumulates (and how many have a ternary weight, done as
additions), and with --model the fraction of zero weights; then the packed size, the
size as float32 and the compression ratio. With --model the size is the file's; with
--arch it is what 'tnn export' would write.`,
		Example: `  tnn summary --arch tern_resnet20 --dataset cifar10
  tnn summary --arch tern_resnet20 --tex 2 --packing base3
  tnn summary --model model.tnn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s *packed.Summary
			switch {
			case model != "" && arch != "":
				return fmt.Errorf("%w: give --model or --arch, not both", errDeploy)
			case model != "":
				m, err := packed.ReadFile(model)
				if err != nil {
					return err
				}
				if s, err = packed.Summarize(m); err != nil {
					return err
				}
			case arch != "":
				ds, err := data.Spec(dataset)
				if err != nil {
					return err
				}
				p, err := packed.ParsePacking(packing)
				if err != nil {
					return err
				}
				if tex < 1 {
					return fmt.Errorf("%w: --tex must be at least 1", errDeploy)
				}
				spec, err := models.New(arch, models.Config{InC: ds.C, H: ds.H, W: ds.W, Classes: ds.Classes})
				if err != nil {
					return err
				}
				if s, err = packed.Estimate(spec, tex, p); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: summary needs --model FILE or --arch A", errDeploy)
			}
			return s.Write(cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "packed model file")
	fl.StringVar(&arch, "arch", "", "architecture ('tnn archs' lists them)")
	fl.StringVar(&dataset, "dataset", "fashion-mnist", "dataset giving the input size and classes with --arch: "+strings.Join(data.Names(), ", "))
	fl.StringVar(&packing, "packing", "2bit", "with --arch: 2bit or base3")
	fl.IntVar(&tex, "tex", 1, "with --arch: residual expansion terms t_ex")
	return cmd
}
