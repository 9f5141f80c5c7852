// Package ternary turns a latent full-precision weight tensor into the
// ternary weight {-α, 0, +α} of He, Gong and Fan (WACV 2019), and sums
// several such terms for their residual expansion layers (REL).
//
// For one term with threshold factor t:
//
//	th = t · max|W|,  α = mean(|W| over |W| ≥ th),  Wt = +α where W ≥ th, −α where W ≤ −th, 0 elsewhere
//
// and with t_ex = k the effective weight is Σ_{i=1..k} Tern(W; t·i).
// The backward pass is the straight-through estimator: dL/dW = dL/dWt,
// summed over the k terms, and cut to 0 where |W| ≥ 1. α and th are constants
// for the gradient.
package ternary

import (
	"errors"
	"fmt"
	"math"
)

// ErrConfig reports an invalid threshold factor or expansion count.
var ErrConfig = errors.New("ternary: invalid configuration")

// DefaultTFactor is the paper's threshold factor.
const DefaultTFactor = 0.05

// Quantizer ternarizes one layer's weight; it implements nn.WeightQuantizer.
// The statistics of the last Quantize (per term) are kept for logging and export.
type Quantizer struct {
	// Factors holds t_i for each residual-expansion term (one entry: plain ternary).
	Factors []float32
	// Scheme chooses how the terms are fitted (Paper unless set).
	Scheme Scheme
	// Alpha and Threshold are α_i and th_i of the last Quantize.
	Alpha, Threshold []float32

	fit fitter // scratch of the non-paper schemes
}

// New returns the paper's quantizer: tex terms with factors tfactor·i, i = 1..tex.
func New(tfactor float64, tex int) (*Quantizer, error) {
	if tex < 1 {
		return nil, fmt.Errorf("%w: t_ex must be >= 1, got %d", ErrConfig, tex)
	}
	if !(tfactor > 0) || tfactor*float64(tex) >= 1 {
		return nil, fmt.Errorf("%w: threshold factor %g with t_ex %d must give factors in (0, 1)", ErrConfig, tfactor, tex)
	}
	q := &Quantizer{Factors: make([]float32, tex), Alpha: make([]float32, tex), Threshold: make([]float32, tex)}
	for i := range q.Factors {
		q.Factors[i] = float32(tfactor * float64(i+1))
	}
	return q, nil
}

// Ternarize writes Tern(w; t) into out and returns α and the threshold.
// Thresholds are compared in float32 exactly as PyTorch does (th = fl(t·max|W|)),
// so values exactly at the threshold are kept, on both signs.
func Ternarize(w, out []float32, t float32) (alpha, th float32) {
	th = t * maxAbs(w)
	alpha = meanAbove(w, th)
	for i, v := range w {
		switch {
		case v >= th:
			out[i] = alpha
		case v <= -th:
			out[i] = -alpha
		default:
			out[i] = 0
		}
	}
	return alpha, th
}

// Quantize writes the effective weight into wq: Σ_i Tern(w; t_i) for the
// paper's scheme, the scheme's fit otherwise.
func (q *Quantizer) Quantize(w, wq []float32) {
	switch q.Scheme {
	case Greedy:
		q.fit.greedy(q, w, wq)
		return
	case Optimal:
		q.fit.optimal(q, w, wq)
		return
	}
	m := maxAbs(w)
	for i, t := range q.Factors {
		th := t * m
		q.Threshold[i] = th
		q.Alpha[i] = meanAbove(w, th)
	}
	if len(q.Factors) == 1 {
		a, th := q.Alpha[0], q.Threshold[0]
		for i, v := range w {
			switch {
			case v >= th:
				wq[i] = a
			case v <= -th:
				wq[i] = -a
			default:
				wq[i] = 0
			}
		}
		return
	}
	q.writeNested(w, wq)
}

// writeNested writes ±(α_1+…+α_l) where |w| passes l of the (ascending) thresholds.
func (q *Quantizer) writeNested(w, wq []float32) {
	for i, v := range w {
		av := abs32(v)
		var s float32
		for j, th := range q.Threshold {
			if av >= th {
				s += q.Alpha[j]
			}
		}
		if v < 0 {
			s = -s
		}
		wq[i] = s
	}
}

// Backward is the straight-through estimator: every term passes dL/dwq
// unchanged, so dL/dw = k·gq, cut to 0 where |w| ≥ 1. The fitted schemes
// approximate w itself (not k times its scale), so their factor is 1.
func (q *Quantizer) Backward(w, gq, gw []float32) {
	k := float32(len(q.Factors))
	if q.Scheme == Greedy || q.Scheme == Optimal {
		k = 1
	}
	for i, v := range w {
		if abs32(v) >= 1 {
			gw[i] = 0
		} else {
			gw[i] = k * gq[i]
		}
	}
}

// Sparsity returns the fraction of weights that every term maps to 0
// (|w| below the smallest threshold) after the last Quantize.
func (q *Quantizer) Sparsity(w []float32) float64 {
	if len(w) == 0 || len(q.Threshold) == 0 {
		return 0
	}
	if q.Scheme == Greedy {
		// Residual terms are not nested: count the zeros of the last fit.
		return float64(q.fit.zeros) / float64(len(w))
	}
	th := q.Threshold[0]
	for _, t := range q.Threshold[1:] {
		th = min(th, t)
	}
	z := 0
	for _, v := range w {
		if abs32(v) < th {
			z++
		}
	}
	return float64(z) / float64(len(w))
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func maxAbs(w []float32) float32 {
	var m float32
	for _, v := range w {
		m = max(m, abs32(v))
	}
	return m
}

// meanAbove is mean(|w| over |w| ≥ th); 0 for an all-zero tensor.
func meanAbove(w []float32, th float32) float32 {
	var s float64
	n := 0
	for _, v := range w {
		if a := abs32(v); a >= th {
			s += float64(a)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float32(s / float64(n))
}
