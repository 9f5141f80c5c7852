package optim

import "github.com/tnn-go/tnn/nn"

// SGD is torch.optim.SGD: with weight decay wd, momentum mu, dampening tau,
//
//	d = g + wd*w
//	buf = d on the first step, else mu*buf + (1-tau)*d
//	d = d + mu*buf if Nesterov, else buf
//	w = w - lr*d
type SGD struct {
	base
	// Per-step constants in float32, rounded as torch rounds its scalars.
	wd, mu, damp, negLR float32
	useWD, useMu, first bool
}

// NewSGD binds an SGD optimizer to params; Beta1, Beta2 and Eps are ignored.
func NewSGD(params []*nn.Param, h Hyper) (*SGD, error) {
	b, err := newBase("SGD", params, h, "momentum_buffer")
	if err != nil {
		return nil, err
	}
	o := &SGD{base: b}
	o.run = o.kernel
	return o, nil
}

func (o *SGD) Step() error {
	if err := o.prepare(); err != nil {
		return err
	}
	h := o.h
	// torch tests the Python floats, so a decay too small for float32 still
	// takes the add (which then adds zero).
	o.useWD, o.useMu = h.WeightDecay != 0, h.Momentum != 0
	o.wd, o.mu = float32(h.WeightDecay), float32(h.Momentum)
	o.damp = float32(1 - h.Dampening)
	o.negLR = float32(-h.LR)
	o.first = o.step == 0
	o.forChunks()
	o.step++
	return nil
}

func (o *SGD) kernel(lo, hi, _ int) {
	// Locals, so the loop does not reload o's fields after every store.
	useWD, useMu, first, nesterov := o.useWD, o.useMu, o.first, o.h.Nesterov
	wd, mu, damp, negLR := o.wd, o.mu, o.damp, o.negLR
	for _, c := range o.chunks[lo:hi] {
		p := o.params[c.p]
		w := p.Data.Data[c.lo:c.hi]
		g := p.Grad.Data[c.lo:c.hi]
		buf := o.bufs[0][c.p][c.lo:c.hi]
		g, buf = g[:len(w)], buf[:len(w)]
		for i := range w {
			d := g[i]
			if useWD {
				d = madd(w[i], wd, d) // d_p.add(param, alpha=wd)
			}
			if useMu {
				b := d // first step: torch.clone(d_p)
				if !first {
					// buf.mul_(mu).add_(d_p, alpha=1-dampening)
					b = madd(d, damp, float32(buf[i]*mu))
				}
				buf[i] = b
				if nesterov {
					d = madd(b, mu, d) // d_p.add(buf, alpha=mu)
				} else {
					d = b
				}
			}
			w[i] = madd(d, negLR, w[i]) // param.add_(d_p, alpha=-lr)
		}
	}
}
