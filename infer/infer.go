// Package infer runs a packed model (package packed) straight from its
// packed weights, never from a float32 copy of them.
//
// Activations are NHWC. A convolution is an implicit GEMM over the padded
// input (no im2col buffer), computed by tile kernels of mr output pixels ×
// 16 or 32 output channels (see convLayer); the folded BatchNorm, the bias,
// the sum of residual-expansion terms, a residual sum and a following ReLU
// all happen in the kernels' epilogue. Each ternary layer's levels are
// decoded once, when the Engine is built, from the packed codes into a
// compact int8 panel, a quarter of the size of a float32 copy; the packed
// model stays the source. Two modes:
//
//   - exact (the default): float32 activations; the kernels widen each
//     step's int8 weights to float in registers and accumulate with FMA.
//     The logits are those of models.Net in eval mode up to float rounding,
//     so accuracy is tnn eval's.
//   - int8 (Options.Int8): the input of every ternary layer is quantised to
//     8 bits, one scale per image and tensor taken from its largest
//     magnitude (unsigned after a ReLU, offset by 128 otherwise), and the
//     kernels multiply bytes by trits into int32 with VPDPBUSD (AVX-512
//     VNNI) or VPMADDUBSW (AVX2). Several times faster, a little less
//     accurate.
//
// Full-precision layers (resnet20 and other float models) use gemm.Sgemm.
// Images of a batch go to separate threads; for large models (see
// teamMinMACs) a batch smaller than the thread count is computed image by
// image, the threads sharing each layer (see team).
package infer

import (
	"errors"
	"fmt"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
)

var (
	// ErrInput reports an input whose shape the model does not take.
	ErrInput = errors.New("infer: input shape does not match the model")
	// ErrTooLarge reports a model whose activations would not fit in memory.
	ErrTooLarge = errors.New("infer: model too large")
)

// maxScratch bounds the scratch of one worker (in float32s, 1 GiB), so that
// a crafted Spec with enormous activations is refused rather than allocated.
const maxScratch = 1 << 28

// Options select how an Engine computes.
type Options struct {
	// Int8 quantises the activations entering each ternary layer to 8 bits
	// (see the package comment). Off, activations stay float32 and the
	// result is that of the float model.
	Int8 bool
	// fakeInt8 rounds the inputs of ternary layers as Int8 does but
	// computes in float: a reference for the tests.
	fakeInt8 bool
}

// teamMinMACs is the work per image above which the threads share the
// images of a batch smaller than their count. Below, layers take a few
// microseconds, a hand-off costs a fair part of that, and on a machine
// busy with other processes a helper thread descheduled in mid-layer
// stalls the image: measured on tern_resnet20 at 3×32×32 (41 M
// multiply-adds), one thread per image had the lower median latency.
var teamMinMACs = 200_000_000

// Engine runs one packed model. Forward is not safe for concurrent use.
type Engine struct {
	Model *packed.Model
	opts  Options
	spec  *models.Spec
	ks    *kernelSet
	steps []step
	// nbuf float32 buffers of bufLen elements per worker hold the values.
	nbuf, bufLen int
	inBuf        int // buffer of the network input (NHWC)
	outBuf       int // buffer of the logits
	qLen, fLen   int // padded-input scratch: bytes (int8) and float32s
	spreadLen    int // one row of an int8 layer's input, channels padded
	colLen       int // im2col scratch of full-precision layers
	maxOC        int
	macs         int // multiply-adds of the conv and linear layers per image
	workers      []*worker
}

// worker is one goroutine's scratch.
type worker struct {
	bufs   [][]float32
	amax   []float32 // per buffer: its largest magnitude if known, else -1
	qpad   []byte
	fpad   []float32
	col    []float32
	spread []float32
	fake   []float32 // fakeInt8's rounded input
	scale  []float32 // per-call epilogue scale and bias of an int8 layer
	bias   []float32
}

// New prepares a model for inference.
func New(m *packed.Model, o Options) (*Engine, error) { return newWith(m, o, active) }

// newWith is New with the kernels of ks (the tests try every set).
func newWith(m *packed.Model, o Options, ks *kernelSet) (*Engine, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{Model: m, opts: o, spec: m.Spec, ks: ks}
	if err := e.plan(); err != nil {
		return nil, err
	}
	return e, nil
}

// Int8 reports whether the engine quantises activations to 8 bits.
func (e *Engine) Int8() bool { return e.opts.Int8 }

// Kernels names the kernels the engine runs ("avx512-vnni", "avx2", "go").
func (e *Engine) Kernels() string { return e.ks.name }

func (e *Engine) newWorker() *worker {
	w := &worker{bufs: make([][]float32, e.nbuf), amax: make([]float32, e.nbuf)}
	for i := range w.bufs {
		w.bufs[i] = make([]float32, e.bufLen)
	}
	w.qpad = make([]byte, e.qLen)
	w.fpad = make([]float32, e.fLen)
	w.col = make([]float32, e.colLen)
	w.spread = make([]float32, e.spreadLen)
	if e.opts.fakeInt8 {
		w.fake = make([]float32, e.bufLen)
	}
	w.scale = make([]float32, e.maxOC)
	w.bias = make([]float32, e.maxOC)
	return w
}

// Forward runs x (N×C×H×W, normalised) and returns the logits (N×classes).
func (e *Engine) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	s := e.spec
	if len(x.Shape) != 4 || x.Shape[1] != s.InC || x.Shape[2] != s.H || x.Shape[3] != s.W || len(x.Data) != tensor.Numel(x.Shape) {
		return nil, fmt.Errorf("%w: got %v, want N×%d×%d×%d", ErrInput, x.Shape, s.InC, s.H, s.W)
	}
	n := x.Shape[0]
	out := tensor.New(n, s.Classes)
	for len(e.workers) < parallel.Threads() {
		e.workers = append(e.workers, nil)
	}
	inSz := s.InC * s.H * s.W
	if threads := parallel.Threads(); n < threads && threads > 1 && e.macs >= teamMinMACs {
		// Too few images to go round: the threads share each image.
		if e.workers[0] == nil {
			e.workers[0] = e.newWorker()
		}
		w := e.workers[0]
		tm := newTeam(threads, e.spreadLen)
		defer tm.stop()
		for i := 0; i < n; i++ {
			e.image(w, x.Data[i*inSz:(i+1)*inSz], tm)
			copy(out.Data[i*s.Classes:(i+1)*s.Classes], w.bufs[e.outBuf])
		}
		return out, nil
	}
	parallel.For(n, func(lo, hi, wk int) {
		if e.workers[wk] == nil {
			e.workers[wk] = e.newWorker()
		}
		w := e.workers[wk]
		for i := lo; i < hi; i++ {
			e.image(w, x.Data[i*inSz:(i+1)*inSz], nil)
			copy(out.Data[i*s.Classes:(i+1)*s.Classes], w.bufs[e.outBuf])
		}
	})
	return out, nil
}

// image runs the whole network on one C×H×W image, with the team if not nil.
func (e *Engine) image(w *worker, x []float32, tm *team) {
	s := e.spec
	hw := s.H * s.W
	in := w.bufs[e.inBuf]
	w.amax[e.inBuf] = -1
	for c := 0; c < s.InC; c++ {
		for p, v := range x[c*hw : (c+1)*hw] {
			in[p*s.InC+c] = v
		}
	}
	for i := range e.steps {
		e.steps[i].run(e, w, tm)
	}
}
