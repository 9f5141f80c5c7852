package vec

//go:generate go run -C _generate . -set phase -out ../vec_phase_amd64.s -stubs ../vec_phase_amd64_stubs.go -pkg vec

import "fmt"

// phaseKernels is one implementation of the kernels behind stride-2
// im2col and col2im: the assembly of vec_phase_amd64.s or the twins.
type phaseKernels struct {
	splitPhases, mergePhases func(dst, src []float32, w, rows, lp, p0 int)
	copyRows, addRows        func(dst, src []float32, n, rows, dstStride, srcStride int)
}

var goPhase = phaseKernels{
	splitPhases: splitPhasesGo, mergePhases: mergePhasesGo,
	copyRows: copyRowsGo, addRows: addRowsGo,
}

func checkPhases(what string, ld, ls, w, rows, lp, p0 int) {
	if w < 0 || rows < 0 || p0 < 0 || p0+(w+1)/2 > lp {
		panic(fmt.Sprintf("vec.%s: bad sizes w=%d rows=%d lp=%d p0=%d", what, w, rows, lp, p0))
	}
	if rows > 0 && (ld < rows*2*lp || ls < rows*w) {
		panic(fmt.Sprintf("vec.%s: %d rows need %d phase and %d image floats, have %d and %d", what, rows, rows*2*lp, rows*w, ld, ls))
	}
}

// SplitPhases splits each of rows image rows of w floats (src, one after
// another) into its even and odd columns: row r of dst, dst[r*2*lp:][:2*lp],
// holds the even columns at [p0, p0+⌈w/2⌉), the odd ones at
// [lp+p0, lp+p0+⌊w/2⌋), and zeros around them. A stride-2 tap then reads a
// contiguous run of one phase, the zeros standing for the padding.
func SplitPhases(dst, src []float32, w, rows, lp, p0 int) {
	checkPhases("SplitPhases", len(dst), len(src), w, rows, lp, p0)
	if rows == 0 {
		return
	}
	activePhase.splitPhases(dst, src, w, rows, lp, p0)
}

// MergePhases is the inverse of SplitPhases: it interleaves the even and odd
// columns of each src row (layout as SplitPhases writes it) back into rows
// of w floats in dst. The padding columns are not read.
func MergePhases(dst, src []float32, w, rows, lp, p0 int) {
	checkPhases("MergePhases", len(src), len(dst), w, rows, lp, p0)
	if rows == 0 || w == 0 {
		return
	}
	activePhase.mergePhases(dst, src, w, rows, lp, p0)
}

func checkStrided(what string, ld, ls, n, rows, ds, ss int) {
	if n < 0 || rows < 0 || (rows > 1 && (ds < 0 || ss < 0)) {
		panic(fmt.Sprintf("vec.%s: bad sizes n=%d rows=%d strides %d, %d", what, n, rows, ds, ss))
	}
	if rows > 0 && n > 0 && ((rows-1)*ds+n > ld || (rows-1)*ss+n > ls) {
		panic(fmt.Sprintf("vec.%s: %d rows of %d (strides %d, %d) overrun slices of %d and %d floats", what, rows, n, ds, ss, ld, ls))
	}
}

// CopyRows sets dst[r*dstStride+j] = src[r*srcStride+j] for r < rows, j < n.
func CopyRows(dst, src []float32, n, rows, dstStride, srcStride int) {
	checkStrided("CopyRows", len(dst), len(src), n, rows, dstStride, srcStride)
	if rows == 0 || n == 0 {
		return
	}
	activePhase.copyRows(dst, src, n, rows, dstStride, srcStride)
}

// AddRows sets dst[r*dstStride+j] += src[r*srcStride+j] for r < rows, j < n,
// row after row.
func AddRows(dst, src []float32, n, rows, dstStride, srcStride int) {
	checkStrided("AddRows", len(dst), len(src), n, rows, dstStride, srcStride)
	if rows == 0 || n == 0 {
		return
	}
	activePhase.addRows(dst, src, n, rows, dstStride, srcStride)
}

func splitPhasesGo(dst, src []float32, w, rows, lp, p0 int) {
	ne, no := (w+1)/2, w/2
	for r := 0; r < rows; r++ {
		d := dst[r*2*lp:][:2*lp]
		s := src[r*w:][:w]
		clear(d)
		ev, od := d[p0:][:ne], d[lp+p0:][:no]
		for j := range ev {
			ev[j] = s[2*j]
		}
		for j := range od {
			od[j] = s[2*j+1]
		}
	}
}

func mergePhasesGo(dst, src []float32, w, rows, lp, p0 int) {
	ne, no := (w+1)/2, w/2
	for r := 0; r < rows; r++ {
		sr := src[r*2*lp:][:2*lp]
		d := dst[r*w:][:w]
		for j, v := range sr[p0:][:ne] {
			d[2*j] = v
		}
		for j, v := range sr[lp+p0:][:no] {
			d[2*j+1] = v
		}
	}
}

func copyRowsGo(dst, src []float32, n, rows, dstStride, srcStride int) {
	for r := 0; r < rows; r++ {
		copy(dst[r*dstStride:][:n], src[r*srcStride:][:n])
	}
}

func addRowsGo(dst, src []float32, n, rows, dstStride, srcStride int) {
	for r := 0; r < rows; r++ {
		d, s := dst[r*dstStride:][:n], src[r*srcStride:][:n]
		for j := range d {
			d[j] += s[j]
		}
	}
}
