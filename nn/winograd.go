package nn

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/tnn-go/tnn/gemm"
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
)

func (a ConvAlgo) String() string {
	switch a {
	case ConvAuto:
		return "auto"
	case ConvIm2col:
		return "im2col"
	case ConvWinograd:
		return "winograd"
	}
	return fmt.Sprintf("ConvAlgo(%d)", int32(a))
}

// ErrConvAlgo is returned by ParseConvAlgo for an unknown name.
var ErrConvAlgo = errors.New("nn: unknown convolution algorithm (want auto, im2col or winograd)")

// ParseConvAlgo parses "auto", "im2col" or "winograd".
func ParseConvAlgo(s string) (ConvAlgo, error) {
	for _, a := range []ConvAlgo{ConvAuto, ConvIm2col, ConvWinograd} {
		if strings.EqualFold(s, a.String()) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrConvAlgo, s)
}

var convAlgo atomic.Int32

// The environment variable TNN_CONV (auto, im2col or winograd) sets the
// starting algorithm, so that whole programs can be compared without a
// rebuild; an unknown name is ignored.
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

// ConvAuto picks Winograd from winoMinInC input channels and planes
// winoMinW wide. With fewer channels the products are too thin for the
// transforms to pay (measured 0.5× at 3→16 channels and 0.8× at 8→16 on
// 32×32, batch 128); the first convolution of a network, on RGB or grey
// images, stays on im2col. The transforms work on eight tiles of a row at a
// time, so planes 8 or fewer pixels wide (4 tiles) waste half of each
// vector: measured even with im2col at 64 channels on 8×8.
const (
	winoMinInC = 16
	winoMinW   = 9
)

// winoTiles is the number of tiles a group of images brings to each of the
// 16 products: small planes are taken several images at a time so that the
// products are wide enough to run near the GEMM kernels' peak, while the
// transformed input and output of a group stay in L2.
const winoTiles = 256

// useWinograd reports whether the Forward about to run on an h×w input
// takes the Winograd path.
func (c *Conv2d) useWinograd(h, w int) bool {
	if c.KH != 3 || c.KW != 3 || c.Stride != 1 || c.Pad != 1 || h < 1 || w < 1 {
		return false
	}
	switch ConvAlgorithm() {
	case ConvWinograd:
		return true
	case ConvIm2col:
		return false
	}
	return c.InC >= winoMinInC && w >= winoMinW
}

// winoState holds a Conv2d's Winograd operands and per-worker buffers.
type winoState struct {
	plan     *wino.Plan
	g, ld    int       // images per group, row stride of the transformed planes
	vx, mx   int       // stride of ξ in V (InC rows of ld) and in M (OutC rows)
	u        []float32 // 16 × OutC × InC transformed weights of the last Forward
	vs, ms   [][]float32
	tmps     [][]float32
	dus      [][]float32 // per-worker 16 × OutC × InC weight gradients
	du       []float32
	fwd, bwd func(lo, hi, worker int)
}

func (c *Conv2d) winoSetup(h, w int) *winoState {
	s := c.wg
	if s == nil {
		s = &winoState{}
		s.fwd, s.bwd = c.winoForwardImages, c.winoBackwardImages
		c.wg = s
	}
	if s.plan == nil || s.plan.H != h || s.plan.W != w {
		// Sizes were checked by useWinograd, so NewPlan cannot fail.
		s.plan, _ = wino.NewPlan(h, w)
		t1 := s.plan.Tiles()
		s.g = max(1, winoTiles/t1)
		s.ld = s.g*t1 + s.plan.Slack()
	}
	s.vx, s.mx = oddLines(c.InC*s.ld), oddLines(c.OutC*s.ld)
	workers := parallel.Threads()
	s.vs = scratch(s.vs, workers, 16*s.vx)
	s.ms = scratch(s.ms, workers, 16*s.mx)
	s.tmps = scratch(s.tmps, workers, s.plan.ScratchLen())
	if n := 16 * c.OutC * c.InC; len(s.u) != n {
		s.u = make([]float32, n)
	}
	return s
}

// oddLines rounds n floats up to an odd number of 64-byte lines. The
// transforms write and read the 16 matrices of a tile side by side; at a
// stride of a power of two (16 KiB for 16 channels of 32×32 planes) all 16
// streams fall in one L1 set and evict each other, which made them 2-4×
// slower.
func oddLines(n int) int {
	k := (n + 15) / 16
	return 16 * (k | 1)
}

func (c *Conv2d) winoForward() {
	a := &c.call
	s := c.winoSetup(a.h, a.w)
	wino.Weights(s.u, a.wq, c.OutC, c.InC)
	parallel.For(a.n, s.fwd)
}

// winoIn transforms images [i0, i0+gn) of x into v.
func (c *Conv2d) winoIn(s *winoState, v, tmp, x []float32, i0, gn int) {
	a := &c.call
	t1, hw := s.plan.Tiles(), a.h*a.w
	for gi := 0; gi < gn; gi++ {
		xi := x[(i0+gi)*a.inSz:]
		for ch := 0; ch < c.InC; ch++ {
			s.plan.In(v[ch*s.ld+gi*t1:], s.vx, xi[ch*hw:(ch+1)*hw], tmp)
		}
	}
}

func (c *Conv2d) winoForwardImages(lo, hi, wk int) {
	a := &c.call
	s := c.wg
	v, m := s.vs[wk], s.ms[wk]
	t1, hw := s.plan.Tiles(), a.hw
	oc, ic := c.OutC, c.InC
	for i0 := lo; i0 < hi; i0 += s.g {
		gn := min(s.g, hi-i0)
		t := gn * t1
		c.winoIn(s, v, s.tmps[wk], a.x.Data, i0, gn)
		for xi := 0; xi < 16; xi++ {
			gemm.Sgemm(false, false, oc, t, ic, 1, s.u[xi*oc*ic:], ic, v[xi*s.vx:], s.ld, 0, m[xi*s.mx:], s.ld)
		}
		for gi := 0; gi < gn; gi++ {
			yi := c.y.Data[(i0+gi)*a.outSz:]
			for o := 0; o < oc; o++ {
				var b float32
				if c.Bias != nil {
					b = c.Bias.Data.Data[o]
				}
				s.plan.Out(yi[o*hw:(o+1)*hw], m[o*s.ld+gi*t1:], s.mx, b)
			}
		}
	}
}

func (c *Conv2d) winoBackward() {
	a := &c.call
	s := c.winoSetup(a.h, a.w)
	workers := parallel.Threads()
	n := 16 * c.OutC * c.InC
	s.dus = scratch(s.dus, workers, n)
	used := min(workers, a.n)
	for wk := 0; wk < used; wk++ {
		clear(s.dus[wk])
	}
	parallel.For(a.n, s.bwd)
	// Reduce in a fixed order, as the im2col path does, so that a run is
	// bit-reproducible for a given thread count.
	if len(s.du) != n {
		s.du = make([]float32, n)
	}
	copy(s.du, s.dus[0])
	for wk := 1; wk < used; wk++ {
		vec.Add(s.du, s.du, s.dus[wk], false)
	}
}

func (c *Conv2d) winoBackwardImages(lo, hi, wk int) {
	a := &c.call
	s := c.wg
	v, dm, du := s.vs[wk], s.ms[wk], s.dus[wk]
	t1, hw := s.plan.Tiles(), a.hw
	oc, ic := c.OutC, c.InC
	for i0 := lo; i0 < hi; i0 += s.g {
		gn := min(s.g, hi-i0)
		t := gn * t1
		c.winoIn(s, v, s.tmps[wk], a.x.Data, i0, gn)
		for gi := 0; gi < gn; gi++ {
			dyi := a.dy.Data[(i0+gi)*a.outSz:]
			c.biasGrad(dyi, wk)
			for o := 0; o < oc; o++ {
				s.plan.OutT(dm[o*s.ld+gi*t1:], s.mx, dyi[o*hw:(o+1)*hw])
			}
		}
		for xi := 0; xi < 16; xi++ {
			vx, dmx := v[xi*s.vx:], dm[xi*s.mx:]
			gemm.Sgemm(false, true, oc, ic, t, 1, dmx, s.ld, vx, s.ld, 1, du[xi*oc*ic:], ic)
			if a.needDx {
				// dV_ξ replaces V_ξ, which the weight gradient has just read.
				gemm.Sgemm(true, false, ic, t, oc, 1, s.u[xi*oc*ic:], ic, dmx, s.ld, 0, vx, s.ld)
			}
		}
		if !a.needDx {
			continue
		}
		for gi := 0; gi < gn; gi++ {
			dxi := c.dx.Data[(i0+gi)*a.inSz:]
			for ch := 0; ch < ic; ch++ {
				s.plan.InT(dxi[ch*hw:(ch+1)*hw], v[ch*s.ld+gi*t1:], s.vx, s.tmps[wk])
			}
		}
	}
}
