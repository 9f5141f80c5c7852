package infer

import "math"

//go:generate go run -C _generate . -out ../kernels_amd64.s -stubs ../kernels_amd64_stubs.go -pkg infer

// The runtime's inner loops. Each has a pure-Go twin (the ...Go functions
// here) with the same arguments and the same result up to float rounding:
// they run with -tags noasm, off amd64 and on CPUs without AVX2, and the
// tests hold the assembly to them.
//
// A convolution is computed on tiles of mr output pixels × bw output
// channels (a block of the weights), straight from the padded NHWC input
// (no im2col): pixel j of a tile reads step s of its receptive field at
// a[offs[s] + j*as], where offs lists, per (kernel tap, channel group), the
// offset from the tile's first pixel. Output row j goes to
// out[rows[j]:rows[j]+n], or nowhere when rows[j] < 0 (padding columns of
// the implicit GEMM, see convLayer). scale and bias have bw entries.

// Epilogue flags of the tile kernels.
const (
	flagReLU  = 1 // clamp the result at 0
	flagAccum = 2 // add the result to what out holds
)

// maxBW is the widest block of the tile kernels.
const maxBW = 32

// dotTileGo is the pure-Go twin of the int8 tile kernels (dotVNNI16x16,
// dotVNNI8x32, dotAVX2x6): a holds unsigned 8-bit activations, w the
// block's signed 8-bit weights as len(offs) steps of [bw channels][4
// bytes], so that step s, channel o multiplies a[offs[s]+j*as : +4] by
// w[(s*bw+o)*4 : +4]. The int32 sum of channel o of row j becomes
//
//	v = float32(acc)*scale[o] + bias[o]   (+ out[rows[j]+o] with flagAccum)
//
// clamped at 0 with flagReLU, for o < n ≤ bw. len(rows) is the tile
// height, len(scale) the block width bw. It returns the largest |v|
// stored (NaNs skipped), 0 if none. The weights must be trits (-1, 0, 1):
// dotAVX2x6's 16-bit partial sums rely on it.
func dotTileGo(a []byte, as int, offs []int32, w []int8, out []float32, rows []int, scale, bias []float32, n, flags int) float32 {
	bw := len(scale)
	var acc [maxBW]int32
	var big float32
	for j, r := range rows {
		if r < 0 {
			continue
		}
		clear(acc[:])
		for s, off := range offs {
			x := a[int(off)+j*as:][:4]
			ws := w[s*4*bw:][:4*bw]
			for o := 0; o < n; o++ {
				acc[o] += int32(x[0])*int32(ws[4*o]) + int32(x[1])*int32(ws[4*o+1]) +
					int32(x[2])*int32(ws[4*o+2]) + int32(x[3])*int32(ws[4*o+3])
			}
		}
		var f [maxBW]float32
		for o, v := range acc[:n] {
			f[o] = float32(v)
		}
		big = epilogue(f[:n], out[r:r+n], scale, bias, flags, big)
	}
	return big
}

// epilogue stores acc·scale + bias (+ y with flagAccum, clamped at 0 with
// flagReLU) in y and returns the largest of big and the stored |v|.
func epilogue(acc, y, scale, bias []float32, flags int, big float32) float32 {
	for o, v := range acc {
		f := v*scale[o] + bias[o]
		if flags&flagAccum != 0 {
			f += y[o]
		}
		if flags&flagReLU != 0 {
			f = max(f, 0)
		}
		y[o] = f
		if a := float32(math.Abs(float64(f))); a > big {
			big = a
		}
	}
	return big
}

// fmaTileGo is the pure-Go twin of the float tile kernels (fmaZ16x16,
// fmaZ8x32, fmaAVX2x6): a holds float32 activations, w the block's weights
// as int8 levels, len(offs) steps of [bw channels], so that step s,
// channel o multiplies a[offs[s]+j*as] by w[s*bw+o]. The epilogue is
// dotTileGo's. The weights are converted to float32 one step at a time,
// in registers.
func fmaTileGo(a []float32, as int, offs []int32, w []int8, out []float32, rows []int, scale, bias []float32, n, flags int) float32 {
	bw := len(scale)
	var acc [maxBW]float32
	var big float32
	for j, r := range rows {
		if r < 0 {
			continue
		}
		clear(acc[:])
		for s, off := range offs {
			x := a[int(off)+j*as]
			ws := w[s*bw:][:bw]
			for o := 0; o < n; o++ {
				acc[o] += x * float32(ws[o])
			}
		}
		big = epilogue(acc[:n], out[r:r+n], scale, bias, flags, big)
	}
	return big
}

// quantizeGo is the pure-Go twin of quantizeAVX2: dst[i] =
// clamp(round(x[i]·inv) + z, 0, 255), rounding half to even as the
// processor's float-to-int conversion does. x[i]·inv is first clamped to
// [-256, 256], NaN to -256, so that no input can wrap around.
func quantizeGo(x []float32, dst []byte, inv float32, z int32) {
	dst = dst[:len(x)]
	for i, v := range x {
		p := v * inv
		if !(p >= -256) {
			p = -256
		}
		p = min(p, 256)
		q := int32(math.RoundToEven(float64(p))) + z
		dst[i] = byte(min(max(q, 0), 255))
	}
}

// absMaxGo is the pure-Go twin of absMaxAVX2: the largest |x[i]|, 0 for an
// empty x; NaNs are skipped.
func absMaxGo(x []float32) float32 {
	var m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	return m
}

// addGo is the pure-Go twin of addAVX2: dst[i] = a[i] + b[i], clamped at 0
// when relu is set.
func addGo(dst, a, b []float32, relu bool) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		v := a[i] + b[i]
		if relu {
			v = max(v, 0)
		}
		dst[i] = v
	}
}

type (
	dotFunc func(a []byte, as int, offs []int32, w []int8, out []float32, rows []int, scale, bias []float32, n, flags int) float32
	fmaFunc func(a []float32, as int, offs []int32, w []int8, out []float32, rows []int, scale, bias []float32, n, flags int) float32
)

// tileKernel is a tile kernel and its tile: mr pixels × bw channels.
type tileKernel struct {
	name   string
	mr, bw int
	dot    dotFunc // int8 kernels
	fma    fmaFunc // float kernels
}

// kernelSet is one implementation of every kernel; a layer uses the tile
// kernel of dots (int8) or fmas (float) that wastes least on its shape.
type kernelSet struct {
	name       string
	dots, fmas []tileKernel
	quantize   func(x []float32, dst []byte, inv float32, z int32)
	absMax     func(x []float32) float32
	add        func(dst, a, b []float32, relu bool)
}

var goKernels = kernelSet{name: "go",
	dots:     []tileKernel{{name: "dotTileGo", mr: 16, bw: 16, dot: dotTileGo}, {name: "dotTileGo", mr: 8, bw: 32, dot: dotTileGo}},
	fmas:     []tileKernel{{name: "fmaTileGo", mr: 16, bw: 16, fma: fmaTileGo}, {name: "fmaTileGo", mr: 8, bw: 32, fma: fmaTileGo}},
	quantize: quantizeGo, absMax: absMaxGo, add: addGo}
