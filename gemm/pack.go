package gemm

// Packed layouts, all zero-padded so the kernels never branch on ragged edges
// inside their K loop:
//
//	A slice: dst[p*mr+r] = op(A)[i0+r][pc+p]   r < mr
//	B panel: dst[p*bw+j] = op(B)[pc+p][j0+j]   j < bw

// packAN copies h ≤ mr rows of a non-transposed A (m×k, stride lda).
func packAN(dst []float32, mr int, a []float32, lda, pc, kb, i0, h int) {
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
func packAT(dst []float32, mr int, a []float32, lda, pc, kb, i0, h int) {
	dst = dst[:mr*kb]
	if h == mr {
		for p := 0; p < kb; p++ {
			copy(dst[p*mr:p*mr+mr], a[(pc+p)*lda+i0:(pc+p)*lda+i0+mr])
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
// full packs a full narrow panel, the only full width that comes here.
func packBN(full packFunc, dst []float32, bw int, b []float32, ldb, pc, kb, j0, w int) {
	dst = dst[:bw*kb]
	if w == bw {
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
// Groups of sixteen or eight full columns go through ks.trans16 and
// ks.trans in blocks of eight K steps; the rest reads each source row
// contiguously and scatters with stride bw, writes that stay inside the
// panel, which is small enough to live in L1.
func packBT(ks *kernels, dst []float32, bw int, b []float32, ldb, pc, kb, j0, w int) {
	dst = dst[:bw*kb]
	p0, g := kb&^7, w&^7
	if p0 > 0 {
		j := 0
		for ; j+16 <= g; j += 16 {
			ks.trans16(p0/8, b[(j0+j)*ldb+pc:], ldb, dst[j:], bw)
		}
		if j < g {
			ks.trans(p0/8, b[(j0+j)*ldb+pc:], ldb, dst[j:], bw)
		}
	}
	// The rest: the last kb-p0 K steps of the grouped columns, all K
	// steps of the last w-g.
	first := 0
	if p0 == kb {
		first = g
	}
	for j := first; j < w; j++ {
		from := p0
		if j >= g {
			from = 0
		}
		src := b[(j0+j)*ldb+pc:]
		src = src[from:kb]
		for p, v := range src {
			dst[(from+p)*bw+j] = v
		}
	}
	if w < bw {
		for p := 0; p < kb; p++ {
			clear(dst[p*bw+w : p*bw+bw])
		}
	}
}

// copyRows16Go is the pure-Go twin of copyRows16.
func copyRows16Go(k, np int, b []float32, ldb int, dst []float32) {
	copyRowsGo(16, k, np, b, ldb, dst)
}

// copyRows32Go is the pure-Go twin of copyRows32.
func copyRows32Go(k, np int, b []float32, ldb int, dst []float32) {
	copyRowsGo(32, k, np, b, ldb, dst)
}

// copyRowsGo packs np full panels of width bw, walking B row by row.
func copyRowsGo(bw, k, np int, b []float32, ldb int, dst []float32) {
	dst = dst[:np*bw*k]
	for p := 0; p < k; p++ {
		row := b[p*ldb : p*ldb+np*bw]
		for q := 0; q < np; q++ {
			copy(dst[(q*k+p)*bw:(q*k+p)*bw+bw], row[q*bw:q*bw+bw])
		}
	}
}

// copyB8Go is the pure-Go twin of copyB8.
func copyB8Go(k int, b []float32, ldb int, dst []float32) { copyBGo(8, k, b, ldb, dst) }

// copyB16Go is the pure-Go twin of copyB16.
func copyB16Go(k int, b []float32, ldb int, dst []float32) { copyBGo(16, k, b, ldb, dst) }

// copyBGo packs one full panel of width bw from non-transposed B.
func copyBGo(bw, k int, b []float32, ldb int, dst []float32) {
	dst = dst[:bw*k]
	for p := 0; p < k; p++ {
		copy(dst[p*bw:p*bw+bw], b[p*ldb:p*ldb+bw])
	}
}

// trans8Go is the pure-Go twin of trans8.
func trans8Go(k8 int, b []float32, ldb int, dst []float32, ldd int) {
	transGo(8, k8, b, ldb, dst, ldd)
}

// trans16Go is the pure-Go twin of trans16.
func trans16Go(k8 int, b []float32, ldb int, dst []float32, ldd int) {
	transGo(16, k8, b, ldb, dst, ldd)
}

// transGo transposes rows rows of 8*k8 K steps into a panel with row
// stride ldd.
func transGo(rows, k8 int, b []float32, ldb int, dst []float32, ldd int) {
	k := 8 * k8
	if k == 0 {
		return
	}
	dst = dst[:(k-1)*ldd+rows]
	for j := 0; j < rows; j++ {
		src := b[j*ldb : j*ldb+k]
		for p, v := range src {
			dst[p*ldd+j] = v
		}
	}
}

// trans8AddGo is the pure-Go twin of trans8Add.
func trans8AddGo(k8 int, b []float32, ldb int, dst []float32, ldd int, beta float32) {
	transAddGo(8, k8, b, ldb, dst, ldd, beta)
}

// trans16AddGo is the pure-Go twin of trans16Add.
func trans16AddGo(k8 int, b []float32, ldb int, dst []float32, ldd int, beta float32) {
	transAddGo(16, k8, b, ldb, dst, ldd, beta)
}

// transAddGo is transGo adding to beta times what dst held.
func transAddGo(rows, k8 int, b []float32, ldb int, dst []float32, ldd int, beta float32) {
	k := 8 * k8
	if k == 0 {
		return
	}
	dst = dst[:(k-1)*ldd+rows]
	for j := 0; j < rows; j++ {
		src := b[j*ldb : j*ldb+k]
		for p, v := range src {
			dst[p*ldd+j] = v + beta*dst[p*ldd+j]
		}
	}
}
