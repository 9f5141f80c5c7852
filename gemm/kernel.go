package gemm

// The pure-Go twins of the assembly kernels: same arguments, same packed
// layout, same result up to rounding. They are what runs with -tags noasm,
// off amd64, and on CPUs without AVX2+FMA, and what the tests hold the
// assembly to. See kernelFunc for the contract. kernGo already stops at h,
// so the twins of kernels of one width but different heights are the same
// code.

// kern6x16Go is the pure-Go twin of kern6x16.
func kern6x16Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(16, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kern6x8Go is the pure-Go twin of kern6x8, the kernel for the last panel
// when it is at most 8 columns wide.
func kern6x8Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(8, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kern4x16Go is the pure-Go twin of kern4x16.
func kern4x16Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(16, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kern4x8Go is the pure-Go twin of kern4x8.
func kern4x8Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(8, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kern2x16Go is the pure-Go twin of kern2x16.
func kern2x16Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(16, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kern2x8Go is the pure-Go twin of kern2x8.
func kern2x8Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(8, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kernZ8x32Go is the pure-Go twin of kernZ8x32.
func kernZ8x32Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(32, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kernZ4x32Go is the pure-Go twin of kernZ4x32.
func kernZ4x32Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(32, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kernZ2x32Go is the pure-Go twin of kernZ2x32.
func kernZ2x32Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(32, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kernZ8x16Go is the pure-Go twin of kernZ8x16.
func kernZ8x16Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(16, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kernZ4x16Go is the pure-Go twin of kernZ4x16.
func kernZ4x16Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(16, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kernZ2x16Go is the pure-Go twin of kernZ2x16.
func kernZ2x16Go(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	kernGo(16, k, a, rs, cs, b, ldb, c, ldc, h, w, alpha, beta, load)
}

// kernGo walks the tile in 2×4 sub-blocks: eight scalar accumulators plus two
// A values and the B values fit the 15 float registers Go has on amd64, which
// a whole 6×16 tile would not. The packed A and B slices are re-read per
// sub-block, but they sit in L1. Unlike the assembly it skips sub-blocks past
// h and w, since scalar code pays for every lane.
func kernGo(bw, k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool) {
	b = b[:(k-1)*ldb+bw]
	for i0 := 0; i0 < h; i0 += 2 {
		// A lone last row still reads a second row, which the contract
		// guarantees is there; its results are dropped.
		for j0 := 0; j0 < w; j0 += 4 {
			c00, c01, c02, c03, c10, c11, c12, c13 := dot2x4(k, a[i0*rs:], rs, cs, b[j0:], ldb)
			store4(c[i0*ldc:], j0, w, c00, c01, c02, c03, alpha, beta, load)
			if i0+1 < h {
				store4(c[(i0+1)*ldc:], j0, w, c10, c11, c12, c13, alpha, beta, load)
			}
		}
	}
}

// dot2x4 accumulates a 2×4 block over k steps; B rows are ldb apart. It is a
// function of its own so that alpha, beta and the loop bounds of the caller
// do not hold float registers the accumulators need; and with only one B
// value live at a time the loop fits the 15 float registers of amd64, where
// loading all four up front makes the compiler spill. The two A layouts get
// their own loops so that each step costs one or two bounds checks, not six.
func dot2x4(k int, a []float32, rs, cs int, b []float32, ldb int) (c00, c01, c02, c03, c10, c11, c12, c13 float32) {
	step := func(a0, a1 float32, bv *[4]float32) {
		c00 += a0 * bv[0]
		c10 += a1 * bv[0]
		c01 += a0 * bv[1]
		c11 += a1 * bv[1]
		c02 += a0 * bv[2]
		c12 += a1 * bv[2]
		c03 += a0 * bv[3]
		c13 += a1 * bv[3]
	}
	switch {
	case cs == 1: // A in place: two rows
		r0 := a[:k]
		r1 := a[rs : rs+k]
		for p, a0 := range r0 {
			step(a0, r1[p], (*[4]float32)(b[p*ldb:p*ldb+4]))
		}
	case rs == 1: // packed A: the two values of a step are adjacent
		for p := 0; p < k; p++ {
			av := (*[2]float32)(a[p*cs : p*cs+2])
			step(av[0], av[1], (*[4]float32)(b[p*ldb:p*ldb+4]))
		}
	default:
		for p := 0; p < k; p++ {
			step(a[p*cs], a[p*cs+rs], (*[4]float32)(b[p*ldb:p*ldb+4]))
		}
	}
	return
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
