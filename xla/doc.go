// Package xla trains and evaluates the project's networks on accelerators
// through GoMLX (github.com/gomlx/gomlx) and XLA's PJRT plugins.
//
// There is no second copy of any model: Lower walks the same models.Spec
// node list that models.Net executes on the CPU and emits GoMLX graph
// operations for it. The semantics are the CPU engine's (and so PyTorch's):
//
//   - Conv2d and Linear multiply with the ternarized weight of package
//     ternary's paper scheme, Σ_i α_i·[|W| ≥ t_i·max|W|]·sign(W), with
//     α_i summed in float64; the gradient is the straight-through estimator
//     t_ex·g where |W| < 1 and 0 elsewhere (a custom gradient), biases added
//     once. The fitted REL schemes (greedy, optimal) are CPU-only.
//   - BatchNorm normalises with the biased batch variance in training and
//     moves running_mean/running_var by momentum 0.1 toward the batch mean
//     and unbiased variance; eval uses the running statistics.
//   - ReLU passes no gradient at 0; DownsampleA, max pooling (padding as
//     −inf), average pooling (count_include_pad), global average pooling,
//     flatten and residual sums as in package nn.
//   - SGD (momentum, dampening, Nesterov, weight decay) and Adam update in
//     the same compiled step, with package optim's formulas and the
//     per-step scalars computed on the host as optim computes them.
//
// Tensors keep their state_dict names (Model.Params, Model.Stats), and a
// Trainer copies its state back into the host models.Net and
// optim.Optimizer on Sync, so checkpoints written by package train are the
// same files whichever engine trained them, and resume on either.
//
// # Backends and builds
//
// The default build is pure Go: it holds the lowering and GoMLX's pure-Go
// backend ("go", with the Reverse and Pad operations it lacks added here),
// on which the tests check forward passes, gradients, optimizer updates and
// whole train.Run sessions against the CPU engine. XLA loads PJRT plugins
// with dlopen through cgo, so it is only compiled with the xla build tag:
//
//	go build -tags xla -o tnn ./cmd/tnn
//
// Such a tnn accepts --device cuda (PJRT plugin "cuda") and xla:NAME (a
// plugin by name, e.g. xla:cpu, or by absolute path). Plugins are searched
// in $PJRT_PLUGIN_LIBRARY_PATH under the name pjrt_c_api_<name>_plugin.so;
// the CUDA plugin of the jax-cuda13-pjrt (or -cuda12-) Python wheel is
// jax_plugins/xla_cuda13/xla_cuda_plugin.so, so a symlink
// pjrt_c_api_cuda_plugin.so next to it and PJRT_PLUGIN_LIBRARY_PATH set to
// that folder make it "cuda". GOMLX_NO_AUTO_INSTALL=1 stops GoMLX from
// downloading plugins itself. scripts/gpu_check.sh does all of this.
//
// # Steps
//
// One compiled program per batch shape does forward, loss, gradients and
// the update; weights, statistics and optimizer buffers stay on the device
// and are donated to the next step. The host sees the loss and top-1 count
// of each step (for progress and divergence checks, as on the CPU), and the
// weights when train syncs them (once per epoch and before a checkpoint).
// An epoch's last, smaller batch compiles once more; evaluation pads its
// last batch instead, since eval-mode rows are independent.
//
// # Several GPUs (--ngpu N), a design
//
// Data parallelism maps onto GoMLX's SPMD execution: build the same step
// with graph.Exec.SPMD over a one-axis mesh of N devices
// (distributed.NewDeviceMesh), feed each device a 1/N slice of the batch
// (the loader's batch split in N, which keeps the data order of a
// single-GPU run), keep parameters and optimizer buffers replicated, and
// sum the gradients with g.Distributed().AllReduce (lowered to NCCL by
// the CUDA plugin) before the identical update on every device. BatchNorm
// then has a choice the CPU engine does not: per-device batch statistics
// (torch DistributedDataParallel's default) or statistics all-reduced
// across devices (SyncBatchNorm, equal to the single-device run); the
// latter is two more AllReduces of C floats per layer and is the one that
// keeps checkpoints and accuracy comparable. --batch_size stays the global
// batch, so the learning-rate schedule needs no change.
package xla
