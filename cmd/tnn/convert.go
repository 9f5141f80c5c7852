package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/pth"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/train"
)

func newConvertCmd() *cobra.Command {
	var arch string
	cmd := &cobra.Command{
		Use:   "convert IN OUT",
		Short: "Convert weights between PyTorch .pth and tnn checkpoints (.safetensors)",
		Long: `Convert reads IN, a tnn checkpoint (.safetensors) or a PyTorch file (torch.save's zip or
legacy format: .pth, .pth.tar, .pt; a state_dict, or a dict holding one under "state_dict";
DataParallel's "module." prefix is removed), and writes its weights to OUT in the format
OUT's extension names:

  .safetensors              a tnn checkpoint: tnn eval, train --resume/--fine_tune, export
  .pth, .pt, .pth.tar       torch.save's zip format (PyTorch 1.13 layout), so that
                            model.load_state_dict(torch.load(OUT)) works in PyTorch

Only weights and BatchNorm statistics are converted; optimizer and training state are not.
With --arch (or an "arch" entry in the file) the weights are checked against that
architecture first, naming every missing, unexpected or mis-shaped tensor.`,
		Example: `  tnn convert resnet18-5c106cde.pth resnet18.safetensors --arch resnet18
  tnn convert save/cifar10_tern_resnet20/model_best.safetensors tern_resnet20.pth`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := convert(args[0], args[1], arch)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&arch, "arch", "", "check the weights against this architecture (default: the file's, if it names one)")
	return cmd
}

// outFormat returns "safetensors" or "pth" from a file name.
func outFormat(path string) (string, error) {
	p := strings.ToLower(path)
	switch {
	case strings.HasSuffix(p, ".safetensors"):
		return "safetensors", nil
	case strings.HasSuffix(p, ".pth"), strings.HasSuffix(p, ".pt"), strings.HasSuffix(p, ".pth.tar"):
		return "pth", nil
	}
	return "", fmt.Errorf("%w: convert writes .safetensors (tnn) or .pth, .pt, .pth.tar (PyTorch), not %s", errDeploy, path)
}

func convert(in, out, arch string) (string, error) {
	format, err := outFormat(out)
	if err != nil {
		return "", err
	}
	ck, imported, err := train.LoadCheckpoint(in)
	if err != nil {
		return "", fmt.Errorf("%s: %w", in, err)
	}
	var info train.Info
	if len(ck.Info) > 0 {
		if err := json.Unmarshal(ck.Info, &info); err != nil {
			return "", fmt.Errorf("%w: %s: training state unreadable: %v", train.ErrCheckpoint, in, err)
		}
	}
	if arch == "" {
		arch = info.Arch
		if imported != nil && slices.Contains(models.Names(), imported.Arch) {
			arch = imported.Arch
		}
	}
	sd := ck.Model
	var notes []string
	if imported != nil {
		notes = append(notes, fmt.Sprintf("read PyTorch %s file (%s)", imported.Format, imported.DtypeSummary()))
		if imported.Prefix != "" {
			notes = append(notes, fmt.Sprintf("%q prefix removed", imported.Prefix))
		}
		if len(imported.Skipped) > 0 {
			notes = append(notes, "not converted: "+strings.Join(imported.Skipped, ", "))
		}
	}
	classes := 0
	if arch != "" {
		var fitNotes []string
		if sd, classes, fitNotes, err = checkArch(arch, sd); err != nil {
			return "", fmt.Errorf("%s: %w", in, err)
		}
		notes = append(notes, fitNotes...)
		notes = append(notes, fmt.Sprintf("matches %s with %d classes", arch, classes))
	}
	switch format {
	case "pth":
		if len(ck.Optim) > 0 || len(ck.Info) > 0 {
			notes = append(notes, "optimizer and training state not converted")
		}
		if err := pth.Save(out, sd); err != nil {
			return "", err
		}
	default:
		c := &checkpoint.Checkpoint{Model: sd, Optim: ck.Optim, Info: ck.Info}
		if imported != nil && arch != "" {
			// Enough for tnn eval, train and export to rebuild the model.
			if c.Info, err = json.Marshal(train.Info{Arch: arch, Classes: classes}); err != nil {
				return "", err
			}
		}
		if err := checkpoint.Save(out, c); err != nil {
			return "", err
		}
	}
	values := 0
	for _, e := range sd {
		values += len(e.T.Data)
	}
	msg := fmt.Sprintf("wrote %s: %d tensors, %d values", out, len(sd), values)
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	return msg, nil
}

// checkArch loads sd into arch, built for the input channels and classes
// the weights themselves imply, so that any other difference is reported by
// name. It returns the state_dict as loaded (old BatchNorm counters added).
func checkArch(arch string, sd []tensor.Named) ([]tensor.Named, int, []string, error) {
	have := map[string]*tensor.Tensor{}
	for _, e := range sd {
		have[e.Name] = e.T
	}
	// The first and last layers' names come from a throwaway build.
	probe, err := models.New(arch, models.Config{InC: 3, H: 224, W: 224, Classes: 10})
	if err != nil {
		return nil, 0, nil, err
	}
	inC, classes := 3, 10
	if w := have[probe.Nodes[0].Name+".weight"]; w != nil && len(w.Shape) == 4 {
		inC = w.Shape[1]
	}
	if w := have[probe.Nodes[len(probe.Nodes)-1].Name+".weight"]; w != nil && len(w.Shape) == 2 {
		classes = w.Shape[0]
	}
	// 224×224 is the ImageNet models' size; the CIFAR ones pool globally.
	spec, err := models.New(arch, models.Config{InC: inC, H: 224, W: 224, Classes: classes})
	if err != nil {
		return nil, 0, nil, err
	}
	net, err := models.Build(spec, models.Options{})
	if err != nil {
		return nil, 0, nil, err
	}
	fitted, notes := pth.Fit(net, sd, pth.FitOptions{})
	if err := net.LoadStateDict(fitted); err != nil {
		return nil, 0, nil, err
	}
	return fitted, classes, notes, nil
}
