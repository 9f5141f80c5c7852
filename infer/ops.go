package infer

import "math"

// run executes one step for one image on worker w.
func (st *step) run(e *Engine, w *worker, tm *team) {
	y := w.bufs[st.out]
	x := w.bufs[st.in[0]]
	xMax := w.amax[st.in[0]]
	w.amax[st.out] = -1 // unknown, but after a conv step
	switch st.kind {
	case stepConv:
		flags := 0
		if st.relu {
			flags |= flagReLU
		}
		if st.accum {
			flags |= flagAccum
		}
		w.amax[st.out] = st.conv.run(e, w, x, y, flags, tm, xMax)
		return
	case stepReLU:
		for i, v := range x[:st.outLen] {
			y[i] = max(v, 0)
		}
	case stepAdd:
		n := st.outLen
		if len(st.in) == 2 {
			e.ks.add(y[:n], x, w.bufs[st.in[1]], st.relu)
			return
		}
		copy(y[:n], x)
		for k, b := range st.in[1:] {
			e.ks.add(y[:n], y, w.bufs[b], st.relu && k == len(st.in)-2)
		}
	case stepShortcut:
		// Per pixel: the strided input's channels, then zeros (loops, as
		// copy and clear cost a call each for a few dozen bytes).
		for oh := 0; oh < st.ho; oh++ {
			for ow := 0; ow < st.wo; ow++ {
				dst := y[(oh*st.wo+ow)*st.oc:][:st.oc]
				src := x[(oh*st.stride*st.w+ow*st.stride)*st.c:][:st.c]
				for ch, v := range src {
					dst[ch] = v
				}
				for ch := st.c; ch < len(dst); ch++ {
					dst[ch] = 0
				}
			}
		}
	case stepMaxPool, stepAvgPool:
		st.pool(x, y)
	case stepGlobalAvgPool:
		hw := st.h * st.w
		y = y[:st.c]
		clear(y)
		for p := 0; p < hw; p++ {
			for c, v := range x[p*st.c : (p+1)*st.c] {
				y[c] += v
			}
		}
		for c := range y {
			y[c] /= float32(hw)
		}
	case stepFlatten:
		hw := st.h * st.w
		for p := 0; p < hw; p++ {
			for c, v := range x[p*st.c : (p+1)*st.c] {
				y[c*hw+p] = v
			}
		}
	}
}

// pool is PyTorch's MaxPool2d (padding as −inf, NaN wins) or AvgPool2d
// (count_include_pad) on NHWC data.
func (st *step) pool(x, y []float32) {
	isMax := st.kind == stepMaxPool
	inv := 1 / float32(st.k*st.k)
	c := st.c
	for oh := 0; oh < st.ho; oh++ {
		for ow := 0; ow < st.wo; ow++ {
			dst := y[(oh*st.wo+ow)*c:][:c]
			for ch := range dst {
				if isMax {
					dst[ch] = float32(math.Inf(-1))
				} else {
					dst[ch] = 0
				}
			}
			first := true
			for ki := 0; ki < st.k; ki++ {
				ih := oh*st.stride - st.pad + ki
				if ih < 0 || ih >= st.h {
					continue
				}
				for kj := 0; kj < st.k; kj++ {
					iw := ow*st.stride - st.pad + kj
					if iw < 0 || iw >= st.w {
						continue
					}
					src := x[(ih*st.w+iw)*c:][:c]
					for ch, v := range src {
						switch {
						case !isMax:
							dst[ch] += v
						case first || v > dst[ch] || v != v:
							if dst[ch] == dst[ch] {
								dst[ch] = v
							}
						}
					}
					first = false
				}
			}
			if !isMax {
				for ch := range dst {
					dst[ch] *= inv
				}
			}
		}
	}
}
