package xla

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/optim"
	"github.com/tnn-go/tnn/tensor"
	"github.com/tnn-go/tnn/ternary"
)

// Trainer runs the training steps and evaluation passes of a models.Net on
// a GoMLX backend. Weights, BatchNorm statistics and optimizer buffers live
// on the device between steps; the host's Net and Optimizer are the
// checkpointable copy, refreshed by Sync. One step is one compiled program:
// forward, cross-entropy, gradients and the optimizer update.
type Trainer struct {
	backend backends.Backend
	model   *Model
	opt     Optimizer
	hostOpt optim.Optimizer

	// state is params, then stats, then buffers (buffer-major), on the device.
	state        []*tensors.Tensor
	nP, nS, nB   int
	tracked      []*tensor.Tensor // num_batches_tracked of each BatchNorm (host)
	step         int64            // optimizer steps done
	lr           float64          // of the last step
	dirty        bool             // device state newer than the host copy
	train, eval  *graph.Exec
	evalBatch    int
	hostByName   map[string]*tensor.Tensor
	paramTensors []*tensor.Tensor
}

// NewTrainer lowers net's Spec for device (see Devices) and copies its
// weights, BatchNorm statistics and opt's state there. The Trainer takes
// the learning rate per step; opt gives the kind, the hyper-parameters and
// the step count, and receives the device state back on Sync.
func NewTrainer(device string, net *models.Net, opt optim.Optimizer) (*Trainer, error) {
	m, err := LowerNet(net)
	if err != nil {
		return nil, err
	}
	named, info := opt.State()
	o, err := NewOptimizer(info.Kind, info.Hyper)
	if err != nil {
		return nil, err
	}
	b, err := openBackend(device)
	if err != nil {
		return nil, err
	}
	t := &Trainer{backend: b, model: m, opt: o, hostOpt: opt, step: info.Step,
		hostByName: map[string]*tensor.Tensor{}}
	for _, e := range net.StateDict() {
		t.hostByName[e.Name] = e.T
	}
	for _, p := range net.Params() {
		t.paramTensors = append(t.paramTensors, p.Data)
	}
	for _, n := range net.Spec.Nodes {
		if n.Op == models.OpBatchNorm1d || n.Op == models.OpBatchNorm2d {
			t.tracked = append(t.tracked, t.hostByName[n.Name+".num_batches_tracked"])
		}
	}
	bufs := map[string]*tensor.Tensor{}
	for _, e := range named {
		bufs[e.Name] = e.T
	}
	up := func(src *tensor.Tensor, shape []int) *tensors.Tensor {
		if src == nil {
			return tensors.FromShape(shapes.Make(dtypes.Float32, shape...)) // zeros: torch's fresh buffers
		}
		return tensors.FromFlatDataAndDimensions(src.Data, shape...) // copies
	}
	for i, p := range m.Params {
		t.state = append(t.state, up(t.paramTensors[i], p.Shape))
	}
	for _, s := range m.Stats {
		t.state = append(t.state, up(t.hostByName[s.Name], s.Shape))
	}
	for _, bn := range o.Buffers() {
		for _, p := range m.Params {
			t.state = append(t.state, up(bufs[p.Name+"."+bn], p.Shape))
		}
	}
	t.nP, t.nS = len(m.Params), len(m.Stats)
	t.nB = len(t.state) - t.nP - t.nS
	if t.train, err = graph.NewExec(b, t.trainGraph); err != nil {
		t.Close()
		return nil, fmt.Errorf("%w %q: %v", ErrDevice, device, err)
	}
	if t.eval, err = graph.NewExec(b, t.evalGraph); err != nil {
		t.Close()
		return nil, fmt.Errorf("%w %q: %v", ErrDevice, device, err)
	}
	// Batch sizes: the full one and the epoch's last, for train and eval.
	t.train.SetMaxCache(8)
	t.eval.SetMaxCache(8)
	return t, nil
}

// LowerNet lowers a built network with its own ternary factors (bit for bit
// the float32 t·i its quantizers use) and checks that the lowered tensors
// are the network's state_dict.
func LowerNet(net *models.Net) (*Model, error) {
	m, err := layout(net.Spec)
	if err != nil {
		return nil, err
	}
	for i, q := range net.Quant {
		if q == nil {
			continue
		}
		if q.Scheme != "" && q.Scheme != ternary.Paper {
			return nil, fmt.Errorf("%w: --rel_scheme %s runs on the CPU engine only (XLA devices lower the paper's thresholds)", ErrUnsupported, q.Scheme)
		}
		m.nodes[i].factors = slices.Clone(q.Factors)
	}
	params := net.Params()
	if len(params) != len(m.Params) {
		return nil, fmt.Errorf("%w: %s lowers to %d parameters, the network has %d", ErrUnsupported, net.Spec.Arch, len(m.Params), len(params))
	}
	for i, p := range params {
		if p.Name != m.Params[i].Name || !slices.Equal(p.Data.Shape, m.Params[i].Shape) {
			return nil, fmt.Errorf("%w: parameter %d is %s %v in the network, %s %v lowered", ErrUnsupported, i, p.Name, p.Data.Shape, m.Params[i].Name, m.Params[i].Shape)
		}
	}
	return m, nil
}

func (t *Trainer) trainGraph(in []*graph.Node) []*graph.Node {
	nP, nS, nB := t.nP, t.nS, t.nB
	params, stats, flat := in[:nP], in[nP:nP+nS], in[nP+nS:nP+nS+nB]
	x, y, sc := in[nP+nS+nB], in[nP+nS+nB+1], in[nP+nS+nB+2:]
	logits, newStats := t.model.Forward(params, stats, x, true)
	loss := CrossEntropy(logits, y)
	grads := graph.Gradient(loss, params...)
	bufs := make([][]*graph.Node, len(t.opt.Buffers()))
	for b := range bufs {
		bufs[b] = flat[b*nP : (b+1)*nP]
	}
	newParams, newBufs := t.opt.Update(params, grads, bufs, sc)
	out := append(newParams, newStats...)
	for _, nb := range newBufs {
		out = append(out, nb...)
	}
	return append(out, loss, Correct(logits, y))
}

func (t *Trainer) evalGraph(in []*graph.Node) []*graph.Node {
	logits, _ := t.model.Forward(in[:t.nP], in[t.nP:t.nP+t.nS], in[t.nP+t.nS], false)
	return []*graph.Node{logits}
}

// CrossEntropy is the batch mean of softmax cross-entropy (F.cross_entropy)
// of logits N×K against int32 labels N.
func CrossEntropy(logits, labels *graph.Node) *graph.Node {
	dims := logits.Shape().Dimensions
	n, k := dims[0], dims[1]
	g := logits.Graph()
	m := graph.StopGradient(graph.ReduceMax(logits, 1))
	z := graph.Sub(logits, graph.Reshape(m, n, 1))
	lse := graph.Log(graph.ReduceSum(graph.Exp(z), 1))
	hit := graph.Equal(graph.Iota(g, shapes.Make(dtypes.Int32, n, k), 1), graph.Reshape(labels, n, 1))
	zy := graph.ReduceSum(graph.Where(hit, z, graph.ZerosLike(z)), 1)
	return divBy(graph.ReduceAllSum(graph.Sub(lse, zy)), n)
}

// Correct counts the rows whose first largest logit is the label (nn.TopK
// with k = 1 breaks ties the same way).
func Correct(logits, labels *graph.Node) *graph.Node {
	hit := graph.Equal(graph.ArgMax(logits, 1, dtypes.Int32), labels)
	return graph.ReduceAllSum(graph.ConvertDType(hit, dtypes.Int32))
}

// args donates the device state to the next step (its buffers are reused
// for the outputs) and appends the rest.
func (t *Trainer) args(state []*tensors.Tensor, donate bool, rest ...*tensors.Tensor) ([]any, error) {
	a := make([]any, 0, len(state)+len(rest))
	for _, s := range state {
		if !donate {
			a = append(a, s)
			continue
		}
		d, err := graph.DonateTensorBuffer(s, t.backend, 0)
		if err != nil {
			return nil, err
		}
		a = append(a, d)
	}
	for _, r := range rest {
		a = append(a, r)
	}
	return a, nil
}

// TrainStep runs one training step on the batch x (N×C×H×W) with labels y
// at learning rate lr, and returns the batch's mean loss and the number of
// correct top-1 predictions. After an error the Trainer is unusable (its
// state was handed to the failed step).
func (t *Trainer) TrainStep(x *tensor.Tensor, y []int32, lr float64) (loss float64, correct int, err error) {
	if t.state == nil {
		return 0, 0, fmt.Errorf("%w: trainer is closed or failed", ErrDevice)
	}
	xt := tensors.FromFlatDataAndDimensions(x.Data, x.Shape...)
	yt := tensors.FromFlatDataAndDimensions(y, len(y))
	sc := t.opt.Scalars(lr, t.step)
	rest := []*tensors.Tensor{xt, yt}
	for _, v := range sc {
		rest = append(rest, tensors.FromScalar(v))
	}
	args, err := t.args(t.state, true, rest...)
	if err != nil {
		t.state = nil
		return 0, 0, fmt.Errorf("%w: %v", ErrDevice, oneLine(err))
	}
	outs, err := t.train.Exec(args...)
	for _, r := range rest {
		r.FinalizeAll() // frees the batch's device copy now rather than at GC
	}
	if err != nil {
		t.state = nil
		return 0, 0, fmt.Errorf("%w: training step: %v", ErrDevice, oneLine(err))
	}
	n := len(t.state)
	copy(t.state, outs[:n])
	loss = float64(tensors.ToScalar[float32](outs[n]))
	correct = int(tensors.ToScalar[int32](outs[n+1]))
	outs[n].FinalizeAll()
	outs[n+1].FinalizeAll()
	t.step++
	t.lr = lr
	for _, c := range t.tracked {
		c.Data[0]++
	}
	t.dirty = true
	return loss, correct, nil
}

// Forward runs the network in eval mode (running statistics) and returns
// the logits on the host. Smaller batches than the largest seen are padded
// to it and the padding dropped: each row is independent in eval mode, and
// one compiled shape serves the whole test set.
func (t *Trainer) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	if t.state == nil {
		return nil, fmt.Errorf("%w: trainer is closed or failed", ErrDevice)
	}
	n := x.Shape[0]
	per := len(x.Data) / max(n, 1)
	t.evalBatch = max(t.evalBatch, n)
	data := x.Data
	if n < t.evalBatch {
		data = make([]float32, t.evalBatch*per)
		copy(data, x.Data)
	}
	shape := append([]int{t.evalBatch}, x.Shape[1:]...)
	xt := tensors.FromFlatDataAndDimensions(data, shape...)
	args, err := t.args(t.state[:t.nP+t.nS], false, xt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDevice, oneLine(err))
	}
	outs, err := t.eval.Exec(args...)
	xt.FinalizeAll()
	if err != nil {
		return nil, fmt.Errorf("%w: forward: %v", ErrDevice, oneLine(err))
	}
	out := tensor.New(n, outs[0].Shape().Dimensions[1])
	tensors.MustConstFlatData(outs[0], func(flat []float32) { copy(out.Data, flat[:len(out.Data)]) })
	outs[0].FinalizeAll()
	return out, nil
}

// Sync copies the device state into the host Net (parameters, BatchNorm
// running statistics) and Optimizer (buffers, step count), so that they can
// be checkpointed, logged or evaluated on the CPU engine.
func (t *Trainer) Sync() error {
	if !t.dirty {
		return nil
	}
	if t.state == nil {
		return fmt.Errorf("%w: trainer is closed or failed", ErrDevice)
	}
	down := func(src *tensors.Tensor, dst []float32) {
		tensors.MustConstFlatData(src, func(flat []float32) { copy(dst, flat) })
	}
	for i := range t.model.Params {
		down(t.state[i], t.paramTensors[i].Data)
	}
	for i, s := range t.model.Stats {
		down(t.state[t.nP+i], t.hostByName[s.Name].Data)
	}
	_, info := t.hostOpt.State()
	var named []tensor.Named
	for b, bn := range t.opt.Buffers() {
		for i, p := range t.model.Params {
			h := tensor.New(p.Shape...)
			down(t.state[t.nP+t.nS+b*t.nP+i], h.Data)
			named = append(named, tensor.Named{Name: p.Name + "." + bn, T: h})
		}
	}
	info.Step = t.step
	info.Hyper.LR = t.lr // the host optimizer saves the rate of the last step, as on the CPU engine
	if t.step == 0 {
		named = nil // optim keeps no buffers before the first step, as torch
	}
	if err := t.hostOpt.LoadState(named, info); err != nil {
		return fmt.Errorf("%w: optimizer state from the device: %v", ErrDevice, err)
	}
	t.dirty = false
	return nil
}

// Close frees the device state and the compiled programs.
func (t *Trainer) Close() error {
	for _, s := range t.state {
		s.FinalizeAll()
	}
	t.state = nil
	if t.train != nil {
		t.train.Finalize()
	}
	if t.eval != nil {
		t.eval.Finalize()
	}
	t.backend.Finalize()
	return nil
}
