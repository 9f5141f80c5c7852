// Package nn holds the layers of the CPU training engine. Each layer has one
// explicit Forward and one explicit Backward, owns its output and input-gradient
// buffers, and reuses them from step to step: once sized, a training step
// allocates nothing. The elementwise and reduction loops (BatchNorm, ReLU,
// residual sums, im2col) are package internal/vec's SIMD kernels.
//
// Conventions: activations are NCHW float32. Backward overwrites (does not
// accumulate into) Param.Grad, since a layer's parameters are used once per
// forward pass; the graph executor in package models sums gradients where
// one activation feeds several layers.
package nn

import (
	"runtime"

	"github.com/tnn-go/tnn/gemm"
	"github.com/tnn-go/tnn/tensor"
)

// Layer is one node of a network.
type Layer interface {
	// Forward computes the output from the inputs; train selects batch
	// statistics for BatchNorm. The result is owned by the layer and valid
	// until the next Forward.
	Forward(in []*tensor.Tensor, train bool) *tensor.Tensor
	// Backward takes dL/d(output) and returns dL/d(input) for each input
	// (owned by the layer), setting the gradients of the layer's parameters.
	// With needDx false, input gradients may be skipped and returned as nil.
	Backward(dy *tensor.Tensor, needDx bool) []*tensor.Tensor
	// Params lists trainable parameters in state_dict order.
	Params() []*Param
	// Buffers lists non-trainable state (BatchNorm running statistics) in
	// state_dict order, after the parameters.
	Buffers() []tensor.Named
}

// WeightQuantizer maps a latent full-precision weight to the weight used by
// the forward pass, and maps the gradient back. The ternary package
// implements it; nil means full precision.
type WeightQuantizer interface {
	// Quantize writes the effective weight of w into wq (same length).
	Quantize(w, wq []float32)
	// Backward writes dL/dw into gw given dL/dwq in gq (straight-through).
	Backward(w, gq, gw []float32)
}

// noParams is embedded by layers without parameters or buffers.
type noParams struct{}

func (noParams) Params() []*Param        { return nil }
func (noParams) Buffers() []tensor.Named { return nil }

// ensure returns t reshaped to shape, allocating t when nil.
func ensure(t *tensor.Tensor, shape ...int) *tensor.Tensor {
	if t == nil {
		return tensor.New(shape...)
	}
	t.Reshape(shape...)
	return t
}

// scratch returns per-worker buffers of at least n floats, growing as needed.
func scratch(bufs [][]float32, workers, n int) [][]float32 {
	for len(bufs) < workers {
		bufs = append(bufs, nil)
	}
	for i := range bufs[:workers] {
		if cap(bufs[i]) < n {
			bufs[i] = make([]float32, n)
		}
		bufs[i] = bufs[i][:n]
	}
	return bufs
}

// convTemps holds the per-worker temporaries of one convolution call:
// im2col columns, transformed Winograd tiles, partial weight gradients.
// Layers run one after another, so instead of every Conv2d keeping its own
// (tens of MB over a ResNet, which pushed a training run's peak memory past
// PyTorch's), a call borrows a set from freeTemps and returns it: the set
// grows to the largest layer's needs and is reused by all of them, while
// calls that do run at once (two networks in two goroutines) get distinct
// sets.
type convTemps struct {
	cols, dcols, dws  [][]float32
	vs, ms, tmps, dus [][]float32
	du                []float32
	phase             [][]float32 // one channel split into column phases (stride 2)
	gws               []*gemm.Workspace
}

// workspaces makes sure every worker has its own GEMM workspace.
func (t *convTemps) workspaces(workers int) {
	for len(t.gws) < workers {
		t.gws = append(t.gws, new(gemm.Workspace))
	}
}

// freeTemps is a bounded free list rather than a sync.Pool, which the
// collector would empty at every cycle (see gemm's workspaces).
var freeTemps = make(chan *convTemps, 2*runtime.GOMAXPROCS(0)+4)

func getTemps() *convTemps {
	select {
	case t := <-freeTemps:
		return t
	default:
		return new(convTemps)
	}
}

func putTemps(t *convTemps) {
	select {
	case freeTemps <- t:
	default:
	}
}
