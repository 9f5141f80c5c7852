package optim

import (
	"math"

	"github.com/tnn-go/tnn/nn"
)

// Adam is torch.optim.Adam (amsgrad off): with g the gradient plus wd*w,
//
//	m = beta1*m + (1-beta1)*g
//	v = beta2*v + (1-beta2)*g*g
//	w = w - lr/(1-beta1^t) * m / (sqrt(v)/sqrt(1-beta2^t) + eps)
type Adam struct {
	base
	wd, b1, omb1, b2, omb2, bc2s, eps, negStep float32
	useWD                                      bool
}

// NewAdam binds an Adam optimizer to params, taking Beta1, Beta2 and Eps as
// given (New fills in torch's defaults); Momentum, Dampening and Nesterov are
// ignored.
func NewAdam(params []*nn.Param, h Hyper) (*Adam, error) {
	b, err := newBase("Adam", params, h, "exp_avg", "exp_avg_sq")
	if err != nil {
		return nil, err
	}
	o := &Adam{base: b}
	o.run = o.kernel
	return o, nil
}

func (o *Adam) Step() error {
	if err := o.prepare(); err != nil {
		return err
	}
	h := o.h
	t := float64(o.step + 1)
	// Scalars as torch computes them: in Python float64, then cast to float32
	// by the kernels. math.Pow may differ from C's pow in the last float64
	// bit, which survives the float32 cast only at a rounding boundary.
	bc1 := 1 - math.Pow(h.Beta1, t)
	bc2 := 1 - math.Pow(h.Beta2, t)
	o.negStep = float32(-(h.LR / bc1))
	o.bc2s = float32(math.Sqrt(bc2))
	o.useWD = h.WeightDecay != 0
	o.wd = float32(h.WeightDecay)
	o.b1, o.omb1 = float32(h.Beta1), float32(1-h.Beta1)
	o.b2, o.omb2 = float32(h.Beta2), float32(1-h.Beta2)
	o.eps = float32(h.Eps)
	o.forChunks()
	o.step++
	return nil
}

func (o *Adam) kernel(lo, hi, _ int) {
	// Locals, so the loop does not reload o's fields after every store.
	useWD, wd, b1, omb1, b2, omb2 := o.useWD, o.wd, o.b1, o.omb1, o.b2, o.omb2
	bc2s, eps, negStep := o.bc2s, o.eps, o.negStep
	for _, c := range o.chunks[lo:hi] {
		p := o.params[c.p]
		w := p.Data.Data[c.lo:c.hi]
		g := p.Grad.Data[c.lo:c.hi]
		m := o.bufs[0][c.p][c.lo:c.hi]
		v := o.bufs[1][c.p][c.lo:c.hi]
		g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
		for i := range w {
			gi := g[i]
			if useWD {
				gi = madd(w[i], wd, gi) // grad.add(param, alpha=wd)
			}
			// exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
			mi := madd(gi, omb1, float32(m[i]*b1))
			// exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
			vi := mcmul(omb2, gi, float32(v[i]*b2))
			m[i], v[i] = mi, vi
			// denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
			den := float32(sqrt32(vi)/bc2s) + eps
			// param.addcdiv_(exp_avg, denom, value=-step_size)
			w[i] += float32(float32(negStep*mi) / den)
		}
	}
}
