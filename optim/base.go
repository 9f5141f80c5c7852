package optim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
)

// chunkLen bounds the elements one parallel.For item updates, so that one
// large parameter spreads over all workers while a pass over a chunk is still
// long against the scheduling cost.
const chunkLen = 1 << 13

type chunk struct{ p, lo, hi int }

// base is what SGD and Adam share: the bound parameters, their per-parameter
// buffers and the element ranges Step hands to the workers.
type base struct {
	kind    string
	h       Hyper
	params  []*nn.Param
	bufName []string      // buffer suffixes, e.g. "exp_avg"
	bufs    [][][]float32 // bufs[b][p]: buffer b of parameter p
	sizes   []int         // element counts the buffers were made for
	chunks  []chunk
	step    int64
	// run is the kernel as a method value made once, so that Step passes
	// parallel.For no freshly allocated closure.
	run func(lo, hi, worker int)
}

func newBase(kind string, params []*nn.Param, h Hyper, bufName ...string) (base, error) {
	if err := h.validate(kind); err != nil {
		return base{}, err
	}
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		switch {
		case p == nil || p.Data == nil || p.Grad == nil:
			return base{}, fmt.Errorf("%w: parameter %d is nil or lacks Data or Grad", ErrParams, i)
		case p.Name == "":
			return base{}, fmt.Errorf("%w: parameter %d has no name", ErrParams, i)
		case seen[p.Name]:
			return base{}, fmt.Errorf("%w: duplicate parameter name %q", ErrParams, p.Name)
		}
		seen[p.Name] = true
		if err := checkParam(p); err != nil {
			return base{}, err
		}
	}
	b := base{kind: kind, h: h, params: slices.Clone(params), bufName: bufName}
	for _, p := range params {
		b.sizes = append(b.sizes, len(p.Data.Data))
	}
	b.bufs = make([][][]float32, len(bufName))
	for k := range b.bufs {
		b.bufs[k] = make([][]float32, len(params))
		for i, p := range params {
			b.bufs[k][i] = make([]float32, len(p.Data.Data))
		}
	}
	for i, p := range params {
		n := len(p.Data.Data)
		for lo := 0; lo < n; lo += chunkLen {
			b.chunks = append(b.chunks, chunk{i, lo, min(lo+chunkLen, n)})
		}
	}
	return b, nil
}

func checkParam(p *nn.Param) error {
	if p.Data == nil || p.Grad == nil {
		return fmt.Errorf("%w: %s lacks Data or Grad", ErrParams, p.Name)
	}
	n := tensor.Numel(p.Data.Shape)
	if len(p.Data.Data) != n || len(p.Grad.Data) != n {
		return fmt.Errorf("%w: %s has %d weights and %d gradients for shape %v",
			ErrParams, p.Name, len(p.Data.Data), len(p.Grad.Data), p.Data.Shape)
	}
	return nil
}

// prepare checks that the bound parameters still have the sizes the buffers
// were made for: a layer may swap in new tensors between steps.
func (b *base) prepare() error {
	for i, p := range b.params {
		if err := checkParam(p); err != nil {
			return err
		}
		if len(p.Data.Data) != b.sizes[i] {
			return fmt.Errorf("%w: %s changed size from %d to %d elements",
				ErrParams, p.Name, b.sizes[i], len(p.Data.Data))
		}
	}
	return nil
}

func (b *base) Kind() string { return b.kind }
func (b *base) LR() float64  { return b.h.LR }

func (b *base) SetLR(lr float64) error {
	if err := validLR(lr); err != nil {
		return err
	}
	b.h.LR = lr
	return nil
}

// hasBufs reports whether state would include buffers: none before the
// first step (torch creates them lazily) or when the hyper-parameters make
// the buffers unused (SGD without momentum).
func hasBufs(kind string, h Hyper, step int64) bool {
	return step > 0 && (kind != "SGD" || h.Momentum != 0)
}

func (b *base) State() ([]tensor.Named, StateInfo) {
	info := StateInfo{Kind: b.kind, Hyper: b.h, Step: b.step}
	if !hasBufs(b.kind, b.h, b.step) {
		return nil, info
	}
	named := make([]tensor.Named, 0, len(b.params)*len(b.bufName))
	for i, p := range b.params {
		for k, s := range b.bufName {
			t := tensor.New(p.Data.Shape...)
			copy(t.Data, b.bufs[k][i])
			named = append(named, tensor.Named{Name: p.Name + "." + s, T: t})
		}
	}
	return named, info
}

// maxListed caps the problems LoadState spells out; a wholly wrong state
// (another model) would otherwise produce one line per tensor.
const maxListed = 20

func (b *base) LoadState(named []tensor.Named, info StateInfo) error {
	if canonKind(info.Kind) != b.kind {
		// Buffer names would all differ too; listing them would bury this.
		return fmt.Errorf("%w: state is for %q, optimizer is %s", ErrStateMismatch, info.Kind, b.kind)
	}
	var problems []string
	if err := info.Hyper.validate(b.kind); err != nil {
		return fmt.Errorf("%w: saved hyper-parameters: %w", ErrStateMismatch, err)
	}
	if info.Step < 0 {
		problems = append(problems, fmt.Sprintf("negative step count %d", info.Step))
	}
	type slot struct{ k, p int }
	want := map[string]slot{}
	if hasBufs(b.kind, info.Hyper, info.Step) {
		for i, p := range b.params {
			for k, s := range b.bufName {
				want[p.Name+"."+s] = slot{k, i}
			}
		}
	}
	got := make(map[string]*tensor.Tensor, len(named))
	seen := make(map[string]bool, len(named))
	for _, nt := range named {
		s, ok := want[nt.Name]
		dup := seen[nt.Name]
		seen[nt.Name] = true
		switch {
		case !ok:
			problems = append(problems, "unexpected "+nt.Name)
		case dup:
			problems = append(problems, "duplicate "+nt.Name)
		case nt.T == nil:
			problems = append(problems, "nil tensor "+nt.Name)
		default:
			shape := b.params[s.p].Data.Shape
			if !slices.Equal(nt.T.Shape, shape) || len(nt.T.Data) != len(b.bufs[s.k][s.p]) {
				problems = append(problems, fmt.Sprintf("%s has shape %v (%d values), want %v",
					nt.Name, nt.T.Shape, len(nt.T.Data), shape))
			}
			got[nt.Name] = nt.T
		}
	}
	for _, p := range b.params {
		for _, s := range b.bufName {
			n := p.Name + "." + s
			if _, ok := want[n]; ok && !seen[n] {
				problems = append(problems, "missing "+n)
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > maxListed {
			problems = append(problems[:maxListed], fmt.Sprintf("and %d more", len(problems)-maxListed))
		}
		return fmt.Errorf("%w: %s", ErrStateMismatch, strings.Join(problems, "; "))
	}
	for n, s := range want {
		copy(b.bufs[s.k][s.p], got[n].Data)
	}
	b.h, b.step = info.Hyper, info.Step
	return nil
}

// forChunks runs the kernel over all elements; elements are independent, so
// the result does not depend on the partition or the thread count.
func (b *base) forChunks() { parallel.For(len(b.chunks), b.run) }
