package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tnn-go/tnn/data"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/train"
)

// addTrainFlags registers the reference main.py's flags (same names) and tnn's own.
func addTrainFlags(fs *pflag.FlagSet, c *train.Config) {
	d := train.Defaults()
	fs.StringVar(&c.DataPath, "data_path", "", "dataset folder (default: the dataset's standard locations); for imagenet and imagefolder, the folder holding train/ and val/ class folders")
	fs.StringVar(&c.Dataset, "dataset", "", "dataset: "+strings.Join(data.Names(), ", ")+" (default "+d.Dataset+", or the --resume checkpoint's)")
	fs.StringVar(&c.Arch, "arch", "", "architecture (default "+d.Arch+", or the --resume checkpoint's); 'tnn archs' lists them")
	fs.IntVar(&c.Epochs, "epochs", d.Epochs, "number of epochs")
	fs.StringVar(&c.Optimizer, "optimizer", d.Optimizer, "SGD (momentum, Nesterov) or Adam")
	fs.Float64Var(&c.LearningRate, "learning_rate", d.LearningRate, "base learning rate")
	fs.Float64Var(&c.Momentum, "momentum", d.Momentum, "SGD momentum")
	fs.Float64Var(&c.Decay, "decay", d.Decay, "weight decay (L2 added to every gradient)")
	fs.IntSliceVar(&c.Schedule, "schedule", nil, "epochs at which the learning rate is multiplied by the matching gamma, e.g. --schedule 80 120 160")
	fs.Float64SliceVar(&c.Gammas, "gammas", nil, "learning-rate factors, one per --schedule epoch, e.g. --gammas 0.1 0.1 0.5")
	fs.StringVar(&c.LRSchedule, "lr_schedule", d.LRSchedule, "cosine, or step (the default when --schedule is given)")
	fs.IntVar(&c.BatchSize, "batch_size", d.BatchSize, "batch size")
	fs.IntVar(&c.PrintFreq, "print_freq", d.PrintFreq, "progress line every N steps when not on a terminal")
	fs.StringVar(&c.SavePath, "save_path", "", "output folder (default save/<dataset>_<arch>)")
	fs.StringVar(&c.Resume, "resume", "", "checkpoint to resume from (model, optimizer, epoch, history); also a PyTorch .pth/.pth.tar/.pt (weights, and the seed's epoch)")
	fs.IntVar(&c.StartEpoch, "start_epoch", d.StartEpoch, "override the epoch to start at (default: the checkpoint's, or 0)")
	fs.BoolVar(&c.FineTune, "fine_tune", false, "with --resume: load weights only and start at epoch 0; a classifier for another number of classes is replaced by a fresh one")
	fs.BoolVar(&c.Pretrained, "pretrained", false, "start from torchvision's ImageNet weights for --arch (resnet18/34/50/101 and their ternary variants), downloaded once into $TNN_HOME/checkpoints (default: the user cache folder, tnn/checkpoints); weights only, as --fine_tune")
	fs.BoolVar(&c.ModelOnly, "model_only", false, "save weights only (no optimizer state)")
	fs.IntVar(&c.Workers, "workers", d.Workers, "data loading goroutines (they decode the JPEG/PNG files of imagenet and imagefolder)")
	fs.Uint64Var(&c.ManualSeed, "manualSeed", d.ManualSeed, "random seed (initialisation, data order, augmentation)")
	fs.IntVar(&c.Subset, "subset", 0, "train on the first N training images only (0 = all; image folders: N images spread over all classes)")
	fs.IntVar(&c.Threads, "threads", 0, "compute threads (default: all CPUs)")
	fs.Float64Var(&c.TFactor, "tfactor", d.TFactor, "ternary threshold factor t: threshold = t·max|W|")
	fs.IntVar(&c.TEx, "tex", 0, "residual expansion terms t_ex for ternary layers (thresholds t·1 … t·t_ex; default 1)")
	fs.IntVar(&c.NumClasses, "num_classes", 0, "classifier outputs (default: the dataset's)")
	fs.IntVar(&c.ImageSize, "image_size", 0, "imagenet and imagefolder: side of the square crop the model sees (default 224, or the --resume checkpoint's; AlexNets need at least 63); validation resizes to image_size·256/224 first")
	fs.StringVar(&c.Device, "device", "cpu", deviceHelp)
	fs.StringVar(&c.RELScheme, "rel_scheme", "", "how residual-expansion terms are fitted: paper (the reference's thresholds t·i, default), greedy (least-squares fit of each residual), optimal (nested thresholds fitted by Lloyd iterations)")
}

func newTrainCmd() *cobra.Command {
	var c train.Config
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a model (the reference main.py)",
		Long: `Train a model as the reference main.py does. Each epoch: set the learning rate, train,
evaluate on the test set, save checkpoint.safetensors (and model_best.safetensors), and
rewrite accuracy.txt, curve.png and summary.json in --save_path.

The defaults train a ternary ResNet-20 on a 6,000-image Fashion-MNIST sample built into
the binary, with the paper's CIFAR recipe (SGD, Nesterov momentum 0.9, lr 0.1, decay 3e-4,
batch 128) and a cosine learning rate over 10 epochs.

--dataset imagenet (or imagefolder, for any folder of the same layout and its own classes)
reads --data_path/train/<class>/*.jpg|jpeg|png and --data_path/val/<class>/…, classes in
sorted folder order as torchvision's ImageFolder. Images are decoded by the --workers
goroutines as batches are made: RandomResizedCrop(224) + horizontal flip for training,
Resize(256) + CenterCrop(224) for validation (scaled with --image_size), ImageNet mean/std.
A binary built with -tags turbojpeg (cgo, libturbojpeg) decodes JPEG several times faster.`,
		Example: `  tnn train
  tnn train --dataset fashion-mnist --arch tern_resnet20 --epochs 15 --lr_schedule cosine
  tnn train --dataset cifar10 --data_path ./cifar --arch tern_resnet20 --epochs 200 \
      --schedule 80 120 160 --gammas 0.1 0.1 0.5
  tnn train --dataset imagefolder --data_path ./flowers --arch resnet18 --image_size 64 --epochs 30
  tnn train --resume save/fashion-mnist_tern_resnet20/checkpoint.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("schedule") && !cmd.Flags().Changed("lr_schedule") {
				c.LRSchedule = "step"
			}
			if c.Evaluate {
				return evalRun(cmd, c)
			}
			_, err := train.Run(cmd.Context(), c, cmd.OutOrStdout())
			return err
		},
	}
	addTrainFlags(cmd.Flags(), &c)
	cmd.Flags().BoolVar(&c.Evaluate, "evaluate", false, "only evaluate the --resume checkpoint on the test set")
	return cmd
}

func newEvalCmd() *cobra.Command {
	var c train.Config
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a checkpoint on a test set (top-1, top-5, loss)",
		Example: `  tnn eval --resume save/fashion-mnist-sample_tern_resnet20/model_best.safetensors
  tnn eval --resume model.safetensors --dataset fashion-mnist`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return evalRun(cmd, c)
		},
	}
	addTrainFlags(cmd.Flags(), &c)
	return cmd
}

func evalRun(cmd *cobra.Command, c train.Config) error {
	if c.Resume == "" && !c.Pretrained {
		return fmt.Errorf("%w: eval needs --resume CHECKPOINT (or --pretrained)", train.ErrConfig)
	}
	r, err := train.Evaluate(c, cmd.OutOrStdout())
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "top1=%.2f top5=%.2f loss=%.4f images=%d\n", r.Top1, r.Top5, r.Loss, r.Images)
	return nil
}

func newDownloadCmd() *cobra.Command {
	var dataset, dir string
	cmd := &cobra.Command{
		Use:   "download",
		Short: "Download a dataset from its official location, verifying checksums",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("%w: download needs --data_path DIR", train.ErrConfig)
			}
			if err := data.Download(dataset, dir, cmd.ErrOrStderr()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is in %s; train with: tnn train --dataset %s --data_path %s\n", dataset, dir, dataset, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataset, "dataset", "fashion-mnist", "dataset: "+strings.Join(data.Names(), ", "))
	cmd.Flags().StringVar(&dir, "data_path", "", "folder to download into")
	return cmd
}

func newArchsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "archs",
		Short: "List the architectures --arch accepts",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			for _, a := range models.Names() {
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
		},
	}
}
