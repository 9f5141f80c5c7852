package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"testing"
)

const guard = 8

// lens covers the empty row, single elements, odd lengths, every remainder
// of the 8- and 32-float blocks and the CIFAR plane sizes.
var lens = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 39, 40, 47, 48, 49, 63, 64, 65, 97, 100, 127, 196, 256, 1023, 1024}

func randSlice(r *rand.Rand, n int, off float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(off + r.NormFloat64())
	}
	return s
}

// guarded returns a slice of n floats inside a buffer whose guard floats on
// both sides hold a marker, and a func that fails the test if they changed.
func guarded(t *testing.T, n int) ([]float32, func(string)) {
	buf := make([]float32, n+2*guard)
	marker := float32(math.Float32frombits(0x7fc0dead))
	for i := range buf {
		buf[i] = marker
	}
	s := buf[guard : guard+n : guard+n]
	return s, func(what string) {
		t.Helper()
		for i := 0; i < guard; i++ {
			if math.Float32bits(buf[i]) != 0x7fc0dead || math.Float32bits(buf[n+guard+i]) != 0x7fc0dead {
				t.Fatalf("%s: wrote outside its slice", what)
			}
		}
	}
}

// same reports whether a and b are bit-identical.
func same(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), twin gives %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func near(t *testing.T, what string, got float32, want, scale float64) {
	t.Helper()
	if d := math.Abs(float64(got) - want); d > 1e-5*scale+1e-6 {
		t.Fatalf("%s = %v, want %v (scale %v)", what, got, want, scale)
	}
}

func needAsm(t *testing.T) {
	if !hasAsm {
		t.Skip("assembly kernels not in use on this CPU/build")
	}
}

// layouts yields row layouts: one contiguous row, and strided rows.
func layouts(f func(rows, cols, stride int)) {
	for _, cols := range lens {
		f(1, cols, cols)
		f(3, cols, cols+5)
		f(4, cols, 2*cols+1)
	}
}

// TestTwinsAgainstFloat64 checks the twins (and so the kernels, which match
// them bit for bit) against float64 formulas.
func TestTwinsAgainstFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	layouts(func(rows, cols, stride int) {
		n := max((rows-1)*stride+cols, 0)
		x := randSlice(r, n, 3)
		dy := randSlice(r, n, 0)
		out := make([]float32, 3*rows)
		rowStatsGo(x, rows, cols, stride, out)
		g := make([]float32, 2*rows)
		gr := make([]float32, 2*rows)
		const mean, is, gm, bt = 2.5, 1.5, 1.25, -0.5
		gradStatsGo(dy, x, rows, cols, stride, mean, g)
		gradStatsReLUGo(dy, x, rows, cols, stride, mean, is, gm, bt, gr)
		for i := 0; i < rows; i++ {
			row, drow := x[i*stride:][:cols], dy[i*stride:][:cols]
			var s, sa, sd, sdx, sm, smx float64
			for j, v := range row {
				s += float64(v)
				sa += math.Abs(float64(v))
				sd += float64(drow[j])
				sdx += float64(drow[j]) * (float64(v) - mean)
				if (float64(v)-mean)*is*gm+bt > 0 {
					sm += float64(drow[j])
					smx += float64(drow[j]) * (float64(v) - mean)
				}
			}
			near(t, "S", out[3*i], s, sa)
			if cols == 0 {
				continue
			}
			m := s / float64(cols)
			var q float64
			for _, v := range row {
				q += (float64(v) - m) * (float64(v) - m)
			}
			near(t, "Q", out[3*i+1], q, q)
			near(t, "D", out[3*i+2], 0, sa)
			near(t, "Σdy", g[2*i], sd, float64(cols))
			near(t, "Σdy(x-mean)", g[2*i+1], sdx, 4*float64(cols))
			near(t, "Σd masked", gr[2*i], sm, float64(cols))
			near(t, "Σd(x-mean) masked", gr[2*i+1], smx, 4*float64(cols))
		}
	})
}

func TestKernelsMatchTwins(t *testing.T) {
	needAsm(t)
	r := rand.New(rand.NewPCG(2, 2))
	layouts(func(rows, cols, stride int) {
		n := max((rows-1)*stride+cols, 0)
		x := randSlice(r, n, 0.3)
		dy := randSlice(r, n, 0)
		if n > 0 {
			x[r.IntN(n)] = 0
			x[r.IntN(n)] = float32(math.Copysign(0, -1))
		}
		const mean, is, gm, bt, rr, mdy, k = 0.25, 1.75, -0.8, 0.1, 0.3, -0.1, 0.9

		out, check := guarded(t, 3*rows)
		asmKernels.rowStats(x, rows, cols, stride, out)
		check("rowStats")
		want := make([]float32, 3*rows)
		goKernels.rowStats(x, rows, cols, stride, want)
		same(t, "rowStats", out, want)

		for _, relu := range []bool{false, true} {
			y, check := guarded(t, n)
			yw := make([]float32, n)
			if relu {
				asmKernels.normalizeReLU(y, x, rows, cols, stride, mean, is, gm, bt)
				goKernels.normalizeReLU(yw, x, rows, cols, stride, mean, is, gm, bt)
			} else {
				asmKernels.normalize(y, x, rows, cols, stride, mean, is, gm, bt)
				goKernels.normalize(yw, x, rows, cols, stride, mean, is, gm, bt)
			}
			check("normalize")
			// Only the rows are compared: between them each buffer keeps
			// what it had.
			for i := 0; i < rows; i++ {
				same(t, "normalize", y[i*stride:][:cols], yw[i*stride:][:cols])
			}

			g, check := guarded(t, 2*rows)
			gw := make([]float32, 2*rows)
			if relu {
				asmKernels.gradStatsReLU(dy, x, rows, cols, stride, mean, is, gm, bt, g)
				goKernels.gradStatsReLU(dy, x, rows, cols, stride, mean, is, gm, bt, gw)
			} else {
				asmKernels.gradStats(dy, x, rows, cols, stride, mean, g)
				goKernels.gradStats(dy, x, rows, cols, stride, mean, gw)
			}
			check("gradStats")
			same(t, "gradStats", g, gw)

			dx, check := guarded(t, n)
			dxw := make([]float32, n)
			if relu {
				asmKernels.gradApplyReLU(dx, dy, x, rows, cols, stride, mean, rr, mdy, k, is, gm, bt)
				goKernels.gradApplyReLU(dxw, dy, x, rows, cols, stride, mean, rr, mdy, k, is, gm, bt)
			} else {
				asmKernels.gradApply(dx, dy, x, rows, cols, stride, mean, rr, mdy, k)
				goKernels.gradApply(dxw, dy, x, rows, cols, stride, mean, rr, mdy, k)
			}
			check("gradApply")
			for i := 0; i < rows; i++ {
				same(t, "gradApply", dx[i*stride:][:cols], dxw[i*stride:][:cols])
			}
		}
	})
}

func TestFlatKernelsMatchTwins(t *testing.T) {
	needAsm(t)
	r := rand.New(rand.NewPCG(3, 3))
	for _, n := range lens {
		a, b := randSlice(r, n, 0), randSlice(r, n, 0)
		if n > 2 {
			a[0] = float32(math.NaN())
			a[1] = 0
			b[1] = float32(math.Copysign(0, -1))
		}
		for name, pair := range map[string][2]func(y, a, b []float32){
			"add":          {asmKernels.add, goKernels.add},
			"addReLU":      {asmKernels.addReLU, goKernels.addReLU},
			"maskPositive": {asmKernels.maskPositive, goKernels.maskPositive},
			"relu":         {func(y, a, _ []float32) { asmKernels.relu(y, a) }, func(y, a, _ []float32) { goKernels.relu(y, a) }},
		} {
			y, check := guarded(t, n)
			pair[0](y, a, b)
			check(name)
			want := make([]float32, n)
			pair[1](want, a, b)
			same(t, name, y, want)
		}
	}
}

// TestFlatTwins checks the elementwise twins' semantics directly.
func TestFlatTwins(t *testing.T) {
	nan := float32(math.NaN())
	a := []float32{1, -2, 0.5, nan, 3}
	b := []float32{1, 1, -1, 0, -3}
	y := make([]float32, 5)
	addReLUGo(y, a, b)
	if y[0] != 2 || y[1] != 0 || y[2] != 0 || y[3] == y[3] || y[4] != 0 {
		t.Fatalf("addReLU = %v", y)
	}
	maskPositiveGo(y, []float32{5, 6, 7, 8, 9}, []float32{1, 0, nan, -1, 2})
	if y[0] != 5 || y[1] != 0 || y[2] != 0 || y[3] != 0 || y[4] != 9 {
		t.Fatalf("maskPositive = %v", y)
	}
}

// im2colRef is the definition: plane (ki,kj), element (r,j) reads
// x[r+ki-pad][j+kj-pad] or 0.
func im2colRef(col, x []float32, h, w, kh, kw, pad int) {
	for ki := 0; ki < kh; ki++ {
		for kj := 0; kj < kw; kj++ {
			for r := 0; r < h; r++ {
				for j := 0; j < w; j++ {
					sr, sc := r+ki-pad, j+kj-pad
					v := float32(0)
					if sr >= 0 && sr < h && sc >= 0 && sc < w {
						v = x[sr*w+sc]
					}
					col[((ki*kw+kj)*h+r)*w+j] = v
				}
			}
		}
	}
}

func TestIm2colSame(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, hw := range [][2]int{{1, 1}, {2, 3}, {3, 3}, {5, 7}, {7, 7}, {8, 8}, {9, 10}, {14, 14}, {16, 16}, {17, 5}, {32, 32}, {28, 28}, {4, 33}, {3, 9}, {2, 17}, {3, 25}, {2, 40}, {5, 8}, {6, 4}, {3, 33}, {3, 18}} {
		for _, k := range [][2]int{{1, 0}, {3, 1}, {5, 2}, {3, 0}, {3, 2}, {7, 3}, {1, 1}, {9, 4}, {17, 8}} {
			h, w, kk, pad := hw[0], hw[1], k[0], k[1]
			// Whole planes, and bands of rows at the top, middle and bottom.
			for _, band := range [][2]int{{0, h}, {0, (h + 1) / 2}, {h / 3, h - h/3}, {h / 2, h}, {h - 1, h}} {
				for _, ch := range []int{1, 3} {
					lo, hi := band[0], band[1]
					plane := h * w
					x := randSlice(r, ch*plane, 0)
					full := make([]float32, ch*kk*kk*plane)
					for c := 0; c < ch; c++ {
						im2colRef(full[c*kk*kk*plane:], x[c*plane:], h, w, kk, kk, pad)
					}
					// The band of each plane of the full matrix.
					n := (hi - lo) * w
					want := make([]float32, ch*kk*kk*n)
					for p := 0; p < ch*kk*kk; p++ {
						copy(want[p*n:(p+1)*n], full[p*plane+lo*w:])
					}
					got := make([]float32, len(want))
					for i := range got {
						got[i] = 42
					}
					im2colSameGo(got, x, ch, h, w, kk, kk, pad, lo, hi)
					what := fmt.Sprintf("%d×%dx%d k%d pad%d rows [%d,%d)", ch, h, w, kk, pad, lo, hi)
					same(t, "im2colSameGo "+what, got, want)
					if hi == lo {
						continue
					}
					for _, kern := range []struct {
						name string
						ok   bool
						f    func(col, x []float32, ch, h, w, kh, kw, pad, lo, hi int)
					}{
						{"im2colSame", hasAsm && im2colFits(w, kk, pad), asmKernels.im2colSame},
					} {
						if !kern.ok {
							continue
						}
						g, check := guarded(t, len(want))
						// The source is guarded too: masked loads must not need it.
						xs, _ := guarded(t, len(x))
						copy(xs, x)
						kern.f(g, xs, ch, h, w, kk, kk, pad, lo, hi)
						check(kern.name)
						same(t, kern.name+" "+what, g, want)
					}
				}
			}
		}
	}
}

func TestBoundsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"RowStats out": func() { RowStats(make([]float32, 10), 2, 5, 5, make([]float32, 5)) },
		"RowStats x":   func() { RowStats(make([]float32, 9), 2, 5, 5, make([]float32, 6)) },
		"Add":          func() { Add(make([]float32, 4), make([]float32, 3), make([]float32, 4), false) },
		"Im2colSame":   func() { Im2colSame(make([]float32, 80), make([]float32, 9), 1, 3, 3, 3, 3, 1, 0, 3) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestAssemblyIsAVX2 guards the generated file against registers that only
// AVX-512 has: avo spills into them when a kernel needs more than 16 vector
// registers, and the result would fault on AVX2-only CPUs such as Zen 3.
func TestAssemblyIsAVX2(t *testing.T) {
	src, err := os.ReadFile("vec_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[1-7])\b`).Find(src); m != nil {
		t.Fatalf("vec_amd64.s uses the AVX-512 register %s", m)
	}
}
