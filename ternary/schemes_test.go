package ternary

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tnn-go/tnn/checkpoint"
)

// errors returns ‖W − W_eff‖/‖W‖ and the same after the best rescaling of
// W_eff (what matters when BatchNorm follows the layer).
func relErrors(w, wq []float32) (raw, scaled float64) {
	var ww, wqwq, wwq, d float64
	for i, v := range w {
		e := float64(v - wq[i])
		d += e * e
		ww += float64(v) * float64(v)
		wqwq += float64(wq[i]) * float64(wq[i])
		wwq += float64(v) * float64(wq[i])
	}
	raw = math.Sqrt(d / ww)
	scaled = 1
	if wqwq > 0 {
		scaled = math.Sqrt(math.Max(0, ww-wwq*wwq/wqwq) / ww)
	}
	return raw, scaled
}

func fit(t *testing.T, s Scheme, k int, w []float32) (raw, scaled float64) {
	t.Helper()
	q, err := NewScheme(s, DefaultTFactor, k)
	if err != nil {
		t.Fatal(err)
	}
	wq := make([]float32, len(w))
	q.Quantize(w, wq)
	return relErrors(w, wq)
}

func TestBestTernaryIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for trial := 0; trial < 50; trial++ {
		n := 1 + r.IntN(12)
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		th, a := bestTernary(w, make([]float32, n), make([]float32, n))
		got := sqErr(w, th, a)
		// Brute force: every magnitude as the threshold, α = mean above it.
		for _, c := range w {
			c = abs32(c)
			if e := sqErr(w, c, meanAbove(w, c)); e < got-1e-9 {
				t.Fatalf("%v: threshold %g gives %g, better than the chosen %g (%g)", w, c, e, th, got)
			}
		}
	}
}

func sqErr(w []float32, th, a float32) float64 {
	var s float64
	for _, v := range w {
		var q float32
		if v >= th {
			q = a
		} else if v <= -th {
			q = -a
		}
		s += float64(v-q) * float64(v-q)
	}
	return s
}

// TestSchemesBeatPaper compares reconstruction errors on weights drawn like
// conv weights (Gaussian) and heavier-tailed ones (Laplace), for t_ex 1, 2, 4.
func TestSchemesBeatPaper(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	dists := map[string]func() float64{
		"gaussian": r.NormFloat64,
		"laplace":  func() float64 { return r.ExpFloat64() * float64(1-2*r.IntN(2)) },
	}
	for name, draw := range dists {
		w := make([]float32, 4608)
		for i := range w {
			w[i] = float32(0.05 * draw())
		}
		for _, k := range []int{1, 2, 4} {
			pRaw, pScaled := fit(t, Paper, k, w)
			for _, s := range []Scheme{Greedy, Optimal} {
				raw, scaled := fit(t, s, k, w)
				t.Logf("%s t_ex=%d %-7s raw %.4f scaled %.4f (paper %.4f, %.4f)", name, k, s, raw, scaled, pRaw, pScaled)
				if k > 1 && raw >= pRaw {
					t.Errorf("%s t_ex=%d: %s raw error %.4f not below the paper's %.4f", name, k, s, raw, pRaw)
				}
				if scaled > pScaled+1e-6 {
					t.Errorf("%s t_ex=%d: %s scale-free error %.4f above the paper's %.4f", name, k, s, scaled, pScaled)
				}
			}
		}
	}
}

func TestOptimalIsNested(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	w := make([]float32, 1000)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	q, _ := NewScheme(Optimal, DefaultTFactor, 2)
	wq := make([]float32, len(w))
	q.Quantize(w, wq)
	if !(q.Threshold[0] < q.Threshold[1]) || q.Alpha[0] <= 0 || q.Alpha[1] <= 0 {
		t.Fatalf("thresholds %v, alphas %v: not nested", q.Threshold, q.Alpha)
	}
	levels := map[float32]bool{}
	for _, v := range wq {
		levels[abs32(v)] = true
	}
	if len(levels) != 3 {
		t.Fatalf("%d magnitudes, want 3 (0, α1, α1+α2)", len(levels))
	}
	// Fitted schemes approximate W itself: straight-through factor 1.
	gw := make([]float32, 3)
	q.Backward([]float32{0.5, -2, 0}, []float32{1, 1, 1}, gw)
	if gw[0] != 1 || gw[1] != 0 || gw[2] != 1 {
		t.Fatalf("STE %v, want [1 0 1]", gw)
	}
}

func TestParseScheme(t *testing.T) {
	if s, err := ParseScheme(""); err != nil || s != Paper {
		t.Fatal(s, err)
	}
	if _, err := ParseScheme("magic"); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
}

// TestSchemesBeatPaperTrained repeats the comparison on latent weights of a
// tern_resnet20 trained on Fashion-MNIST (three epochs of the 15-epoch
// recipe; testdata/trained_tern_resnet20.safetensors holds four layers).
func TestSchemesBeatPaperTrained(t *testing.T) {
	ck, err := checkpoint.Load("testdata/trained_tern_resnet20.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Model) != 4 {
		t.Fatalf("%d tensors in the fixture, want 4", len(ck.Model))
	}
	for _, e := range ck.Model {
		w := e.T.Data
		for _, k := range []int{2, 4} {
			pRaw, pScaled := fit(t, Paper, k, w)
			for _, s := range []Scheme{Greedy, Optimal} {
				raw, scaled := fit(t, s, k, w)
				t.Logf("%s t_ex=%d %-7s raw %.4f scaled %.4f (paper %.4f, %.4f)", e.Name, k, s, raw, scaled, pRaw, pScaled)
				if raw >= pRaw || scaled > pScaled+1e-6 {
					t.Errorf("%s t_ex=%d: %s errors %.4f/%.4f, paper %.4f/%.4f", e.Name, k, s, raw, scaled, pRaw, pScaled)
				}
			}
		}
	}
}

// TestSortMagnitudes holds the radix sort of the fitted schemes to
// slices.Sort on magnitudes of every kind: zeros, subnormals, ties, huge
// values, +Inf, and lengths on both sides of the cut-over to slices.Sort.
func TestSortMagnitudes(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	for _, n := range []int{0, 1, 7, 255, 256, 257, 1000, 4096, 36864} {
		a := make([]float32, n)
		for i := range a {
			switch r.IntN(8) {
			case 0:
				a[i] = 0
			case 1:
				a[i] = math.Float32frombits(uint32(r.IntN(1 << 23))) // subnormal
			case 2:
				a[i] = float32(math.Inf(1))
			case 3:
				a[i] = float32(r.IntN(4)) // ties
			case 4:
				a[i] = float32(r.ExpFloat64() * 1e30)
			default:
				a[i] = float32(math.Abs(r.NormFloat64()) * 0.05)
			}
		}
		want := slices.Clone(a)
		slices.Sort(want)
		sortMagnitudes(a, make([]float32, n))
		for i := range want {
			if math.Float32bits(a[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: element %d = %v, want %v", n, i, a[i], want[i])
			}
		}
	}
}

func BenchmarkSortMagnitudes(b *testing.B) {
	r := rand.New(rand.NewPCG(63, 64))
	src := make([]float32, 36864)
	for i := range src {
		src[i] = float32(math.Abs(r.NormFloat64()) * 0.05)
	}
	a, tmp := make([]float32, len(src)), make([]float32, len(src))
	b.Run("radix", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			copy(a, src)
			sortMagnitudes(a, tmp)
		}
	})
	b.Run("slices.Sort", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			copy(a, src)
			slices.Sort(a)
		}
	})
}
