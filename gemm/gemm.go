// Package gemm is the float32 matrix product under every convolution and
// linear layer. All matrices are row-major.
package gemm

// Sgemm computes C = alpha*op(A)*op(B) + beta*C where op(A) is m×k, op(B) is
// k×n and C is m×n, all row-major with leading dimensions lda, ldb, ldc.
// op(X) is X, or Xᵀ when the matching trans flag is set (then A is stored k×m,
// B n×k). Single-threaded: callers parallelise over independent products.
// With beta == 0, C is overwritten without being read (NaNs in C do not leak).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	scaleC(m, n, beta, c, ldc)
	if k == 0 || alpha == 0 {
		return
	}
	sgemmGeneric(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
}

func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// sgemmGeneric accumulates alpha*op(A)*op(B) into C in plain Go.
func sgemmGeneric(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			if !transB {
				brow := b[p*ldb : p*ldb+n]
				for j, bv := range brow {
					crow[j] += av * bv
				}
			} else {
				for j := 0; j < n; j++ {
					crow[j] += av * b[j*ldb+p]
				}
			}
		}
	}
}
