// Command tnn trains, evaluates and deploys ternarized convolutional
// networks (He, Gong, Fan, WACV 2019) in pure Go.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tnn-go/tnn/train"
)

// Exit statuses.
const (
	exitFailure     = 1 // the run itself failed (diverged, disk full)
	exitUsage       = 2 // bad input: flags, files, shapes
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(ctx)
	root.SetArgs(joinNargs(args, "--schedule", "--gammas"))
	err := root.Execute()
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintln(os.Stderr, "tnn: "+msg)
	switch {
	case errors.Is(err, train.ErrInterrupted):
		return exitInterrupted
	case errors.Is(err, train.ErrDiverged):
		return exitFailure
	}
	return exitUsage
}

func newRoot(ctx context.Context) *cobra.Command {
	root := &cobra.Command{
		Use:   "tnn",
		Short: "Train and deploy ternarized CNNs (weights in {-α, 0, +α}) in pure Go",
		Long: `tnn trains convolutional networks whose weights are ternary, as in He, Gong and Fan,
"Optimize Deep Convolutional Neural Network with Ternarized Weights and High Accuracy" (WACV 2019).

Start with 'tnn train': with no flags it trains a ternary ResNet-20 on a small
Fashion-MNIST sample built into the binary.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetContext(ctx)
	root.AddCommand(newTrainCmd(), newEvalCmd(), newDownloadCmd(), newArchsCmd(), newBenchCmd(), newExportCmd(), newInferCmd(), newSummaryCmd(), newConvertCmd())
	return root
}

// joinNargs turns the reference's space-separated list flags
// ("--schedule 80 120 160") into the comma form pflag reads.
func joinNargs(args []string, names ...string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		isList := false
		for _, n := range names {
			isList = isList || a == n
		}
		if !isList {
			continue
		}
		var vals []string
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			vals = append(vals, args[i+1])
			i++
		}
		if len(vals) > 0 {
			out = append(out, strings.Join(vals, ","))
		}
	}
	return out
}
