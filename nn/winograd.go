package nn

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/internal/vec"
	"github.com/tnn-go/tnn/internal/wino"
)

// ConvAlgo picks how Conv2d computes 3×3 convolutions with stride 1 and
// padding 1, the bulk of a ResNet's work.
type ConvAlgo int32

const (
	// ConvAuto uses Winograd where it was measured faster than im2col.
	ConvAuto ConvAlgo = iota
	// ConvIm2col lays out the receptive fields and multiplies (every shape).
	ConvIm2col
	// ConvWinograd uses Winograd's F(2×2, 3×3) for every eligible shape.
	ConvWinograd
	// ConvWinograd4 uses Winograd's F(4×4, 3×3) for every eligible shape.
	ConvWinograd4
)

func (a ConvAlgo) String() string {
	switch a {
	case ConvAuto:
		return "auto"
	case ConvIm2col:
		return "im2col"
	case ConvWinograd:
		return "winograd"
	case ConvWinograd4:
		return "winograd4"
	}
	return fmt.Sprintf("ConvAlgo(%d)", int32(a))
}

// ErrConvAlgo is returned by ParseConvAlgo for an unknown name.
var ErrConvAlgo = errors.New("nn: unknown convolution algorithm (want auto, im2col, winograd or winograd4)")

// ParseConvAlgo parses "auto", "im2col", "winograd" or "winograd4".
func ParseConvAlgo(s string) (ConvAlgo, error) {
	for _, a := range []ConvAlgo{ConvAuto, ConvIm2col, ConvWinograd, ConvWinograd4} {
		if strings.EqualFold(s, a.String()) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrConvAlgo, s)
}

var convAlgo atomic.Int32

// The environment variable TNN_CONV (auto, im2col, winograd or winograd4)
// sets the starting algorithm, so that whole programs can be compared
// without a rebuild; an unknown name is ignored.
func init() {
	if a, err := ParseConvAlgo(os.Getenv("TNN_CONV")); err == nil {
		convAlgo.Store(int32(a))
	}
}

// SetConvAlgo selects the algorithm of later Forward calls and returns the
// previous one. A Backward always follows the algorithm of its Forward.
func SetConvAlgo(a ConvAlgo) ConvAlgo {
	return ConvAlgo(convAlgo.Swap(int32(a)))
}

// ConvAlgorithm returns the algorithm selected for 3×3 convolutions.
func ConvAlgorithm() ConvAlgo { return ConvAlgo(convAlgo.Load()) }

// winoTiles is the number of tiles a group of images brings to each of the
// products: small planes are taken several images at a time so that the
// products are wide enough to run near the GEMM kernels' peak, while the
// transformed input and output of a group stay in L2.
const winoTiles = 256

// winoBytes4 bounds the transformed input and output of a group of images
// for F(4×4, 3×3), 36·(InC+OutC) floats per tile, which sets the tiles per
// product in place of winoTiles, but no fewer than winoMinTiles4. Measured
// (batch 128): 256 tiles of 32 channels (2.4 MB) outgrew L2 and ran 1.3–1.6×
// slower on 16×16 planes than 64 tiles; 16 channels ran 1.2× faster on
// 28×28 with 147 tiles than with 49 and 1.06× on 32×32 with 128 than with
// 64; 64 channels of 8×8 ran 1.1× slower with 44 tiles than with 64.
const (
	winoBytes4    = 800 << 10
	winoMinTiles4 = 64
)

// useWinograd reports whether the Forward about to run on an h×w input
// takes the Winograd path, and records which one.
func (c *Conv2d) useWinograd(n, h, w int) bool {
	if c.KH != 3 || c.KW != 3 || c.Stride != 1 || c.Pad != 1 || h < 1 || w < 1 {
		return false
	}
	m := 0
	switch ConvAlgorithm() {
	case ConvWinograd:
		m = 2
	case ConvWinograd4:
		m = 4
	case ConvAuto:
		m = autoWinoTile(c.InC, n, h, w)
	}
	if m == 0 {
		return false
	}
	if c.wg == nil {
		c.wg = &winoState{}
		c.wg.fwd, c.wg.bwd = c.winoForwardImages, c.winoBackwardImages
		c.wg.wt, c.wg.wtT = c.winoWeights, c.winoWeightsT
	}
	c.wg.m = m
	return true
}

// autoWinoTile is ConvAuto's choice for an inC-channel h×w input: 0 for
// im2col, else the output tile size, 2 for F(2×2, 3×3) or 4 for F(4×4, 3×3).
// F(4×4, 3×3) measured as fast as F(2×2, 3×3) or faster on every CIFAR
// ResNet and Fashion-MNIST shape from 7×7 up (1.0–1.6× per layer, forward
// and backward, batch 128), so ConvAuto no longer picks F(2×2, 3×3);
// SetConvAlgo(ConvWinograd) still does.
func autoWinoTile(inC, n, h, w int) int {
	if inC < winoMinInC || w < winoMinW || n*((h+3)/4)*((w+3)/4) < winoMinCallTiles {
		return 0
	}
	return 4
}

// winoMinCallTiles is the fewest tiles (over the whole batch) for which
// ConvAuto takes Winograd. Each call transforms the weights anew and runs
// 36 products, which a handful of tiles cannot amortise: at batch 1 a
// resnet20 forward took 3.6 ms with F(4×4, 3×3) against 1.2 ms with im2col
// (2 threads); from a few hundred tiles on, Winograd wins.
const winoMinCallTiles = 256

// ConvAuto picks Winograd from winoMinInC input channels and planes
// winoMinW wide. With fewer channels the products are too thin for the
// transforms to pay (measured 0.5× at 3→16 channels and 0.8× at 8→16 on
// 32×32, batch 128, with F(2×2, 3×3)); the first convolution of a network,
// on RGB or grey images, stays on im2col. Against im2col, F(4×4, 3×3)
// measured 1.0–1.1× forward and 1.1–1.4× backward at 64 channels of 8×8
// and 7×7; narrower planes leave most of the transforms' 8-tile vectors
// idle.
const (
	winoMinInC = 16
	winoMinW   = 7
)

// winoState holds a Conv2d's Winograd operands and per-worker buffers.
type winoState struct {
	m      int // output tile size the next Forward uses (2 or 4)
	plan   *wino.Plan
	rows   int       // transformed rows ξ, the number of products
	g, ld  int       // images per group, row stride of the transformed planes
	vx, mx int       // stride of ξ in V (InC rows of ld) and in M (OutC rows)
	u      []float32 // rows × OutC × InC transformed weights of the last Forward
	// uOf is the weight u was transformed from, kept after eval-mode
	// Forwards only, and uM the tile size it was transformed for: an
	// evaluation pass over many batches transforms the weights once.
	uOf      []float32
	uM       int
	fwd, bwd func(lo, hi, worker int)
	wt, wtT  func(lo, hi, worker int) // weight transforms, over blocks of pairs
	wT, dwT  []float32                // operands of wtT: dw, written from du
}

// winoPairBlock is the unit the weight transforms are split into across
// workers: 64 channels square is 4096 pairs, a few hundred microseconds of
// float64 arithmetic that would otherwise run on one core.
const winoPairBlock = 256

// pairBlocks is the number of winoPairBlock blocks of c's weight pairs.
func (c *Conv2d) pairBlocks() int {
	return (c.OutC*c.InC + winoPairBlock - 1) / winoPairBlock
}

func (c *Conv2d) pairRange(lo, hi int) (int, int) {
	return lo * winoPairBlock, min(hi*winoPairBlock, c.OutC*c.InC)
}

func (c *Conv2d) winoWeights(lo, hi, _ int) {
	lo, hi = c.pairRange(lo, hi)
	c.wg.plan.TransformWeightsRange(c.wg.u, c.call.wq, c.OutC, c.InC, lo, hi)
}

func (c *Conv2d) winoWeightsT(lo, hi, _ int) {
	lo, hi = c.pairRange(lo, hi)
	c.wg.plan.TransformWeightsTRange(c.wg.wT, c.wg.dwT, c.OutC, c.InC, lo, hi)
}

// winoWeightGrad writes dw from the transformed gradient du on every core.
func (c *Conv2d) winoWeightGrad(dw, du []float32) {
	s := c.wg
	s.wT, s.dwT = dw, du
	parallel.For(c.pairBlocks(), s.wtT)
	s.wT, s.dwT = nil, nil
}

func (c *Conv2d) winoSetup(h, w int) *winoState {
	s := c.wg
	if s.plan == nil || s.plan.H != h || s.plan.W != w || s.plan.M != s.m {
		// Sizes were checked by useWinograd, so NewPlan cannot fail.
		if s.m == 4 {
			s.plan, _ = wino.NewPlan4(h, w)
		} else {
			s.plan, _ = wino.NewPlan(h, w)
		}
		s.rows = s.plan.Rows()
		t1 := s.plan.Tiles()
		tiles := winoTiles
		if s.m == 4 {
			tiles = max(winoMinTiles4, winoBytes4/(36*4*(c.InC+c.OutC)))
		}
		s.g = max(1, tiles/t1)
		s.ld = s.g*t1 + s.plan.Slack()
	}
	s.vx, s.mx = oddLines(c.InC*s.ld), oddLines(c.OutC*s.ld)
	workers := parallel.Threads()
	c.t.vs = scratch(c.t.vs, workers, s.rows*s.vx)
	c.t.ms = scratch(c.t.ms, workers, s.rows*s.mx)
	c.t.tmps = scratch(c.t.tmps, workers, s.plan.ScratchLen())
	if n := s.rows * c.OutC * c.InC; len(s.u) != n {
		s.u = make([]float32, n)
	}
	return s
}

// oddLines rounds n floats up to an odd number of 64-byte lines. The
// transforms write and read the 16 or 36 matrices of a tile side by side;
// at a stride of a power of two (16 KiB for 16 channels of 32×32 planes) all
// the streams fall in one L1 set and evict each other, which made them 2-4×
// slower.
func oddLines(n int) int {
	k := (n + 15) / 16
	return 16 * (k | 1)
}

func (c *Conv2d) winoForward(train bool) {
	a := &c.call
	s := c.winoSetup(a.h, a.w)
	if train || s.uM != s.m || !equalBits(s.uOf, a.wq) {
		parallel.For(c.pairBlocks(), s.wt)
		// Training changes the weights every step: keep nothing to compare.
		s.uOf, s.uM = s.uOf[:0], 0
		if !train {
			s.uOf, s.uM = append(s.uOf, a.wq...), s.m
		}
	}
	parallel.For(a.n, s.fwd)
}

// equalBits reports whether a and b hold the same float32 bit patterns.
func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i, v := range a {
		if math.Float32bits(v) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// winoIn transforms images [i0, i0+gn) of x into v.
func (c *Conv2d) winoIn(s *winoState, v, tmp, x []float32, i0, gn int) {
	a := &c.call
	t1, hw := s.plan.Tiles(), a.h*a.w
	gq := s.quads(gn)
	for gi := 0; gi < gq; gi += 4 {
		xi := x[(i0+gi)*a.inSz:]
		for ch := 0; ch < c.InC; ch++ {
			s.plan.In4Images(v[ch*s.ld+gi*t1:], s.vx, xi[ch*hw:], a.inSz, tmp)
		}
	}
	// The per-plane calls write slack past their tiles, which the next
	// image overwrites: they come after the quads, in order.
	for gi := gq; gi < gn; gi++ {
		xi := x[(i0+gi)*a.inSz:]
		for ch := 0; ch < c.InC; ch++ {
			s.plan.In(v[ch*s.ld+gi*t1:], s.vx, xi[ch*hw:(ch+1)*hw], tmp)
		}
	}
}

// quads returns how many of a group's gn images the four-image transforms
// take (a multiple of four), the rest going through the per-plane ones.
// Planes of 2×2 tiles (5 to 8 pixels on a side) leave six of the eight
// lanes of the per-plane transforms idle; four images at a time fill them.
func (s *winoState) quads(gn int) int {
	if !s.plan.Quad() || !winoQuad {
		return 0
	}
	return gn &^ 3
}

// winoQuad enables the four-image transforms; tests and benchmarks switch
// it off to compare with the per-plane ones.
var winoQuad = true

func (c *Conv2d) winoForwardImages(lo, hi, wk int) {
	a := &c.call
	s := c.wg
	v, m := c.t.vs[wk], c.t.ms[wk]
	t1, hw := s.plan.Tiles(), a.hw
	oc, ic := c.OutC, c.InC
	for i0 := lo; i0 < hi; i0 += s.g {
		gn := min(s.g, hi-i0)
		t := gn * t1
		c.winoIn(s, v, c.t.tmps[wk], a.x.Data, i0, gn)
		for xi := 0; xi < s.rows; xi++ {
			c.t.gws[wk].Sgemm(false, false, oc, t, ic, 1, s.u[xi*oc*ic:], ic, v[xi*s.vx:], s.ld, 0, m[xi*s.mx:], s.ld)
		}
		gq := s.quads(gn)
		for gi := 0; gi < gn; gi++ {
			yi := c.y.Data[(i0+gi)*a.outSz:]
			n := 1 // images done in this iteration
			if gi < gq {
				n = 4
			}
			for o := 0; o < oc; o++ {
				if n == 4 {
					s.plan.Out4Images(yi[o*hw:], a.outSz, m[o*s.ld+gi*t1:], s.mx, c.outBias(o))
				} else {
					s.plan.Out(yi[o*hw:(o+1)*hw], m[o*s.ld+gi*t1:], s.mx, c.outBias(o))
				}
			}
			if c.post != nil && c.post.ReLU {
				// While the images are still in cache.
				vec.ReLU(yi[:n*a.outSz], yi[:n*a.outSz])
			}
			if c.stats != nil {
				for k := 0; k < n; k++ {
					c.planeStats(yi[k*a.outSz:], i0+gi+k)
				}
			}
			gi += n - 1
		}
	}
}

func (c *Conv2d) winoBackward() {
	a := &c.call
	s := c.winoSetup(a.h, a.w)
	workers := parallel.Threads()
	n := s.rows * c.OutC * c.InC
	c.t.dus = scratch(c.t.dus, workers, n)
	used := min(workers, a.n)
	for wk := 0; wk < used; wk++ {
		clear(c.t.dus[wk])
	}
	parallel.For(a.n, s.bwd)
	// Reduce in a fixed order, as the im2col path does, so that a run is
	// bit-reproducible for a given thread count.
	if cap(c.t.du) < n {
		c.t.du = make([]float32, n)
	}
	c.t.du = c.t.du[:n]
	copy(c.t.du, c.t.dus[0])
	for wk := 1; wk < used; wk++ {
		vec.Add(c.t.du, c.t.du, c.t.dus[wk], false)
	}
}

func (c *Conv2d) winoBackwardImages(lo, hi, wk int) {
	a := &c.call
	s := c.wg
	v, dm, du := c.t.vs[wk], c.t.ms[wk], c.t.dus[wk]
	t1, hw := s.plan.Tiles(), a.hw
	oc, ic := c.OutC, c.InC
	for i0 := lo; i0 < hi; i0 += s.g {
		gn := min(s.g, hi-i0)
		t := gn * t1
		c.winoIn(s, v, c.t.tmps[wk], a.x.Data, i0, gn)
		gq := s.quads(gn)
		for gi := 0; gi < gn; gi++ {
			dyi := a.dy.Data[(i0+gi)*a.outSz:]
			c.biasGrad(dyi, wk)
			switch {
			case gi >= gq:
				for o := 0; o < oc; o++ {
					s.plan.OutT(dm[o*s.ld+gi*t1:], s.mx, dyi[o*hw:(o+1)*hw], c.t.tmps[wk])
				}
			case gi%4 == 0:
				for o := 0; o < oc; o++ {
					s.plan.OutT4Images(dm[o*s.ld+gi*t1:], s.mx, dyi[o*hw:], a.outSz, c.t.tmps[wk])
				}
			}
		}
		for xi := 0; xi < s.rows; xi++ {
			vx, dmx := v[xi*s.vx:], dm[xi*s.mx:]
			c.t.gws[wk].Sgemm(false, true, oc, ic, t, 1, dmx, s.ld, vx, s.ld, 1, du[xi*oc*ic:], ic)
			if a.needDx {
				// dV_ξ replaces V_ξ, which the weight gradient has just read.
				c.t.gws[wk].Sgemm(true, false, ic, t, oc, 1, s.u[xi*oc*ic:], ic, dmx, s.ld, 0, vx, s.ld)
			}
		}
		if !a.needDx {
			continue
		}
		for gi := 0; gi < gn; gi++ {
			dxi := c.dx.Data[(i0+gi)*a.inSz:]
			for ch := 0; ch < ic; ch++ {
				if gi < gq {
					s.plan.InT4Images(dxi[ch*hw:], a.inSz, v[ch*s.ld+gi*t1:], s.vx, c.t.tmps[wk])
				} else {
					s.plan.InT(dxi[ch*hw:(ch+1)*hw], v[ch*s.ld+gi*t1:], s.vx, c.t.tmps[wk])
				}
			}
			n := 1 // images done in this iteration
			if gi < gq {
				n = 4
			}
			if c.gs != nil {
				// The BatchNorm before takes its statistics now, while
				// the planes are in cache.
				for k := 0; k < n; k++ {
					c.gs.Take(dxi[k*a.inSz:], i0+gi+k)
				}
			}
			gi += n - 1
		}
	}
}
