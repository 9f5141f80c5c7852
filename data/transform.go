package data

import "math"

// This file holds the ImageNet transforms of torchvision 0.14 on PIL images:
// RandomResizedCrop and Resize + CenterCrop, with PIL's bilinear resampling
// reproduced in its own fixed-point arithmetic, so that a PNG goes through
// the same pixels here as in the reference's data pipeline.

// Torchvision's RandomResizedCrop defaults.
var (
	rrcScale = [2]float64{0.08, 1}
	rrcRatio = [2]float64{3.0 / 4.0, 4.0 / 3.0}
)

// rect is an integer rectangle: origin and size.
type rect struct{ x, y, w, h int }

// draws are the random numbers rrcParams consumes; *rng provides them, and
// tests replay torchvision's.
type draws interface {
	uniform(a, b float64) float64
	intn(n int) int
}

// uniform draws from [a, b) as torch's uniform_ does.
func (r *rng) uniform(a, b float64) float64 {
	return a + (b-a)*(float64(r.next()>>11)/(1<<53))
}

// roundHalfEven is Python 3's round(), which torchvision's crop
// arithmetic goes through.
func roundHalfEven(x float64) int { return int(math.RoundToEven(x)) }

// rrcParams is torchvision's RandomResizedCrop.get_params: up to ten tries
// at a crop of random area fraction (scale) and aspect ratio (ratio,
// log-uniform) that fits the image, then a central crop clamped to the ratio
// range.
func rrcParams(r draws, width, height int, scale, ratio [2]float64) rect {
	area := float64(width * height)
	lr0, lr1 := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		target := area * r.uniform(scale[0], scale[1])
		aspect := math.Exp(r.uniform(lr0, lr1))
		w := roundHalfEven(math.Sqrt(target * aspect))
		h := roundHalfEven(math.Sqrt(target / aspect))
		if 0 < w && w <= width && 0 < h && h <= height {
			top := r.intn(height - h + 1)
			left := r.intn(width - w + 1)
			return rect{left, top, w, h}
		}
	}
	in := float64(width) / float64(height)
	w, h := width, height
	switch {
	case in < min(ratio[0], ratio[1]):
		h = roundHalfEven(float64(w) / min(ratio[0], ratio[1]))
	case in > max(ratio[0], ratio[1]):
		w = roundHalfEven(float64(h) * max(ratio[0], ratio[1]))
	}
	return rect{(width - w) / 2, (height - h) / 2, w, h}
}

// resizedSize is torchvision's output size for Resize(size) with an int
// size: the shorter side becomes size, the longer keeps the aspect ratio,
// truncated.
func resizedSize(width, height, size int) (w, h int) {
	if width <= height {
		return size, int(float64(size) * float64(height) / float64(width))
	}
	return int(float64(size) * float64(width) / float64(height)), size
}

// centerCropOrigin is torchvision's CenterCrop offset of a crop of side
// crop in an image of the given size (never negative here: the resize
// before it is never smaller than the crop).
func centerCropOrigin(width, height, crop int) (left, top int) {
	return max(roundHalfEven(float64(width-crop)/2), 0), max(roundHalfEven(float64(height-crop)/2), 0)
}

// precisionBits is PIL's fixed-point precision for 8-bit resampling.
const precisionBits = 32 - 8 - 2

// axis holds PIL's bilinear filter taps for the outputs [from, from+n) of one
// axis: output i reads inputs first[i] … first[i]+count[i]-1 with weights
// k[i*ksize:]. Computed as PIL's precompute_coeffs and
// normalize_coeffs_8bpc, so weights match PIL bit for bit.
type axis struct {
	ksize        int
	first, count []int
	k            []int32
	identity     bool // output i is input from+i: PIL skips the pass
}

// set computes the taps for resampling the input interval [in0, in1) of an
// axis of inSize pixels to outSize pixels, keeping outputs [from, from+n).
func (a *axis) set(inSize int, in0, in1 float64, outSize, from, n int) {
	a.identity = outSize == inSize && in0 == 0 && in1 == float64(inSize)
	scale := (in1 - in0) / float64(outSize)
	filterscale := max(scale, 1)
	support := filterscale // bilinear's support is 1
	a.ksize = int(math.Ceil(support))*2 + 1
	a.first = grow(a.first, n)
	a.count = grow(a.count, n)
	a.k = grow(a.k, n*a.ksize)
	var w [64]float64
	ws := w[:]
	if a.ksize > len(ws) {
		ws = make([]float64, a.ksize)
	}
	ss := 1 / filterscale
	for i := range n {
		center := in0 + (float64(from+i)+0.5)*scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		xmax = max(xmax, 0)
		var sum float64
		for x := range xmax {
			t := math.Abs((float64(x+xmin) - center + 0.5) * ss)
			v := 0.0
			if t < 1 {
				v = 1 - t
			}
			ws[x] = v
			sum += v
		}
		k := a.k[i*a.ksize : (i+1)*a.ksize]
		for x := range k {
			v := 0.0
			if x < xmax {
				v = ws[x]
				if sum != 0 {
					v /= sum
				}
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		a.first[i], a.count[i] = xmin, xmax
	}
	if a.identity {
		for i := range n {
			a.first[i], a.count[i] = from+i, 1
		}
	}
}

// span is the input interval the kept outputs read.
func (a *axis) span() (lo, hi int) {
	n := len(a.first)
	if n == 0 {
		return 0, 0
	}
	return a.first[0], a.first[n-1] + a.count[n-1]
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// clip8 is PIL's clip8: the fixed-point sum back to a byte.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resampler runs PIL's two-pass bilinear resampling (horizontal first, to
// bytes, then vertical) on packed RGB rows and writes the result normalised,
// channel-planar and optionally mirrored. Its buffers are reused between
// images.
type resampler struct {
	ax, ay axis
	tmp    []uint8
	acc    []int32
}

// run resamples src, whose pixel (x, y) of the spans given by ax and ay is
// at src[(y-y0)*stride+(x-x0)*3 …], x0 and y0 being the span starts, into
// dst (3 planes of n×m, n = len(ax.first) wide): the value of channel c at
// output (x, y) goes through lut[c*256:] and lands at x, or n-1-x when flip.
func (rs *resampler) run(dst []float32, src []uint8, stride int, lut []float32, flip bool) {
	ax, ay := &rs.ax, &rs.ay
	ow, oh := len(ax.first), len(ay.first)
	x0, _ := ax.span()
	y0, y1 := ay.span()
	rows := y1 - y0
	// Horizontal pass over every row the vertical pass reads.
	tmp, tstride := src, stride
	if !ax.identity {
		tstride = ow * 3
		rs.tmp = grow(rs.tmp, rows*tstride)
		tmp = rs.tmp
		ks := ax.ksize
		for y := range rows {
			in := src[y*stride:]
			out := tmp[y*tstride : (y+1)*tstride]
			for i := range ow {
				k := ax.k[i*ks : i*ks+ax.count[i]]
				p := in[(ax.first[i]-x0)*3:]
				// Red and blue share one 64-bit multiply-add, a 32-bit lane
				// each: bilinear weights are never negative and a lane's
				// sum stays below 2³¹, so no carry crosses lanes.
				const half = 1 << (precisionBits - 1)
				rb := uint64(half) | uint64(half)<<32
				g := uint32(half)
				for _, w := range k {
					q := p[:3:3]
					uw := uint32(w)
					rb += (uint64(q[0]) | uint64(q[2])<<32) * uint64(uw)
					g += uint32(q[1]) * uw
					p = p[3:]
				}
				o := out[i*3 : i*3+3 : i*3+3]
				o[0], o[1], o[2] = clip8(int32(uint32(rb))), clip8(int32(g)), clip8(int32(uint32(rb>>32)))
			}
		}
	}
	// Vertical pass, fused with normalisation and the flip.
	plane := ow * oh
	l0, l1, l2 := lut[0:256], lut[256:512], lut[512:768]
	rs.acc = grow(rs.acc, ow*3)
	acc := rs.acc
	ks := ay.ksize
	for j := range oh {
		const half = 1 << (precisionBits - 1)
		for i := range acc {
			acc[i] = half
		}
		k := ay.k[j*ks : j*ks+ay.count[j]]
		for t, w := range k {
			row := tmp[(ay.first[j]-y0+t)*tstride:]
			row = row[:len(acc)]
			acc := acc[:len(row)]
			for i, v := range row {
				acc[i] += int32(v) * w
			}
		}
		r := dst[j*ow : (j+1)*ow]
		g := dst[plane+j*ow : plane+(j+1)*ow]
		b := dst[2*plane+j*ow : 2*plane+(j+1)*ow]
		if flip {
			for i := range ow {
				o := ow - 1 - i
				r[o], g[o], b[o] = l0[clip8(acc[i*3])], l1[clip8(acc[i*3+1])], l2[clip8(acc[i*3+2])]
			}
		} else {
			for i := range ow {
				r[i], g[i], b[i] = l0[clip8(acc[i*3])], l1[clip8(acc[i*3+1])], l2[clip8(acc[i*3+2])]
			}
		}
	}
}
