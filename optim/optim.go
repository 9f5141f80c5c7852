// Package optim holds the optimizers and learning-rate schedules of the
// reference training loop, numerically matched to PyTorch 1.13 on CPU.
//
// Matching means the same float32 operations in the same order as torch's
// single-tensor (default) implementation, so that a tnn run and a PyTorch run
// from the same weights and gradients stay together step after step, and a
// resumed run continues bit for bit. Torch's AVX2/AVX-512 kernels compute
// "a.add(b, alpha=s)" as one fused multiply-add; this package does the same
// (see fma32), which is what makes the steps bit-exact rather than merely close.
//
// An optimizer is bound to its parameters at construction, as torch's is:
// the buffers exist before the first step, LoadState can check names and
// shapes against the model, and Step allocates nothing.
package optim

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
)

var (
	// ErrUnknownKind reports an optimizer name other than SGD or Adam.
	ErrUnknownKind = errors.New("optim: unknown optimizer")
	// ErrHyper reports an invalid hyper-parameter (negative, NaN, out of range).
	ErrHyper = errors.New("optim: invalid hyper-parameter")
	// ErrParams reports parameters that cannot be optimized: nil or unnamed,
	// duplicate names, or a gradient whose size differs from the weight's.
	ErrParams = errors.New("optim: invalid parameters")
	// ErrStateMismatch reports optimizer state that does not fit this
	// optimizer: another kind, missing, unexpected or misshaped buffers.
	ErrStateMismatch = errors.New("optim: optimizer state does not match")
)

var (
	_ Optimizer = (*SGD)(nil)
	_ Optimizer = (*Adam)(nil)
)

// Kinds lists the optimizer names New accepts (case-insensitively).
var Kinds = []string{"SGD", "Adam"}

// Optimizer updates the parameters it was built with from their gradients.
type Optimizer interface {
	// Kind is "SGD" or "Adam".
	Kind() string
	// Step applies one update from the parameters' current Grad.
	Step() error
	// SetLR changes the learning rate from the next step on.
	SetLR(lr float64) error
	LR() float64
	// State returns copies of the buffers, named "<param>.<buffer>" in
	// parameter order, and what else a resumed run needs. Before the first
	// step there are no buffers, as in torch.
	State() ([]tensor.Named, StateInfo)
	// LoadState restores what State returned, replacing the hyper-parameters
	// with the saved ones as torch's load_state_dict does. Nothing changes
	// unless the whole state fits.
	LoadState(named []tensor.Named, info StateInfo) error
}

// Hyper holds the hyper-parameters of both optimizers; each uses its own.
type Hyper struct {
	LR          float64 `json:"lr"`
	WeightDecay float64 `json:"weight_decay"`
	// SGD.
	Momentum  float64 `json:"momentum"`
	Dampening float64 `json:"dampening"`
	Nesterov  bool    `json:"nesterov"`
	// Adam.
	Beta1 float64 `json:"beta1"`
	Beta2 float64 `json:"beta2"`
	Eps   float64 `json:"eps"`
}

// StateInfo is the JSON-able part of an optimizer's state.
type StateInfo struct {
	Kind  string `json:"kind"`
	Hyper Hyper  `json:"hyper"`
	// Step counts the updates done; Adam's bias corrections depend on it and
	// SGD's first step initialises the momentum buffer instead of decaying it.
	Step int64 `json:"step"`
}

// Adam's torch defaults.
const (
	DefaultBeta1 = 0.9
	DefaultBeta2 = 0.999
	DefaultEps   = 1e-8
)

// New builds the optimizer named kind ("SGD" or "Adam", any case) over params.
// For Adam, a Hyper whose Beta1, Beta2 and Eps are all zero gets torch's
// defaults (0.9, 0.999, 1e-8): that triple would make Adam divide by zero
// wherever a gradient is zero, so it can only mean "not set".
func New(kind string, params []*nn.Param, h Hyper) (Optimizer, error) {
	switch canonKind(kind) {
	case "SGD":
		return NewSGD(params, h)
	case "Adam":
		if h.Beta1 == 0 && h.Beta2 == 0 && h.Eps == 0 {
			h.Beta1, h.Beta2, h.Eps = DefaultBeta1, DefaultBeta2, DefaultEps
		}
		return NewAdam(params, h)
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownKind, kind, strings.Join(Kinds, ", "))
}

func canonKind(kind string) string {
	for _, k := range Kinds {
		if strings.EqualFold(kind, k) {
			return k
		}
	}
	return ""
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// validate applies torch's constructor checks (and rejects NaN/Inf, which
// torch's comparisons let through).
func (h Hyper) validate(kind string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrHyper, fmt.Sprintf(format, a...))
	}
	if !finite(h.LR) || h.LR < 0 {
		return bad("learning rate %v", h.LR)
	}
	if !finite(h.WeightDecay) || h.WeightDecay < 0 {
		return bad("weight decay %v", h.WeightDecay)
	}
	switch kind {
	case "SGD":
		if !finite(h.Momentum) || h.Momentum < 0 {
			return bad("momentum %v", h.Momentum)
		}
		if !finite(h.Dampening) {
			return bad("dampening %v", h.Dampening)
		}
		if h.Nesterov && (h.Momentum <= 0 || h.Dampening != 0) {
			return bad("Nesterov momentum requires a momentum and zero dampening")
		}
	case "Adam":
		if !finite(h.Eps) || h.Eps < 0 {
			return bad("eps %v", h.Eps)
		}
		if !finite(h.Beta1) || h.Beta1 < 0 || h.Beta1 >= 1 {
			return bad("beta1 %v not in [0, 1)", h.Beta1)
		}
		if !finite(h.Beta2) || h.Beta2 < 0 || h.Beta2 >= 1 {
			return bad("beta2 %v not in [0, 1)", h.Beta2)
		}
	}
	return nil
}

func validLR(lr float64) error {
	if !finite(lr) || lr < 0 {
		return fmt.Errorf("%w: learning rate %v", ErrHyper, lr)
	}
	return nil
}
