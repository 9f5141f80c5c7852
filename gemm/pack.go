package gemm

// Packed layouts, all zero-padded so the kernels never branch on ragged edges
// inside their K loop:
//
//	A slice: dst[p*mr+r] = op(A)[i0+r][pc+p]   r < mr
//	B panel: dst[p*bw+j] = op(B)[pc+p][j0+j]   j < bw

// packAN copies h ≤ mr rows of a non-transposed A (m×k, stride lda).
func packAN(dst, a []float32, lda, pc, kb, i0, h int) {
	dst = dst[:mr*kb]
	for r := 0; r < mr; r++ {
		if r >= h {
			for p := 0; p < kb; p++ {
				dst[p*mr+r] = 0
			}
			continue
		}
		src := a[(i0+r)*lda+pc:]
		src = src[:kb]
		for p, v := range src {
			dst[p*mr+r] = v
		}
	}
}

// packAT copies h ≤ mr columns of a transposed A (stored k×m, stride lda):
// each K step is mr contiguous values, so this is a run of short copies.
func packAT(dst, a []float32, lda, pc, kb, i0, h int) {
	dst = dst[:mr*kb]
	if h == mr {
		for p := 0; p < kb; p++ {
			s := a[(pc+p)*lda+i0:]
			s = s[:mr]
			d := dst[p*mr : p*mr+mr]
			d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
		}
		return
	}
	for p := 0; p < kb; p++ {
		d := dst[p*mr : p*mr+mr]
		copy(d, a[(pc+p)*lda+i0:(pc+p)*lda+i0+h])
		clear(d[h:])
	}
}

// packBN copies w ≤ bw columns of a non-transposed B (k×n, stride ldb).
func packBN(dst []float32, bw int, b []float32, ldb, pc, kb, j0, w int) {
	dst = dst[:bw*kb]
	if w == nr && bw == nr {
		for p := 0; p < kb; p++ {
			s := b[(pc+p)*ldb+j0:]
			s = s[:nr]
			d := dst[p*nr : p*nr+nr]
			d = d[:len(s)]
			copy(d, s)
		}
		return
	}
	for p := 0; p < kb; p++ {
		d := dst[p*bw : p*bw+bw]
		copy(d, b[(pc+p)*ldb+j0:(pc+p)*ldb+j0+w])
		clear(d[w:])
	}
}

// packBT copies w ≤ bw columns of a transposed B (stored n×k, stride ldb).
// Each source row is read contiguously and scattered with stride bw, so the
// writes stay inside the panel, which is small enough to live in L1.
func packBT(dst []float32, bw int, b []float32, ldb, pc, kb, j0, w int) {
	dst = dst[:bw*kb]
	for j := 0; j < bw; j++ {
		if j >= w {
			for p := 0; p < kb; p++ {
				dst[p*bw+j] = 0
			}
			continue
		}
		src := b[(j0+j)*ldb+pc:]
		src = src[:kb]
		for p, v := range src {
			dst[p*bw+j] = v
		}
	}
}
