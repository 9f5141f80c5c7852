// Package vec holds the engine's elementwise and reduction loops over
// float32 slices: BatchNorm statistics and its normalisation, the gradients
// of BatchNorm, residual addition and ReLU, and the im2col of "same"
// convolutions. On amd64 CPUs with AVX2 they run as assembly generated with
// avo (see _generate; `go generate` rebuilds it); elsewhere, or with the
// build tag noasm, as pure-Go twins that compute bit-identical results:
// these loops give the same bits whatever the CPU or build tag.
//
// Row-wise kernels take (rows, cols, stride): row r is
// x[r*stride : r*stride+cols], the layout of one channel across the images
// of an NCHW batch (stride = C·H·W, cols = H·W). Reductions return one
// float32 sum per row, accumulated in 32 lanes; callers add rows in float64.
//
// The functions panic, like an out-of-range index, when a slice is too short
// for the sizes given: the assembly would otherwise read or write past it.
package vec

//go:generate go run -C _generate . -out ../vec_amd64.s -stubs ../vec_amd64_stubs.go -pkg vec

import "fmt"

// kernels is one implementation of every kernel: the assembly or the twins.
type kernels struct {
	rowStats                 func(x []float32, rows, cols, stride int, out []float32)
	normalize, normalizeReLU func(y, x []float32, rows, cols, stride int, mean, invStd, g, b float32)
	gradStats                func(dy, x []float32, rows, cols, stride int, mean float32, out []float32)
	gradStatsReLU            func(dy, x []float32, rows, cols, stride int, mean, invStd, g, b float32, out []float32)
	gradApply                func(dx, dy, x []float32, rows, cols, stride int, mean, r, mdy, k float32)
	gradApplyReLU            func(dx, dy, x []float32, rows, cols, stride int, mean, r, mdy, k, invStd, g, b float32)
	add, addReLU             func(y, a, b []float32)
	relu                     func(y, x []float32)
	maskPositive             func(dx, dy, y []float32)
	im2colSame               func(col, x []float32, ch, h, w, kh, kw, pad, lo, hi int)
}

var goKernels = kernels{
	rowStats: rowStatsGo, normalize: normalizeGo, normalizeReLU: normalizeReLUGo,
	gradStats: gradStatsGo, gradStatsReLU: gradStatsReLUGo,
	gradApply: gradApplyGo, gradApplyReLU: gradApplyReLUGo,
	add: addGo, addReLU: addReLUGo, relu: reluGo, maskPositive: maskPositiveGo,
	im2colSame: im2colSameGo,
}

// Asm reports whether the assembly kernels are in use.
func Asm() bool { return hasAsm }

func checkRows(what string, n, rows, cols, stride int) {
	if rows < 0 || cols < 0 || (rows > 1 && stride < cols) {
		panic(fmt.Sprintf("vec.%s: bad layout rows=%d cols=%d stride=%d", what, rows, cols, stride))
	}
	if rows > 0 && (rows-1)*stride+cols > n {
		panic(fmt.Sprintf("vec.%s: %d rows of %d (stride %d) need %d floats, have %d", what, rows, cols, stride, (rows-1)*stride+cols, n))
	}
}

func checkLen(what string, n int, lens ...int) {
	for _, l := range lens {
		if l < n {
			panic(fmt.Sprintf("vec.%s: slice of %d floats, want %d", what, l, n))
		}
	}
}

// RowStats writes, for each row r, out[3r] = S = Σx, out[3r+1] = Σ(x−m)² and
// out[3r+2] = Σ(x−m), where m = S/cols rounded to float32. Centring each
// row on its own mean while it is in L1 gives the accuracy of a two-pass
// variance with one pass over memory; see BatchNorm for the combination.
func RowStats(x []float32, rows, cols, stride int, out []float32) {
	checkRows("RowStats", len(x), rows, cols, stride)
	checkLen("RowStats", 3*rows, len(out))
	active.rowStats(x, rows, cols, stride, out)
}

// BN is one channel's BatchNorm transform: y = ((x−mean)·InvStd)·Gamma +
// Beta, each operation rounded to float32 in that order. Forming x−mean
// first keeps the precision when the mean is large against the spread.
type BN struct{ Mean, InvStd, Gamma, Beta float32 }

// Normalize sets y to the BatchNorm transform of x on every row (y and x
// share the layout); with relu, y = max(transform, 0), where NaN passes.
func Normalize(y, x []float32, rows, cols, stride int, t BN, relu bool) {
	checkRows("Normalize", len(x), rows, cols, stride)
	checkRows("Normalize", len(y), rows, cols, stride)
	if relu {
		active.normalizeReLU(y, x, rows, cols, stride, t.Mean, t.InvStd, t.Gamma, t.Beta)
	} else {
		active.normalize(y, x, rows, cols, stride, t.Mean, t.InvStd, t.Gamma, t.Beta)
	}
}

// GradStats writes, for each row r, out[2r] = Σd and out[2r+1] =
// Σd·(x−t.Mean), where d = dy; with relu, d = dy where the transform t of x
// is > 0 and 0 elsewhere: the gradient through a fused max(BN(x), 0),
// its mask recomputed from x exactly as Normalize made the output.
func GradStats(dy, x []float32, rows, cols, stride int, t BN, relu bool, out []float32) {
	checkRows("GradStats", len(x), rows, cols, stride)
	checkRows("GradStats", len(dy), rows, cols, stride)
	checkLen("GradStats", 2*rows, len(out))
	if relu {
		active.gradStatsReLU(dy, x, rows, cols, stride, t.Mean, t.InvStd, t.Gamma, t.Beta, out)
	} else {
		active.gradStats(dy, x, rows, cols, stride, t.Mean, out)
	}
}

// GradApply sets dx = ((d − mdy) − (x−t.Mean)·r)·k on every row, d being as
// in GradStats: the BatchNorm input gradient, with x−mean formed first.
func GradApply(dx, dy, x []float32, rows, cols, stride int, t BN, relu bool, r, mdy, k float32) {
	checkRows("GradApply", len(x), rows, cols, stride)
	checkRows("GradApply", len(dy), rows, cols, stride)
	checkRows("GradApply", len(dx), rows, cols, stride)
	if relu {
		active.gradApplyReLU(dx, dy, x, rows, cols, stride, t.Mean, r, mdy, k, t.InvStd, t.Gamma, t.Beta)
	} else {
		active.gradApply(dx, dy, x, rows, cols, stride, t.Mean, r, mdy, k)
	}
}

// Add sets y[i] = a[i] + b[i] for i < len(y); with relu, max(a[i]+b[i], 0),
// where NaN passes.
func Add(y, a, b []float32, relu bool) {
	checkLen("Add", len(y), len(a), len(b))
	if relu {
		active.addReLU(y, a, b)
	} else {
		active.add(y, a, b)
	}
}

// ReLU sets y[i] = max(x[i], 0) for i < len(y), NaN passing through.
func ReLU(y, x []float32) {
	checkLen("ReLU", len(y), len(x))
	active.relu(y, x)
}

// MaskPositive sets dx[i] = dy[i] where y[i] > 0 and 0 elsewhere (NaN in y
// included), for i < len(dx): the gradient through a ReLU whose output is y.
func MaskPositive(dx, dy, y []float32) {
	checkLen("MaskPositive", len(dx), len(dy), len(y))
	active.maskPositive(dx, dy, y)
}

// Im2colSame writes the im2col rows of a ch×h×w image x for a stride-1
// convolution with a kh×kw kernel and padding pad whose output is also h×w
// (2·pad = kh−1 = kw−1 for the usual odd kernels), for the output rows
// [lo, hi) only: with n = (hi−lo)·w, the plane at
// col[((c*kh+ki)*kw+kj)*n:][:n] holds rows lo..hi−1 of channel c shifted by
// (ki−pad, kj−pad), with 0 where the tap falls outside the image. This is
// the (ch·kh·kw) × n matrix whose product with the weights gives those
// output rows, so a convolution can be done a band of rows at a time.
func Im2colSame(col, x []float32, ch, h, w, kh, kw, pad, lo, hi int) {
	if ch < 0 || h < 0 || w < 0 || kh < 0 || kw < 0 || lo < 0 || hi < lo || hi > h {
		panic(fmt.Sprintf("vec.Im2colSame: bad sizes ch=%d h=%d w=%d kh=%d kw=%d rows [%d, %d)", ch, h, w, kh, kw, lo, hi))
	}
	checkLen("Im2colSame", ch*h*w, len(x))
	checkLen("Im2colSame", ch*kh*kw*(hi-lo)*w, len(col))
	if ch == 0 || hi == lo || w == 0 || kh == 0 || kw == 0 {
		return
	}
	if im2colFits(w, kw, pad) {
		active.im2colSame(col, x, ch, h, w, kh, kw, pad, lo, hi)
	} else {
		im2colSameGo(col, x, ch, h, w, kh, kw, pad, lo, hi)
	}
}

// im2colFits reports whether the assembly im2colSame handles a row width
// and horizontal padding: it masks only the first and last 8-float block of
// a row, so the border taps must fall inside them. Every 3×3 kernel with
// padding 1 fits; wide paddings on some widths go to the twin.
func im2colFits(w, kw, pad int) bool {
	if w <= 8 {
		return true
	}
	return pad <= 8 && kw-1-pad <= (w-1)%8+1
}
