package nn

import "github.com/tnn-go/tnn/internal/vec"

// Im2col lays out the receptive fields of one C×H×W image as the columns of
// a (C·KH·KW) × (HO·WO) matrix; out-of-image taps are zero.
func Im2col(x, col []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	im2col(x, col, nil, ch, h, w, kh, kw, stride, pad, ho, wo)
}

// im2col is Im2col with the scratch of the stride-2 path: phase holds at
// least phaseLen floats, or is nil to have them allocated.
func im2col(x, col, phase []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	hw := h * w
	if stride == 1 && ho == h && wo == w {
		// "Same" convolutions, the 3×3 ones of a ResNet: each row of col is
		// a channel plane shifted, which vec builds with block copies.
		vec.Im2colSame(col[:ch*kh*kw*hw], x[:ch*hw], ch, h, w, kh, kw, pad, 0, h)
		return
	}
	if stride == 2 {
		im2colPhases(x, col, phase, ch, h, w, kh, kw, pad, ho, wo)
		return
	}
	ohw := ho * wo
	for c := 0; c < ch; c++ {
		xc := x[c*hw:][:hw]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*ohw:][:ohw]
				lo, hi := validSpan(w, wo, kj, stride, pad)
				for oh := 0; oh < ho; oh++ {
					ih := oh*stride - pad + ki
					dst := row[oh*wo : (oh+1)*wo]
					if ih < 0 || ih >= h {
						clear(dst)
						continue
					}
					src := xc[ih*w : (ih+1)*w]
					for ow := range dst[:lo] {
						dst[ow] = 0
					}
					iw := lo*stride - pad + kj
					if stride == 1 {
						copy(dst[lo:hi], src[iw:])
					} else {
						for ow := lo; ow < hi; ow++ {
							dst[ow] = src[iw]
							iw += stride
						}
					}
					for ow := hi; ow < wo; ow++ {
						dst[ow] = 0
					}
				}
			}
		}
	}
}

// validSpan returns the outputs [lo, hi) of a row of wo whose tap kj reads
// inside the image row: 0 ≤ ow·stride − pad + kj < w.
func validSpan(w, wo, kj, stride, pad int) (lo, hi int) {
	if d := pad - kj; d > 0 {
		lo = (d + stride - 1) / stride
	}
	if e := w - 1 + pad - kj; e >= 0 {
		hi = e/stride + 1
	}
	hi = min(hi, wo)
	return min(lo, hi), hi
}

// col2im is the adjoint of im2col: it sums the column entries back into the
// image positions they were read from.
func col2im(col, x []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	col2imBuf(col, x, nil, ch, h, w, kh, kw, stride, pad, ho, wo)
}

// col2imBuf is col2im with the scratch of the stride-2 path, as in im2col.
func col2imBuf(col, x, phase []float32, ch, h, w, kh, kw, stride, pad, ho, wo int) {
	if stride == 2 {
		col2imPhases(col, x, phase, ch, h, w, kh, kw, pad, ho, wo)
		return
	}
	clear(x)
	hw, ohw := h*w, ho*wo
	for c := 0; c < ch; c++ {
		xc := x[c*hw:][:hw]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((c*kh+ki)*kw+kj)*ohw:][:ohw]
				lo, hi := validSpan(w, wo, kj, stride, pad)
				for oh := 0; oh < ho; oh++ {
					ih := oh*stride - pad + ki
					if ih < 0 || ih >= h {
						continue
					}
					dst := xc[ih*w : (ih+1)*w]
					src := row[oh*wo : (oh+1)*wo]
					iw := lo*stride - pad + kj
					for _, v := range src[lo:hi] {
						dst[iw] += v
						iw += stride
					}
				}
			}
		}
	}
}

// Stride 2 works on a phase-split copy of one channel at a time (see
// vec.SplitPhases): hp rows of 2·lp floats, image row ih at row ih+pad,
// its even columns from p0 and its odd ones from lp+p0, zeros around them
// and in the rows above and below. Tap (ki, kj) of output (oh, ow) reads
// input (2·oh+ki−pad, 2·ow+q) with q = kj−pad, which is element ow+⌊q/2⌋
// of phase q mod 2 of phase row 2·oh+ki: a row of outputs is a contiguous
// run of one phase row, and the ho rows of a tap are every other phase row.
// So im2col is one strided row copy per tap, and col2im one strided row add
// per tap into a zeroed phase buffer and an interleave back, with no index
// arithmetic per element. The padding comes out as the zeros of the phase
// buffer, and the sums that fall on it are dropped.
//
// col2im adds the taps of each element in the same order as the scalar
// loop, (ki, kj) ascending, starting from +0: the results are bit-identical.

// phaseLayout returns the geometry of the phase buffer: p0 = ⌈pad/2⌉ zeros
// before each phase so that the leftmost tap (q = −pad) starts at 0, lp long
// enough for the phases and for the rightmost tap's wo reads, hp rows for
// the image and the lowest tap of the last output row.
func phaseLayout(h, w, kh, kw, pad, ho, wo int) (hp, lp, p0 int) {
	p0 = (pad + 1) / 2
	lp = max(p0+(w+1)/2, p0+(kw-1-pad)>>1+wo)
	hp = max(pad+h, kh+2*(ho-1))
	return hp, lp, p0
}

// phaseLen is the scratch that im2col and col2imBuf need for a stride-2
// convolution (0 for other strides): one channel's phase buffer.
func phaseLen(h, w, kh, kw, stride, pad, ho, wo int) int {
	if stride != 2 || ho <= 0 || wo <= 0 {
		return 0
	}
	hp, lp, _ := phaseLayout(h, w, kh, kw, pad, ho, wo)
	return hp * 2 * lp
}

// phaseTap returns the offset in the phase buffer of tap (ki, kj)'s first
// read.
func phaseTap(ki, kj, pad, lp, p0 int) int {
	q := kj - pad
	return ki*2*lp + (q&1)*lp + p0 + q>>1
}

func im2colPhases(x, col, phase []float32, ch, h, w, kh, kw, pad, ho, wo int) {
	if ho <= 0 || wo <= 0 {
		return
	}
	hp, lp, p0 := phaseLayout(h, w, kh, kw, pad, ho, wo)
	n := hp * 2 * lp
	if phase == nil {
		phase = make([]float32, n)
	}
	ph := phase[:n]
	hw, ohw := h*w, ho*wo
	top, bot := pad*2*lp, (pad+h)*2*lp
	for c := 0; c < ch; c++ {
		clear(ph[:top])
		vec.SplitPhases(ph[top:bot], x[c*hw:][:hw], w, h, lp, p0)
		clear(ph[bot:])
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				dst := col[((c*kh+ki)*kw+kj)*ohw:][:ohw]
				vec.CopyRows(dst, ph[phaseTap(ki, kj, pad, lp, p0):], wo, ho, wo, 4*lp)
			}
		}
	}
}

func col2imPhases(col, x, phase []float32, ch, h, w, kh, kw, pad, ho, wo int) {
	if ho <= 0 || wo <= 0 {
		clear(x)
		return
	}
	hp, lp, p0 := phaseLayout(h, w, kh, kw, pad, ho, wo)
	n := hp * 2 * lp
	if phase == nil {
		phase = make([]float32, n)
	}
	ph := phase[:n]
	hw, ohw := h*w, ho*wo
	for c := 0; c < ch; c++ {
		clear(ph)
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				src := col[((c*kh+ki)*kw+kj)*ohw:][:ohw]
				vec.AddRows(ph[phaseTap(ki, kj, pad, lp, p0):], src, wo, ho, 4*lp, wo)
			}
		}
		vec.MergePhases(x[c*hw:][:hw], ph[pad*2*lp:(pad+h)*2*lp], w, h, lp, p0)
	}
}
