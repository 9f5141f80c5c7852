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

// packBN copies w ≤ bw columns of a non-transposed B (k×n, stride ldb). Only
// the last panel of a block comes here: full wide panels go through copyRows.
// full packs a full panel of width bw = nrHalf.
func packBN(full packFunc, dst []float32, bw int, b []float32, ldb, pc, kb, j0, w int) {
	dst = dst[:bw*kb]
	if w == nrHalf && bw == nrHalf {
		full(kb, b[pc*ldb+j0:], ldb, dst)
		return
	}
	for p := 0; p < kb; p++ {
		d := dst[p*bw : p*bw+bw]
		copy(d, b[(pc+p)*ldb+j0:(pc+p)*ldb+j0+w])
		clear(d[w:])
	}
}

// packBT copies w ≤ bw columns of a transposed B (stored n×k, stride ldb).
// Full panels go through full in blocks of eight K steps; the rest reads each
// source row contiguously and scatters with stride bw, writes that stay
// inside the panel, which is small enough to live in L1.
func packBT(full packFunc, dst []float32, bw int, b []float32, ldb, pc, kb, j0, w int) {
	dst = dst[:bw*kb]
	p0 := 0
	if w == bw {
		p0 = kb &^ 7
		full(p0/8, b[j0*ldb+pc:], ldb, dst)
	}
	for j := 0; j < bw; j++ {
		if j >= w {
			for p := p0; p < kb; p++ {
				dst[p*bw+j] = 0
			}
			continue
		}
		src := b[(j0+j)*ldb+pc:]
		src = src[p0:kb]
		for p, v := range src {
			dst[(p0+p)*bw+j] = v
		}
	}
}

// copyRows16Go is the pure-Go twin of copyRows16.
func copyRows16Go(k, np int, b []float32, ldb int, dst []float32) {
	dst = dst[:np*nr*k]
	for p := 0; p < k; p++ {
		row := b[p*ldb : p*ldb+np*nr]
		for q := 0; q < np; q++ {
			copy(dst[(q*k+p)*nr:(q*k+p)*nr+nr], row[q*nr:q*nr+nr])
		}
	}
}

// copyB8Go is the pure-Go twin of copyB8.
func copyB8Go(k int, b []float32, ldb int, dst []float32) {
	dst = dst[:nrHalf*k]
	for p := 0; p < k; p++ {
		copy(dst[p*nrHalf:p*nrHalf+nrHalf], b[p*ldb:p*ldb+nrHalf])
	}
}

// transB16Go is the pure-Go twin of transB16.
func transB16Go(k8 int, b []float32, ldb int, dst []float32) {
	transBGo(nr, 8*k8, b, ldb, dst)
}

// transB8Go is the pure-Go twin of transB8.
func transB8Go(k8 int, b []float32, ldb int, dst []float32) {
	transBGo(nrHalf, 8*k8, b, ldb, dst)
}

func transBGo(bw, k int, b []float32, ldb int, dst []float32) {
	dst = dst[:bw*k]
	for j := 0; j < bw; j++ {
		src := b[j*ldb : j*ldb+k]
		for p, v := range src {
			dst[p*bw+j] = v
		}
	}
}
