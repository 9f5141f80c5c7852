// Package gemm is the float32 matrix product under every convolution and
// linear layer. All matrices are row-major.
//
// The product is blocked the way BLIS does it: op(B) comes in panels of nr
// columns that stay in L1 while a micro-kernel sweeps down mr-row slices of
// op(A) that stay in L2, K in blocks of at most 256. Unlike BLIS, A is read in
// place (the kernel takes a row and a K stride, so either storage order
// works) and so is non-transposed B when m is small; only ragged edges, and
// B for larger m, are packed. A product with transposed B and small m is
// computed transposed, so that B need not be transposed at all. Ragged tiles
// use shorter kernels, a half-width kernel and masked stores rather than
// scalar code.
//
// Kernel sets. On amd64 the kernels and the packing are assembly generated
// by _generate (avo), chosen at start-up from what the CPU and OS support:
//
//	avx512  8×32 tiles in zmm registers (AVX-512F), about twice as fast
//	avx2    6×16 tiles in ymm registers (AVX2 and FMA)
//	go      pure Go, about a tenth of avx2; the only set off amd64 or
//	        with -tags noasm
//
// The environment variable TNN_GEMM=avx2 (or go) forces a slower set, for
// comparing speed or results across instruction sets; a name this machine
// cannot run is ignored. SetKernels does the same from code. Sets differ in
// summation order, so results may differ in the last bits between them.
// Every assembly routine has a pure-Go twin with the same arguments and
// layouts, which the tests hold it to.
package gemm

//go:generate go run -C _generate . -out ../kernel_amd64.s -stubs ../kernel_amd64_stubs.go -pkg gemm

import (
	"fmt"
	"runtime"
)

// Cache blocks, shared by every kernel set (see kernels for the register
// tiles). kc*nr*4 bytes of B per panel stay in L1 next to the A slice and C;
// mcMax*kc*4 bytes of A sit comfortably in a 2 MiB L2 next to a
// ncMax*kc*4 block of packed B.
const (
	mcMax = 240 // a multiple of every kernel set's mr
	ncMax = 1024

	// swapMaxM is the largest m for which a product with transposed B is
	// computed transposed (see swapped), in chunks of swapChunk columns.
	swapMaxM  = 128
	swapChunk = 1024
)

// kernelFunc updates one tile of C:
//
//	C[i][j] = alpha*Σ_p A[i*rs+p*cs]*B[p*ldb+j] + beta*C[i*ldc+j]   (i < h, j < w)
//
// C is not read when load is false. a must be readable for all the kernel's
// rows and b for its full panel width bw: rows and columns past h and w are
// computed but never stored. B is a packed panel (ldb = bw) or, for small m,
// non-transposed B read in place; A is in place or a packed slice (rs = 1,
// cs = mr).
type kernelFunc func(k int, a []float32, rs, cs int, b []float32, ldb int, c []float32, ldc, h, w int, alpha, beta float32, load bool)

// packFunc packs k K steps of one full panel of non-transposed B; see
// copyBGo.
type packFunc func(k int, b []float32, ldb int, dst []float32)

// transFunc packs 8*k8 K steps of eight (or sixteen) rows of transposed B
// into as many columns of a panel with row stride ldd; see trans8Go.
// transAddFunc adds the transposed block to beta times what dst held; see
// trans8AddGo.
type (
	transFunc    func(k8 int, b []float32, ldb int, dst []float32, ldd int)
	transAddFunc func(k8 int, b []float32, ldb int, dst []float32, ldd int, beta float32)
)

// kernels is one implementation of the inner loops with its register tile.
// wide[r] handles panels of nr columns, narrow[r] the last panel
// when it has at most nr/2 columns, which saves half the work for widths
// such as 49 = 3*16+1; r picks the kernel height heights[r] for the rows
// left (see rowClass), so that the last 4 rows of m = 16 do not cost as much
// as 6. The pack functions fill full panels from non-transposed (copy) or
// transposed (trans) B: copyRows all the full wide panels of a block at
// once, the others one panel of the matching width. Ragged panels are packed
// in Go, but for their groups of eight full columns of transposed B.
type kernels struct {
	name    string
	mr, nr  int    // tile rows (heights[0]) and wide panel columns
	heights [3]int // decreasing
	kc      int    // largest K block

	// inplaceMaxM is the largest m for which non-transposed B is read in
	// place rather than packed: reading in place wins while few row tiles
	// reuse each panel, even when B's stride is a multiple of 4 KiB and
	// its rows fight over L1 sets; beyond that the one-off copy pays.
	inplaceMaxM int

	wide, narrow [3]kernelFunc
	copyRows     func(k, np int, b []float32, ldb int, dst []float32)
	copyNarrow   packFunc
	trans        transFunc // 8 rows
	trans16      transFunc // 16 rows
	transAdd     transAddFunc
	transAdd16   transAddFunc

	// twin is the pure-Go set with the same tile and layouts, which the
	// tests hold an assembly set to; nil for a Go set.
	twin *kernels
}

// goKernels is the pure-Go set, with the tile of the AVX2 kernels, which
// runs where no assembly does.
var goKernels = kernels{
	name: "go", mr: 6, nr: 16, heights: [3]int{6, 4, 2}, kc: 256, inplaceMaxM: 128,
	wide:     [3]kernelFunc{kern6x16Go, kern4x16Go, kern2x16Go},
	narrow:   [3]kernelFunc{kern6x8Go, kern4x8Go, kern2x8Go},
	copyRows: copyRows16Go, copyNarrow: copyB8Go, trans: trans8Go, trans16: trans16Go, transAdd: trans8AddGo, transAdd16: trans16AddGo,
}

// goKernels512 is the pure-Go twin of the AVX-512 set: same tiles, same
// blocking, same layouts. Only tests run it, on every machine, so that the
// blocking around the 8×32 tile is checked even where no AVX-512 is.
var goKernels512 = kernels{
	name: "go-avx512", mr: 8, nr: 32, heights: [3]int{8, 4, 2}, kc: 256, inplaceMaxM: 128,
	wide:     [3]kernelFunc{kernZ8x32Go, kernZ4x32Go, kernZ2x32Go},
	narrow:   [3]kernelFunc{kernZ8x16Go, kernZ4x16Go, kernZ2x16Go},
	copyRows: copyRows32Go, copyNarrow: copyB16Go, trans: trans8Go, trans16: trans16Go, transAdd: trans8AddGo, transAdd16: trans16AddGo,
}

// goSets are the pure-Go sets, one per tile geometry.
var goSets = []*kernels{&goKernels, &goKernels512}

// rowClass indexes ks.wide and ks.narrow: the shortest kernel that covers h
// rows.
func (ks *kernels) rowClass(h int) int {
	switch {
	case h <= ks.heights[2]:
		return 2
	case h <= ks.heights[1]:
		return 1
	}
	return 0
}

// workspace holds the packing buffers of one call (at most about 1.8 MiB).
type workspace struct {
	a, b []float32
	t    []float32 // transposed result, see swapped
}

// freeWS recycles workspaces so that steady-state calls allocate nothing while
// concurrent calls never share one. A sync.Pool would be emptied at every GC,
// and a training step allocates enough to make that frequent, so this keeps
// them in a bounded channel instead: enough for every P to have a call in
// flight, with a margin; any surplus is left to the collector.
var freeWS = make(chan *workspace, 2*runtime.GOMAXPROCS(0)+4)

func getWS() *workspace {
	select {
	case ws := <-freeWS:
		return ws
	default:
		return new(workspace)
	}
}

func putWS(ws *workspace) {
	select {
	case freeWS <- ws:
	default:
	}
}

func (ws *workspace) reserve(na, nb int) {
	if cap(ws.a) < na {
		ws.a = make([]float32, na)
	}
	ws.a = ws.a[:cap(ws.a)]
	if cap(ws.b) < nb {
		ws.b = make([]float32, nb)
	}
	ws.b = ws.b[:cap(ws.b)]
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C where op(A) is m×k, op(B) is
// k×n and C is m×n, all row-major with leading dimensions lda, ldb, ldc.
// op(X) is X, or Xᵀ when the matching trans flag is set (then A is stored k×m,
// B n×k). Single-threaded: callers parallelise over independent products.
// With beta == 0, C is overwritten without being read (NaNs in C do not leak).
// Safe for concurrent use on distinct C.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmWith(active.Load(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Workspace holds the packing buffers of one caller, who then runs products
// through its Sgemm without the shared free list. The list costs two channel
// operations per call, which callers issuing thousands of small products a
// second (Winograd's 36 per group of tiles) measured at 2% of a training
// step, spinning on the channel's lock when two cores meet there.
// A Workspace must not be used by two goroutines at once; the zero value is
// ready to use.
type Workspace struct{ ws workspace }

// Sgemm is the package's Sgemm with w's buffers.
func (w *Workspace) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmIn(active.Load(), &w.ws, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func sgemmWith(ks *kernels, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmIn(ks, nil, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmIn runs the product in ws, or in a workspace of the free list when
// ws is nil.
func sgemmIn(ks *kernels, ws *workspace, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	// The kernels index with raw offsets (the assembly one without bounds
	// checks), so a short slice must fail here rather than read past it.
	checkMatrix("c", c, m, n, ldc)
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if transA {
		checkMatrix("a", a, k, m, lda)
	} else {
		checkMatrix("a", a, m, k, lda)
	}
	if transB {
		checkMatrix("b", b, n, k, ldb)
	} else {
		checkMatrix("b", b, k, n, ldb)
	}
	if ws == nil {
		ws = getWS()
		defer putWS(ws)
	}
	// Swapping trades transposing n×k of B for transposing m×k of A plus
	// the m×n result, at about twice the cost per element.
	if transB && m <= swapMaxM && 2*m*(n+k) <= n*k {
		swapped(ks, ws, transA, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	} else {
		blocked(ks, ws, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// swapped computes C = alpha*op(A)*Bᵀ + beta*C for transposed B and small m
// as Cᵀ = B*op(A)ᵀ. The direct route would transpose all n×k of B into
// panels, a cost per element that only m/6 row tiles share; swapped, B is
// read in place as the A side, only the small op(A) is packed, and the
// m×n result goes through a transposed copy, cheap next to the m*n*k product.
// n is taken in chunks so the scratch stays bounded.
func swapped(ks *kernels, ws *workspace, transA bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	chunk := split(n, swapChunk, ks.mr)
	if cap(ws.t) < chunk*m {
		ws.t = make([]float32, chunk*m)
	}
	t := ws.t[:chunk*m]
	for j0 := 0; j0 < n; j0 += chunk {
		nn := min(chunk, n-j0)
		blocked(ks, ws, false, !transA, nn, m, k, alpha, b[j0*ldb:], ldb, a, lda, 0, t, m)
		addTransposed(ks, m, nn, t, m, beta, c[j0:], ldc)
	}
}

// addTransposed sets C = Tᵀ + beta*C for C m×n, T n×m. Each group of
// sixteen or eight columns of C is as many rows of T, transposed eight rows
// of C at a time by the trans routines (beta = 0: C is not read) or their
// accumulating forms; only the ragged rest goes element by element.
func addTransposed(ks *kernels, m, n int, t []float32, ldt int, beta float32, c []float32, ldc int) {
	m8, n8 := m&^7, n&^7
	if m8 > 0 {
		for j := 0; j < n8; {
			switch {
			case j+16 <= n8 && beta == 0:
				ks.trans16(m8/8, t[j*ldt:], ldt, c[j:], ldc)
				j += 16
			case j+16 <= n8:
				ks.transAdd16(m8/8, t[j*ldt:], ldt, c[j:], ldc, beta)
				j += 16
			case beta == 0:
				ks.trans(m8/8, t[j*ldt:], ldt, c[j:], ldc)
				j += 8
			default:
				ks.transAdd(m8/8, t[j*ldt:], ldt, c[j:], ldc, beta)
				j += 8
			}
		}
	}
	for i := 0; i < m; i++ {
		from := n8
		if i >= m8 {
			from = 0
		}
		if from == n {
			continue
		}
		row := c[i*ldc+from : i*ldc+n]
		col := t[from*ldt+i:]
		if beta == 0 {
			for j := range row {
				row[j] = col[j*ldt]
			}
			continue
		}
		for j := range row {
			row[j] = col[j*ldt] + beta*row[j]
		}
	}
}

func checkMatrix(name string, x []float32, rows, cols, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("gemm: ld%s=%d < %d columns", name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(x) < need {
		panic(fmt.Sprintf("gemm: len(%s)=%d < %d needed for %d×%d with stride %d", name, len(x), need, rows, cols, ld))
	}
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

// split divides total into the fewest blocks of at most limit, of near-equal
// size rounded up to a multiple of unit, so that K = 300 runs as 152+148
// rather than 256+44.
func split(total, limit, unit int) int {
	nb := (total + limit - 1) / limit
	size := (total + nb - 1) / nb
	return (size + unit - 1) / unit * unit
}

func blocked(ks *kernels, ws *workspace, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mr, nr := ks.mr, ks.nr
	kcb := split(k, ks.kc, 1)
	mcb := split(m, mcMax, mr)
	ncb := split(n, ncMax, nr)
	// Packing costs a pass over A per column block, paid back only when
	// enough panels of B reuse each slice.
	packA := transA && n >= 8*nr && crowdsL1(lda, kcb)
	na := mr * kcb
	if packA {
		na = mcb * kcb
	}
	ws.reserve(na, ncb*kcb)

	inplaceB := !transB && m <= ks.inplaceMaxM
	for jc := 0; jc < n; jc += ncb {
		nb := min(ncb, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kb := min(kcb, k-pc)
			// Only the first K block sees the caller's beta; later ones
			// accumulate onto what it wrote.
			be, load := beta, beta != 0
			if pc > 0 {
				be, load = 1, true
			}
			for ic := 0; ic < m; ic += mcb {
				mb := min(mcb, m-ic)
				// A is read in place, whichever way it is stored: the
				// kernel takes a row and a K stride. Only a ragged last
				// slice needs a zero-padded copy, since the kernel reads
				// all mr rows; and transposed A whose K steps would crowd
				// a few L1 sets is packed whole.
				if packA {
					for ir := 0; ir < mb; ir += mr {
						packAT(ws.a[ir*kb:(ir+mr)*kb], mr, a, lda, pc, kb, ic+ir, min(mr, mb-ir))
					}
				} else if h := mb % mr; h != 0 {
					if transA {
						packAT(ws.a[:mr*kb], mr, a, lda, pc, kb, ic+mb-h, h)
					} else {
						packAN(ws.a[:mr*kb], mr, a, lda, pc, kb, ic+mb-h, h)
					}
				}
				// B is packed during the first sweep over A: transposed B
				// panel by panel just before use, so each is still in L1;
				// non-transposed B row by row up front (see copyRows), or
				// not at all when so few rows of A will use it that the
				// copy would cost more than reading B in place.
				fullB := 0
				if ic == 0 && !transB && !inplaceB {
					fullB = nb / nr * nr
					ks.copyRows(kb, fullB/nr, b[pc*ldb+jc:], ldb, ws.b[:fullB*kb])
				}
				for jr := 0; jr < nb; jr += nr {
					w := min(nr, nb-jr)
					kern, bw := &ks.wide, nr
					if w <= nr/2 {
						kern, bw = &ks.narrow, nr/2
					}
					bp, bs := ws.b[jr*kb:jr*kb+bw*kb], bw
					switch {
					case inplaceB && w == nr:
						bp, bs = b[pc*ldb+jc+jr:], ldb
					case ic > 0:
					case transB:
						packBT(ks, bp, bw, b, ldb, pc, kb, jc+jr, w)
					case inplaceB || jr >= fullB:
						packBN(ks.copyNarrow, bp, bw, b, ldb, pc, kb, jc+jr, w)
					}
					for ir := 0; ir < mb; ir += mr {
						h := min(mr, mb-ir)
						ap, rs, cs := ws.a[:mr*kb], 1, mr
						switch {
						case packA:
							ap = ws.a[ir*kb : (ir+mr)*kb]
						case h < mr:
						case transA:
							ap, rs, cs = a[pc*lda+ic+ir:], 1, lda
						default:
							ap, rs, cs = a[(ic+ir)*lda+pc:], lda, 1
						}
						kern[ks.rowClass(h)](kb, ap, rs, cs, bp, bs, c[(ic+ir)*ldc+jc+jr:], ldc, h, w, alpha, be, load)
					}
				}
			}
		}
	}
}

// crowdsL1 reports whether rows floats apart by ld, one cache line each,
// would pile more lines into some set of a 64-set, 12-way L1 than it holds,
// so that a slice of A read in place would not survive between the panels of
// B that reuse it. Strides that are multiples of 4 KiB are the worst case:
// every row lands in the same set.
func crowdsL1(ld, rows int) bool {
	const sets, ways, line = 64, 12, 16 // line in floats
	if ld%line != 0 {
		return false // rows drift across lines and sets
	}
	step := ld / line % sets
	g := sets
	for step != 0 {
		g, step = step, g%step
	}
	return rows/(sets/g) > ways
}
