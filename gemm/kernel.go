package gemm

// kern6x16Go is the pure-Go twin of the assembly kern6x16: same arguments,
// same packed layout, same result up to rounding. It is what runs with
// -tags noasm, off amd64, and on CPUs without AVX2+FMA, and what the tests
// hold the assembly to. See kernelFunc for the contract.
func kern6x16Go(k int, a []float32, rs, cs int, b []float32, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(nr, k, a, rs, cs, b, c, ldc, h, w, alpha, beta, load)
}

// kern6x8Go is the pure-Go twin of kern6x8, the kernel for the last panel
// when it is at most 8 columns wide.
func kern6x8Go(k int, a []float32, rs, cs int, b []float32, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(nrHalf, k, a, rs, cs, b, c, ldc, h, w, alpha, beta, load)
}

// kernGo walks the tile in 2×4 sub-blocks: eight scalar accumulators plus two
// A values and the B values fit the 15 float registers Go has on amd64, which
// a whole 6×16 tile would not. The packed A and B slices are re-read per
// sub-block, but they sit in L1. Unlike the assembly it skips sub-blocks past
// h and w, since scalar code pays for every lane.
func kernGo(bw, k int, a []float32, rs, cs int, b []float32, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	b = b[:bw*k]
	for i0 := 0; i0 < h; i0 += 2 {
		// A lone last row still reads a second row, which the contract
		// guarantees is there; its results are dropped.
		for j0 := 0; j0 < w; j0 += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13 float32
			ia := i0 * rs
			for ib := j0; ib < len(b); ib += bw {
				a0 := a[ia]
				a1 := a[ia+rs]
				bb := b[ib : ib+4 : ib+4]
				b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
				c00 += a0 * b0
				c01 += a0 * b1
				c02 += a0 * b2
				c03 += a0 * b3
				c10 += a1 * b0
				c11 += a1 * b1
				c12 += a1 * b2
				c13 += a1 * b3
				ia += cs
			}
			store4(c[i0*ldc:], j0, w, c00, c01, c02, c03, alpha, beta, load)
			if i0+1 < h {
				store4(c[(i0+1)*ldc:], j0, w, c10, c11, c12, c13, alpha, beta, load)
			}
		}
	}
}

// store4 writes the columns j0..j0+3 of one row that fall below w.
func store4(row []float32, j0, w int, v0, v1, v2, v3, alpha, beta float32, load bool) {
	if j0+4 <= w {
		r := row[j0 : j0+4 : j0+4]
		if load {
			r[0] = alpha*v0 + beta*r[0]
			r[1] = alpha*v1 + beta*r[1]
			r[2] = alpha*v2 + beta*r[2]
			r[3] = alpha*v3 + beta*r[3]
		} else {
			r[0] = alpha * v0
			r[1] = alpha * v1
			r[2] = alpha * v2
			r[3] = alpha * v3
		}
		return
	}
	vs := [4]float32{v0, v1, v2, v3}
	for j := j0; j < w; j++ {
		v := alpha * vs[j-j0]
		if load {
			v += beta * row[j]
		}
		row[j] = v
	}
}
