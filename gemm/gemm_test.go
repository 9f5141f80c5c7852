package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

const sentinel = float32(-7777.25)

// naive is the reference: the triple loop accumulated in float64, giving
// op(A)*op(B) and, element by element, Σ|a*b|, the magnitude that rounding
// errors scale with.
func naive(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int) (prod, mag []float64) {
	prod, mag = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				v := float64(at(a, transA, i, p, lda)) * float64(at(b, transB, p, j, ldb))
				s += v
				sa += math.Abs(v)
			}
			prod[i*n+j], mag[i*n+j] = s, sa
		}
	}
	return prod, mag
}

// at is element (r, c) of op(X): X[r][c], or X[c][r] when trans.
func at(x []float32, trans bool, r, c, ld int) float32 {
	if trans {
		return x[c*ld+r]
	}
	return x[r*ld+c]
}

type impl struct {
	name string
	run  func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// testSets lists every kernel set the tests run: the assembly sets this CPU
// has and the pure-Go sets, one per tile geometry, so that the blocking
// around each geometry is tested on any machine and in -tags noasm builds.
func testSets() []*kernels {
	out := append([]*kernels(nil), asmSets...)
	return append(out, goSets...)
}

func impls(t testing.TB) []impl {
	// One Workspace across every shape, as a caller keeps it, so that its
	// buffers are reused at sizes other than the ones they were grown for.
	var ws Workspace
	out := []impl{{"Sgemm", Sgemm}, {"Workspace.Sgemm", ws.Sgemm}}
	for _, ks := range testSets() {
		out = append(out, impl{ks.name, func(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			sgemmWith(ks, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}})
	}
	if len(asmSets) == 0 {
		t.Log("no assembly kernels in this build or on this CPU: testing the Go sets only")
	}
	return out
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// matrix lays out rows×cols with stride ld inside a buffer that has guard
// cells before, after and between rows, all holding sentinel, and returns
// the buffer and the offset of element (0,0).
func matrix(r *rand.Rand, rows, cols, ld, guard int) ([]float32, int) {
	buf := make([]float32, guard+rows*ld+guard)
	for i := range buf {
		buf[i] = sentinel
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			buf[guard+i*ld+j] = r.Float32()*2 - 1
		}
	}
	return buf, guard
}

type shape struct{ m, n, k int }

func testShapes() []shape {
	s := []shape{
		{1, 1, 1}, {1, 1, 7}, {1, 17, 1}, {5, 1, 3}, {6, 16, 4}, {6, 8, 1},
		{7, 17, 5}, {2, 3, 9}, {13, 49, 27}, {16, 49, 9}, {17, 9, 31},
		{12, 32, 256}, {12, 32, 257}, {11, 15, 300}, {31, 37, 41},
		{16, 196, 144}, {23, 24, 520}, {5, 1041, 3}, {241, 19, 13},
		{247, 33, 261}, {97, 101, 103}, {64, 64, 64}, {3, 200, 2},
		// Small m, long k: transposed B takes the swapped route, in
		// several chunks for the last two.
		{3, 40, 100}, {13, 49, 270}, {2, 1100, 600}, {5, 2100, 31},
		// Swapped, with the result going back through groups of
		// sixteen and eight columns.
		{16, 40, 300}, {9, 57, 400},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for len(s) < 45 {
		s = append(s, shape{1 + r.IntN(80), 1 + r.IntN(80), 1 + r.IntN(300)})
	}
	return s
}

func TestSgemm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	is := impls(t)
	for _, sh := range testShapes() {
		for combo := 0; combo < 4; combo++ {
			checkShape(t, r, is, combo&1 != 0, combo&2 != 0, sh, r.IntN(3), r.IntN(3))
		}
	}
}

// TestAliasedStrides uses leading dimensions that are multiples of 4 KiB,
// which send transposed A through its packed route and make B's rows share
// L1 sets.
func TestAliasedStrides(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	is := impls(t)
	for _, sh := range []shape{{7, 19, 40}, {13, 133, 300}, {20, 130, 29}} {
		for combo := 0; combo < 4; combo++ {
			transA, transB := combo&1 != 0, combo&2 != 0
			ac, bc := sh.k, sh.n
			if transA {
				ac = sh.m
			}
			if transB {
				bc = sh.k
			}
			checkShape(t, r, is, transA, transB, sh, 1024-ac, 1024-bc)
		}
	}
}

// checkShape runs every implementation on one shape with A and B padded by
// padA and padB columns, all alpha and beta of interest, C with guard cells
// around and between its rows, and compares with the naive product.
func checkShape(t *testing.T, r *rand.Rand, is []impl, transA, transB bool, sh shape, padA, padB int) {
	t.Helper()
	const guard = 19
	m, n, k := sh.m, sh.n, sh.k
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+padA, bc+padB, n+1+r.IntN(5)
	a, _ := matrix(r, ar, ac, lda, 0)
	b, _ := matrix(r, br, bc, ldb, 0)
	c0, coff := matrix(r, m, n, ldc, guard)
	// Slices end exactly at the last element, so any read past them
	// panics in Go code.
	a = a[:(ar-1)*lda+ac]
	b = b[:(br-1)*ldb+bc]
	prod, mag := naive(transA, transB, m, n, k, a, lda, b, ldb)
	for _, alpha := range []float32{1, -0.5} {
		for _, beta := range []float32{0, 1, 0.3} {
			want := append([]float32(nil), c0...)
			mags := make([]float64, m*n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					c := float64(c0[coff+i*ldc+j])
					v := float64(alpha) * prod[i*n+j]
					if beta != 0 {
						v += float64(beta) * c
					}
					want[coff+i*ldc+j] = float32(v)
					mags[i*n+j] = math.Abs(float64(alpha))*mag[i*n+j] + math.Abs(float64(beta)*c)
				}
			}
			for _, im := range is {
				got := append([]float32(nil), c0...)
				if beta == 0 {
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							got[coff+i*ldc+j] = float32(math.NaN())
						}
					}
				}
				im.run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, got[coff:coff+(m-1)*ldc+n], ldc)
				name := fmt.Sprintf("%s m=%d n=%d k=%d tA=%v tB=%v lda=%d ldb=%d alpha=%v beta=%v", im.name, m, n, k, transA, transB, lda, ldb, alpha, beta)
				compare(t, name, got, want, c0, coff, m, n, ldc, func(i, j int) float64 { return mags[i*n+j] }, k)
			}
		}
	}
}

func compare(t *testing.T, name string, got, want, c0 []float32, coff, m, n, ldc int, mag func(i, j int) float64, k int) {
	t.Helper()
	inside := func(idx int) (int, int, bool) {
		if idx < coff {
			return 0, 0, false
		}
		i, j := (idx-coff)/ldc, (idx-coff)%ldc
		return i, j, i < m && j < n
	}
	for idx := range got {
		i, j, in := inside(idx)
		if !in {
			if got[idx] != c0[idx] {
				t.Fatalf("%s: wrote outside C at buffer index %d (row %d col %d): %v", name, idx, i, j, got[idx])
			}
			continue
		}
		g, w := float64(got[idx]), float64(want[idx])
		// float32 rounding on each of the k products and sums, plus the
		// alpha and beta steps.
		tol := float64(k+4)*0x1p-23*mag(i, j) + 1e-30
		if math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g-w) > tol {
			t.Fatalf("%s: C[%d][%d] = %v, want %v (tol %.3g)", name, i, j, g, w, tol)
		}
	}
}

// TestKernelTwins holds each assembly kernel to its pure-Go twin on every
// tile shape, both A layouts and both store modes.
func TestKernelTwins(t *testing.T) {
	if len(asmSets) == 0 {
		t.Skip("no assembly kernels in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(5, 6))
	type pair struct {
		name         string
		mr, rows, bw int
		asm, go_     kernelFunc
	}
	var pairs []pair
	for _, ks := range asmSets {
		for c, rows := range ks.heights {
			pairs = append(pairs,
				pair{fmt.Sprintf("%s/%dx%d", ks.name, rows, ks.nr), ks.mr, rows, ks.nr, ks.wide[c], ks.twin.wide[c]},
				pair{fmt.Sprintf("%s/%dx%d", ks.name, rows, ks.nr/2), ks.mr, rows, ks.nr / 2, ks.narrow[c], ks.twin.narrow[c]})
		}
	}
	for _, pr := range pairs {
		mr := pr.mr
		for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 9, 27, 64, 131} {
			for _, packed := range []bool{true, false} {
				rs, cs := 1, mr
				alen := mr * k
				if !packed {
					rs, cs = k+3, 1
					alen = (pr.rows-1)*rs + k
				}
				a := randSlice(r, alen)
				// Packed panels have ldb = bw; B read in place is wider.
				ldb := pr.bw
				if !packed {
					ldb += 5
				}
				b := randSlice(r, (k-1)*ldb+pr.bw)
				for h := 1; h <= pr.rows; h++ {
					for w := 1; w <= pr.bw; w++ {
						for _, load := range []bool{false, true} {
							ldc := pr.bw + 3
							c0 := randSlice(r, pr.rows*ldc+5)
							for i := range c0 {
								if i%ldc >= w || i/ldc >= h {
									c0[i] = sentinel
								}
							}
							ca := append([]float32(nil), c0...)
							cg := append([]float32(nil), c0...)
							pr.asm(k, a, rs, cs, b, ldb, ca, ldc, h, w, -0.5, 0.3, load)
							pr.go_(k, a, rs, cs, b, ldb, cg, ldc, h, w, -0.5, 0.3, load)
							for i := range ca {
								d := math.Abs(float64(ca[i] - cg[i]))
								if d > float64(k+4)*0x1p-23*float64(k) || (c0[i] == sentinel && (ca[i] != sentinel || cg[i] != sentinel)) {
									t.Fatalf("%s k=%d packed=%v h=%d w=%d load=%v: index %d asm %v go %v (was %v)",
										pr.name, k, packed, h, w, load, i, ca[i], cg[i], c0[i])
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestBetaZeroIgnoresNaN(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, im := range impls(t) {
		for _, sh := range []shape{{6, 16, 8}, {7, 19, 300}, {1, 1, 1}} {
			a := randSlice(r, sh.m*sh.k)
			b := randSlice(r, sh.k*sh.n)
			c := make([]float32, sh.m*sh.n)
			for i := range c {
				c[i] = float32(math.NaN())
			}
			im.run(false, false, sh.m, sh.n, sh.k, 1, a, sh.k, b, sh.n, 0, c, sh.n)
			for i, v := range c {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s %v: C[%d] = %v", im.name, sh, i, v)
				}
			}
		}
		// k == 0 and alpha == 0 only scale C, and beta == 0 still clears it.
		c := []float32{float32(math.NaN()), 2}
		im.run(false, false, 1, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
		if c[0] != 0 || c[1] != 0 {
			t.Fatalf("%s: k=0 beta=0 gave %v", im.name, c)
		}
		c = []float32{4, 2}
		im.run(false, false, 1, 2, 3, 0, make([]float32, 3), 3, make([]float32, 6), 2, 0.5, c, 2)
		if c[0] != 2 || c[1] != 1 {
			t.Fatalf("%s: alpha=0 beta=0.5 gave %v", im.name, c)
		}
	}
}

func TestShortSlicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short B")
		}
	}()
	Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 15), 4, 0, make([]float32, 16), 4)
}

// TestConcurrent runs many products at once on distinct C and expects each
// to match the same product run alone, bit for bit.
func TestConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	shapes := []shape{{16, 49, 27}, {32, 64, 300}, {7, 200, 19}, {64, 33, 144}}
	type job struct {
		sh           shape
		tA, tB       bool
		a, b, c, ref []float32
	}
	var jobs []job
	for i := 0; i < 24; i++ {
		sh := shapes[i%len(shapes)]
		j := job{sh: sh, tA: i%3 == 0, tB: i%5 == 0}
		j.a = randSlice(r, sh.m*sh.k)
		j.b = randSlice(r, sh.k*sh.n)
		j.ref = make([]float32, sh.m*sh.n)
		j.c = make([]float32, sh.m*sh.n)
		jobs = append(jobs, j)
	}
	lds := func(j *job) (int, int) {
		lda, ldb := j.sh.k, j.sh.n
		if j.tA {
			lda = j.sh.m
		}
		if j.tB {
			ldb = j.sh.k
		}
		return lda, ldb
	}
	for i := range jobs {
		j := &jobs[i]
		lda, ldb := lds(j)
		Sgemm(j.tA, j.tB, j.sh.m, j.sh.n, j.sh.k, 1, j.a, lda, j.b, ldb, 0, j.ref, j.sh.n)
	}
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func(j *job) {
			defer wg.Done()
			lda, ldb := lds(j)
			for rep := 0; rep < 5; rep++ {
				Sgemm(j.tA, j.tB, j.sh.m, j.sh.n, j.sh.k, 1, j.a, lda, j.b, ldb, 0, j.c, j.sh.n)
			}
		}(&jobs[i])
	}
	wg.Wait()
	for i := range jobs {
		for x := range jobs[i].c {
			if jobs[i].c[x] != jobs[i].ref[x] {
				t.Fatalf("job %d differs at %d: %v vs %v", i, x, jobs[i].c[x], jobs[i].ref[x])
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items on purpose under the race detector")
	}
	r := rand.New(rand.NewPCG(11, 12))
	m, n, k := 40, 300, 600
	a := randSlice(r, m*k)
	b := randSlice(r, k*n)
	c := make([]float32, m*n)
	for _, tr := range [][2]bool{{false, false}, {true, true}} {
		lda, ldb := k, n
		if tr[0] {
			lda, ldb = m, k
		}
		Sgemm(tr[0], tr[1], m, n, k, 1, a, lda, b, ldb, 0, c, n)
		allocs := testing.AllocsPerRun(20, func() {
			Sgemm(tr[0], tr[1], m, n, k, 1, a, lda, b, ldb, 0.5, c, n)
		})
		if allocs != 0 {
			t.Fatalf("trans=%v: %v allocs per call", tr, allocs)
		}
		var ws Workspace
		ws.Sgemm(tr[0], tr[1], m, n, k, 1, a, lda, b, ldb, 0, c, n)
		allocs = testing.AllocsPerRun(20, func() {
			ws.Sgemm(tr[0], tr[1], m, n, k, 1, a, lda, b, ldb, 0.5, c, n)
		})
		if allocs != 0 {
			t.Fatalf("Workspace, trans=%v: %v allocs per call", tr, allocs)
		}
	}
}

// TestPackTwins holds the assembly packing routines to their Go twins, and
// the Go twins to the layout they promise.
func TestPackTwins(t *testing.T) {
	if len(asmSets) == 0 {
		t.Skip("no assembly kernels in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(13, 14))
	type pair struct {
		name     string
		bw       int // panel width
		rows     int // source rows of a transposition, 0 for a copy
		asm, go_ packFunc
	}
	var pairs []pair
	for _, ks := range asmSets {
		pairs = append(pairs, pair{fmt.Sprintf("%s/copy%d", ks.name, ks.nr/2), ks.nr / 2, 0, ks.copyNarrow, ks.twin.copyNarrow})
		// The transpositions write eight or sixteen columns of a panel
		// of any width.
		for _, ldd := range []int{16, 32, 19} {
			for _, tr := range []struct {
				rows     int
				asm, twn transFunc
			}{{8, ks.trans, ks.twin.trans}, {16, ks.trans16, ks.twin.trans16}} {
				pairs = append(pairs, pair{fmt.Sprintf("%s/trans%d/ldd=%d", ks.name, tr.rows, ldd), ldd, tr.rows,
					func(k int, b []float32, ldb int, dst []float32) { tr.asm(k, b, ldb, dst, ldd) },
					func(k int, b []float32, ldb int, dst []float32) { tr.twn(k, b, ldb, dst, ldd) }})
			}
			// beta = 0 makes the accumulating forms plain
			// transpositions on this test's finite data; TestTransAdd
			// checks the sums.
			for _, tr := range []struct {
				rows     int
				asm, twn transAddFunc
			}{{8, ks.transAdd, ks.twin.transAdd}, {16, ks.transAdd16, ks.twin.transAdd16}} {
				pairs = append(pairs, pair{fmt.Sprintf("%s/trans%dAdd/ldd=%d", ks.name, tr.rows, ldd), ldd, tr.rows,
					func(k int, b []float32, ldb int, dst []float32) { tr.asm(k, b, ldb, dst, ldd, 0) },
					func(k int, b []float32, ldb int, dst []float32) { tr.twn(k, b, ldb, dst, ldd, 0) }})
			}
		}
	}
	for _, pr := range pairs {
		trans := pr.rows > 0
		for _, k := range []int{0, 1, 2, 3, 4, 5, 7, 9, 33} {
			steps, rows, width := k, k, pr.bw
			if trans {
				steps = 8 * k
				rows, width = pr.rows, steps // source rows are panel columns
			}
			ld := width + r.IntN(5)
			src := randSlice(r, max(0, (rows-1)*ld+width))
			da := make([]float32, pr.bw*steps+7)
			dg := make([]float32, len(da))
			for i := range da {
				da[i], dg[i] = sentinel, sentinel
			}
			pr.asm(k, src, ld, da[:pr.bw*steps])
			pr.go_(k, src, ld, dg[:pr.bw*steps])
			for i := range da {
				if da[i] != dg[i] {
					t.Fatalf("%s k=%d ld=%d: index %d asm %v go %v", pr.name, k, ld, i, da[i], dg[i])
				}
			}
			for p := 0; p < steps; p++ {
				for j := 0; j < pr.bw; j++ {
					got := dg[p*pr.bw+j]
					if trans && j >= pr.rows {
						if got != sentinel {
							t.Fatalf("%s k=%d: Go twin wrote p=%d j=%d", pr.name, k, p, j)
						}
						continue
					}
					if want := at(src, trans, p, j, ld); got != want {
						t.Fatalf("%s k=%d: Go twin wrong at p=%d j=%d", pr.name, k, p, j)
					}
				}
			}
		}
	}
}

// TestTransAdd holds the accumulating transpositions to the sums they
// promise, and checks that they stay inside their columns.
func TestTransAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, ks := range testSets() {
		for _, tr := range []struct {
			rows int
			f    transAddFunc
		}{{8, ks.transAdd}, {16, ks.transAdd16}} {
			for _, k8 := range []int{1, 2, 5} {
				const ldb, ldd = 45, 19
				rows := tr.rows
				b := randSlice(r, (rows-1)*ldb+8*k8)
				d0 := randSlice(r, (8*k8-1)*ldd+rows+3)
				for i := range d0 {
					if i%ldd >= rows || i >= (8*k8-1)*ldd+rows {
						d0[i] = sentinel
					}
				}
				d := append([]float32(nil), d0...)
				tr.f(k8, b, ldb, d[:(8*k8-1)*ldd+rows], ldd, -0.75)
				for i := range d {
					p, j := i/ldd, i%ldd
					if d0[i] == sentinel {
						if d[i] != sentinel {
							t.Fatalf("%s rows=%d k8=%d: wrote index %d", ks.name, rows, k8, i)
						}
						continue
					}
					want := b[j*ldb+p] - 0.75*d0[i]
					if math.Abs(float64(d[i]-want)) > 1e-6 {
						t.Fatalf("%s rows=%d k8=%d: dst[%d][%d] = %v, want %v", ks.name, rows, k8, p, j, d[i], want)
					}
				}
			}
		}
	}
}

func TestCopyRowsTwin(t *testing.T) {
	if len(asmSets) == 0 {
		t.Skip("no assembly kernels in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(15, 16))
	for _, ks := range asmSets {
		nr := ks.nr
		for _, k := range []int{0, 1, 2, 5, 17} {
			for _, np := range []int{0, 1, 2, 3, 7} {
				ld := np*nr + r.IntN(5)
				src := randSlice(r, max(0, (k-1)*ld+np*nr))
				da := make([]float32, np*nr*k+9)
				dg := make([]float32, len(da))
				for i := range da {
					da[i], dg[i] = sentinel, sentinel
				}
				ks.copyRows(k, np, src, ld, da[:np*nr*k])
				ks.twin.copyRows(k, np, src, ld, dg[:np*nr*k])
				for i := range da {
					if da[i] != dg[i] {
						t.Fatalf("%s k=%d np=%d: index %d asm %v go %v", ks.name, k, np, i, da[i], dg[i])
					}
				}
				for q := 0; q < np; q++ {
					for p := 0; p < k; p++ {
						for j := 0; j < nr; j++ {
							if dg[(q*k+p)*nr+j] != src[p*ld+q*nr+j] {
								t.Fatalf("%s k=%d np=%d: Go twin wrong at q=%d p=%d j=%d", ks.name, k, np, q, p, j)
							}
						}
					}
				}
			}
		}
	}
}
