package infer

import (
	"fmt"
	"math"

	"github.com/tnn-go/tnn/gemm"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
)

// convLayer is a conv2d or linear layer (a linear layer is a 1×1
// convolution of a 1×1 image) set up for the tile kernels.
//
// The convolution is an implicit GEMM over the input padded by p on every
// side and stored NHWC, hp×wp pixels of cp channels. Output pixel (oh, ow)
// gets the index q = oh·wp + ow, and tap (kh, kw) of it reads padded pixel
// s·q + kh·wp + kw: for a fixed tap, consecutive q read pixels s apart, so
// a tile of mr consecutive q is a strided slice of the padded input, with
// no im2col copy. The q with ow ≥ wo are padding columns: the kernels
// compute them (reading in-bounds neighbours) and do not store them.
type convLayer struct {
	ternary            bool
	c, h, w, oc        int
	k, s, p            int
	ho, wo, hp, wp, cp int
	terms, nb, ocp     int // residual-expansion terms, weight blocks, oc rounded up to a block
	steps              int // kernel steps per output (taps × channels, or × channel groups of 4)
	kern               tileKernel
	bw                 int // block width: output channels per kernel call

	// coef[t*ocp+o] multiplies term t's sum for channel o: the folded
	// BatchNorm scale times α_t. bias[o] is the layer's folded bias.
	coef, bias, zeros []float32
	panel             []int8  // [term][block][step][bw channels](×4 bytes in int8 mode)
	rowsum            []int32 // [term][ocp]: Σ of the levels, for the zero point
	offs              []int32
	z                 int32 // zero point of the int8 input: 0 after a ReLU, else 128
	int8              bool
	fakeInt8          bool // see Options.fakeInt8

	mr    int
	tiles []int // first q of each tile
	rows  []int // [tile][mr] output offsets, -1 for padding columns

	padLen int       // elements of the padded input the tiles read
	wr     []float32 // full-precision layer: weights as [oc][kh][kw][c]
}

// newConvLayer sets up layer l (node n) for input shape in; nonneg says
// the input is never negative (it follows a ReLU).
func newConvLayer(e *Engine, l *packed.Layer, n models.Node, in []int, nonneg bool) (*convLayer, error) {
	c := &convLayer{ternary: l.Ternary, oc: n.OutC, k: 1, s: 1, h: 1, w: 1}
	if n.Op == models.OpConv2d {
		c.c, c.h, c.w = in[0], in[1], in[2]
		c.k, c.s, c.p = n.Kernel, n.Stride, n.Padding
	} else {
		c.c = in[0]
	}
	c.hp, c.wp = c.h+2*c.p, c.w+2*c.p
	c.ho, c.wo = (c.hp-c.k)/c.s+1, (c.wp-c.k)/c.s+1
	c.cp = c.c
	c.int8 = e.opts.Int8 && c.ternary
	c.fakeInt8 = e.opts.fakeInt8 && c.ternary
	if !nonneg {
		c.z = 128
	}
	group := 1
	if c.int8 {
		c.cp = (c.c + 3) &^ 3
		group = 4
	}
	if c.hp*c.wp > maxScratch/max(c.cp, 8) {
		return nil, fmt.Errorf("%w: layer %s", ErrTooLarge, n.Name)
	}
	taps := c.k * c.k
	c.steps = taps * c.cp / group
	c.mr, c.bw = 1, 1
	if c.ternary {
		cands := e.ks.fmas
		if c.int8 {
			cands = e.ks.dots
		}
		// The kernel that computes least, counting a call as a few
		// thousand multiply-adds of set-up and epilogue.
		best := -1
		for _, k := range cands {
			tiles, _, _ := c.tiling(k.mr)
			cost := len(tiles) * ((c.oc + k.bw - 1) / k.bw) * (k.mr*k.bw*c.steps + 2000)
			if best < 0 || cost < best {
				best, c.kern = cost, k
			}
		}
		c.mr, c.bw = c.kern.mr, c.kern.bw
	}
	c.ocp = (c.oc + c.bw - 1) / c.bw * c.bw
	c.nb = c.ocp / c.bw
	e.maxOC = max(e.maxOC, c.ocp*max(len(l.Alpha), 1))
	e.macs += c.ho * c.wo * c.oc * c.c * c.k * c.k
	c.tiles, c.rows, c.padLen = c.tiling(c.mr)
	// Offsets into the padded input are int32; the panel is bounded like
	// the activations, so that a crafted file cannot ask for gigabytes.
	if c.padLen > math.MaxInt32/4 || c.steps*c.ocp*max(len(l.Alpha), 1) > 4*maxScratch {
		return nil, fmt.Errorf("%w: layer %s", ErrTooLarge, n.Name)
	}
	if c.int8 {
		e.qLen = max(e.qLen, c.padLen)
		e.spreadLen = max(e.spreadLen, c.w*c.cp)
	} else {
		e.fLen = max(e.fLen, c.padLen)
	}
	c.bias = make([]float32, c.ocp)
	copy(c.bias, l.Bias)
	c.zeros = make([]float32, c.ocp)
	rowLen := c.c * taps
	if !c.ternary {
		// gemm needs a float matrix; this layer is float in the file already.
		c.wr = make([]float32, c.oc*rowLen)
		for o := 0; o < c.oc; o++ {
			for ci := 0; ci < c.c; ci++ {
				for t := 0; t < taps; t++ {
					c.wr[o*rowLen+t*c.c+ci] = l.Weight[o*rowLen+ci*taps+t]
				}
			}
		}
		if rows := c.ho * c.wo; rows > 0 && rowLen > maxScratch/rows {
			return nil, fmt.Errorf("%w: layer %s", ErrTooLarge, n.Name)
		}
		e.colLen = max(e.colLen, c.ho*c.wo*rowLen)
		return c, nil
	}
	codec, err := e.Model.Codec()
	if err != nil {
		return nil, err
	}
	c.terms = len(l.Alpha)
	c.coef = make([]float32, c.terms*c.ocp)
	for t := 0; t < c.terms; t++ {
		for o := 0; o < c.oc; o++ {
			sc := float32(1)
			if l.Scale != nil {
				sc = l.Scale[o]
			}
			c.coef[t*c.ocp+o] = sc * l.Alpha[t]
		}
	}
	// Steps run over taps, then channels (groups of 4 in int8 mode), which
	// is NHWC order within a tap.
	c.offs = make([]int32, c.steps)
	for t := 0; t < taps; t++ {
		kh, kw := t/c.k, t%c.k
		for g := 0; g < c.cp/group; g++ {
			c.offs[t*c.cp/group+g] = int32((kh*c.wp+kw)*c.cp + g*group)
		}
	}
	blockLen := c.steps * c.bw * group
	c.panel = make([]int8, c.terms*c.nb*blockLen)
	c.rowsum = make([]int32, c.terms*c.ocp)
	lv := make([]int8, rowLen)
	for o := 0; o < c.oc; o++ {
		codec.Unpack(l.Codes, o*rowLen, lv)
		b, oi := o/c.bw, o%c.bw
		for ci := 0; ci < c.c; ci++ {
			for t := 0; t < taps; t++ {
				L := int(lv[ci*taps+t])
				var step, idx int
				if c.int8 {
					step = t*c.cp/4 + ci/4
					idx = (step*c.bw+oi)*4 + ci%4
				} else {
					step = t*c.cp + ci
					idx = step*c.bw + oi
				}
				for m := 1; m <= c.terms; m++ {
					var v int8
					switch {
					case L >= m:
						v = 1
					case L <= -m:
						v = -1
					}
					c.panel[(m-1)*c.nb*blockLen+b*blockLen+idx] = v
					c.rowsum[(m-1)*c.ocp+o] += int32(v)
				}
			}
		}
	}
	return c, nil
}

// tiling covers the valid q with tiles of mr consecutive q, starting each
// at the first valid q not yet covered; it returns the tiles' first q,
// their rows (output offsets, -1 for padding columns) and the padded input
// length that keeps every tile's reads in bounds.
func (c *convLayer) tiling(mr int) (tiles, rows []int, padLen int) {
	q, last := 0, 0
	for {
		oh, ow := q/c.wp, q%c.wp
		if ow >= c.wo {
			oh, ow = oh+1, 0
		}
		if oh >= c.ho {
			break
		}
		q = oh*c.wp + ow
		tiles = append(tiles, q)
		for j := 0; j < mr; j++ {
			oh, ow := (q+j)/c.wp, (q+j)%c.wp
			if oh < c.ho && ow < c.wo {
				rows = append(rows, (oh*c.wo+ow)*c.oc)
			} else {
				rows = append(rows, -1)
			}
		}
		last = q
		q += mr
	}
	pixels := c.s*(last+mr-1) + (c.k-1)*c.wp + c.k
	return tiles, rows, max(pixels, c.hp*c.wp) * c.cp
}

// minShared is the smallest input whose padding a team shares: below, the
// phase takes less time than handing it out.
const minShared = 1 << 13

// run computes the layer on one image: x is its NHWC input, y its NHWC
// output, to which it adds with flagAccum, then clamps at 0 with flagReLU.
// xMax is the largest |x| if known, else negative; run returns the same
// for y. With a team, the members share each phase: the input's
// magnitude, its padded rows, the tiles.
func (c *convLayer) run(e *Engine, w *worker, x, y []float32, flags int, tm *team, xMax float32) float32 {
	ks := e.ks
	x = x[:c.h*c.w*c.c]
	if !c.ternary {
		c.padFloat(x, w.fpad[:c.padLen], 0, c.hp+1)
		c.runFull(w, w.fpad[:c.padLen], y, flags)
		return -1
	}
	var scale, bias []float32
	if c.int8 {
		m := xMax
		if m < 0 {
			// Rare (the network's input, say): conv epilogues tell it.
			m = ks.absMax(x)
		}
		var sIn, inv float32
		if m > 0 && m <= math.MaxFloat32 {
			if c.z == 0 {
				sIn = m / 255
			} else {
				sIn = m / 127
			}
			inv = 1 / sIn
		}
		// The int32 sums count the zero point z of every input, padding
		// included: z·Σw comes off through the bias.
		zf := float32(c.z)
		for i, cf := range c.coef {
			sc := sIn * cf
			w.scale[i] = sc
			w.bias[i] = -zf * float32(c.rowsum[i]) * sc
			if i < c.ocp {
				w.bias[i] += c.bias[i]
			}
		}
		scale, bias = w.scale, w.bias
		if tm == nil || len(x) < minShared {
			c.padInt8(ks, x, w.qpad[:c.padLen], inv, w.spread, 0, c.hp+1)
		} else {
			k := tm.split(c.hp + 1)
			tm.do(k, func(chunk, member int) {
				lo, hi := part(chunk, k, c.hp+1)
				c.padInt8(ks, x, w.qpad[:c.padLen], inv, tm.spread[member], lo, hi)
			})
		}
	} else {
		scale, bias = c.coef, c.bias
		if c.fakeInt8 {
			x = c.fakeQuantize(ks, x, w.fake)
		}
		if tm == nil || len(x) < minShared {
			c.padFloat(x, w.fpad[:c.padLen], 0, c.hp+1)
		} else {
			k := tm.split(c.hp + 1)
			tm.do(k, func(chunk, _ int) {
				lo, hi := part(chunk, k, c.hp+1)
				c.padFloat(x, w.fpad[:c.padLen], lo, hi)
			})
		}
	}
	if tm == nil {
		return c.tileRange(w, y, flags, scale, bias, 0, len(c.tiles))
	}
	k := tm.split(len(c.tiles))
	tm.do(k, func(chunk, _ int) {
		lo, hi := part(chunk, k, len(c.tiles))
		tm.max[chunk] = c.tileRange(w, y, flags, scale, bias, lo, hi)
	})
	var m float32
	for _, v := range tm.max[:k] {
		m = max(m, v)
	}
	return m
}

// fakeQuantize returns x rounded as int8 mode rounds it, in float: the
// reference the tests hold int8 mode to.
func (c *convLayer) fakeQuantize(ks *kernelSet, x, dst []float32) []float32 {
	m := absMaxGo(x)
	var sIn, inv float32
	if m > 0 && m <= math.MaxFloat32 {
		if c.z == 0 {
			sIn = m / 255
		} else {
			sIn = m / 127
		}
		inv = 1 / sIn
	}
	q := make([]byte, len(x))
	quantizeGo(x, q, inv, c.z)
	dst = dst[:len(x)]
	for i, v := range q {
		dst[i] = float32(int32(v)-c.z) * sIn
	}
	return dst
}

// tileRange runs the tile kernel on tiles lo…hi-1, every block and term.
// scale and bias hold, per term, the epilogue's multiplier and offset;
// only the first term adds the bias. flags apply to the whole sum: later
// terms accumulate, the last clamps. It returns the largest |y| stored.
func (c *convLayer) tileRange(w *worker, y []float32, flags int, scale, bias []float32, lo, hi int) float32 {
	var big float32
	group := 1
	if c.int8 {
		group = 4
	}
	blockLen := c.steps * c.bw * group
	for ti := lo; ti < hi; ti++ {
		q0 := c.tiles[ti]
		rows := c.rows[ti*c.mr : (ti+1)*c.mr]
		for b := 0; b < c.nb; b++ {
			n := min(c.bw, c.oc-b*c.bw)
			for t := 0; t < c.terms; t++ {
				f := flags & flagAccum
				if t > 0 {
					f = flagAccum
				}
				if t == c.terms-1 {
					f |= flags & flagReLU
				}
				var bs []float32
				switch {
				case c.int8:
					bs = bias[t*c.ocp+b*c.bw:][:c.bw]
				case t == 0:
					bs = bias[b*c.bw:][:c.bw]
				default:
					bs = c.zeros[:c.bw]
				}
				o := t*c.ocp + b*c.bw
				wb := c.panel[(t*c.nb+b)*blockLen:][:blockLen]
				var m float32
				if c.int8 {
					m = c.kern.dot(w.qpad[c.s*q0*c.cp:], c.s*c.cp, c.offs, wb, y[b*c.bw:], rows, scale[o:o+c.bw], bs, n, f)
				} else {
					m = c.kern.fma(w.fpad[c.s*q0*c.cp:], c.s*c.cp, c.offs, wb, y[b*c.bw:], rows, scale[o:o+c.bw], bs, n, f)
				}
				if t == c.terms-1 { // earlier terms store partial sums
					big = max(big, m)
				}
			}
		}
	}
	return big
}

// padFloat writes padded rows lo…hi-1 of the float input a from x, zeros
// around it; row hp stands for the slack after the last row.
func (c *convLayer) padFloat(x, a []float32, lo, hi int) {
	rowLen := c.wp * c.cp
	for r := lo; r < hi; r++ {
		if r == c.hp {
			clear(a[c.hp*rowLen:])
			continue
		}
		row := a[r*rowLen : (r+1)*rowLen]
		if r < c.p || r >= c.p+c.h {
			clear(row)
			continue
		}
		clear(row[:c.p*c.cp])
		copy(row[c.p*c.cp:], x[(r-c.p)*c.w*c.c:(r-c.p+1)*c.w*c.c])
		clear(row[(c.p+c.w)*c.cp:])
	}
}

// padInt8 quantises padded rows lo…hi-1 of the byte input a from x (row
// hp is the slack); the padding holds the zero point, which stands for 0.
// spread is scratch for inputs whose channels are not a multiple of 4.
func (c *convLayer) padInt8(ks *kernelSet, x []float32, a []byte, inv float32, spread []float32, lo, hi int) {
	z := byte(c.z)
	fill := func(b []byte) {
		if z == 0 {
			clear(b)
			return
		}
		for i := range b {
			b[i] = z
		}
	}
	rowLen := c.wp * c.cp
	for r := lo; r < hi; r++ {
		if r == c.hp {
			fill(a[c.hp*rowLen:])
			continue
		}
		row := a[r*rowLen : (r+1)*rowLen]
		if r < c.p || r >= c.p+c.h {
			fill(row)
			continue
		}
		fill(row[:c.p*c.cp])
		src := x[(r-c.p)*c.w*c.c : (r-c.p+1)*c.w*c.c]
		if c.cp != c.c {
			// Spread the pixels to cp channels first (the extra channels
			// have zero weights), then quantise the row at once.
			t := spread[:c.w*c.cp]
			for p := 0; p < c.w; p++ {
				d, s := t[p*c.cp:(p+1)*c.cp], src[p*c.c:(p+1)*c.c]
				for ch := range d {
					if ch < len(s) {
						d[ch] = s[ch]
					} else {
						d[ch] = 0
					}
				}
			}
			src = t
		}
		ks.quantize(src, row[c.p*c.cp:(c.p+c.w)*c.cp], inv, c.z)
		fill(row[(c.p+c.w)*c.cp:])
	}
}

// runFull computes a full-precision layer with gemm.Sgemm on an im2col of
// the padded input a.
func (c *convLayer) runFull(w *worker, a, y []float32, flags int) {
	taps := c.k * c.k
	rowLen := taps * c.c
	p := c.ho * c.wo
	col := w.col[:p*rowLen]
	for oh := 0; oh < c.ho; oh++ {
		for ow := 0; ow < c.wo; ow++ {
			dst := col[(oh*c.wo+ow)*rowLen:]
			for t := 0; t < taps; t++ {
				src := ((c.s*oh+t/c.k)*c.wp + c.s*ow + t%c.k) * c.c
				copy(dst[t*c.c:(t+1)*c.c], a[src:src+c.c])
			}
		}
	}
	y = y[:p*c.oc]
	var beta float32
	if flags&flagAccum != 0 {
		beta = 1
	}
	gemm.Sgemm(false, true, p, c.oc, rowLen, 1, col, rowLen, c.wr, rowLen, beta, y, c.oc)
	for i := 0; i < p; i++ {
		r := y[i*c.oc : (i+1)*c.oc]
		for o := range r {
			v := r[o] + c.bias[o]
			if flags&flagReLU != 0 {
				v = max(v, 0)
			}
			r[o] = v
		}
	}
}
