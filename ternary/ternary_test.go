package ternary

import (
	"errors"
	"math"
	"testing"
)

func near(a, b float32) bool { return math.Abs(float64(a-b)) <= 1e-6 }

func checkSlice(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if !near(got[i], want[i]) {
			t.Fatalf("%s[%d] = %g, want %g (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

// max|W| = 1, so th = fl32(0.05) and ±0.05 sit exactly on the threshold:
// both are kept, 0.049 is not. α = mean(1, .05, .05, .5, .2) = 0.36.
func TestTernarizeByHand(t *testing.T) {
	w := []float32{1.0, 0.05, -0.05, 0.049, -0.5, 0.2, 0}
	out := make([]float32, len(w))
	alpha, th := Ternarize(w, out, 0.05)
	if th != float32(0.05) {
		t.Fatalf("threshold %g", th)
	}
	if !near(alpha, 0.36) {
		t.Fatalf("alpha %g, want 0.36", alpha)
	}
	checkSlice(t, "Wt", out, []float32{0.36, 0.36, -0.36, 0, -0.36, 0.36, 0})

	q, err := New(0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	wq := make([]float32, len(w))
	q.Quantize(w, wq)
	checkSlice(t, "Quantize", wq, out)
	if q.Sparsity(w) != 2.0/7 {
		t.Fatalf("sparsity %g, want 2/7", q.Sparsity(w))
	}
}

// The straight-through gradient passes unchanged below |W| = 1 and is cut
// at exactly 1 and above, on both signs.
func TestSTEByHand(t *testing.T) {
	w := []float32{1.0, -1.0, 0.999, -0.3, 1.5, 0}
	gq := []float32{1, 2, 3, 4, 5, 6}
	gw := make([]float32, len(w))
	q, _ := New(0.05, 1)
	q.Backward(w, gq, gw)
	checkSlice(t, "grad", gw, []float32{0, 0, 3, 4, 0, 6})
}

// t_ex = 2: thresholds 0.05 and 0.10 of max|W| = 1 (0.1 itself kept by the
// second term), α1 = mean(1, .05, .05, .5, .2, .1) = 1.9/6, α2 = mean(1, .5, .2, .1) = 0.45.
func TestResidualExpansionByHand(t *testing.T) {
	w := []float32{1.0, 0.05, -0.05, 0.049, -0.5, 0.2, 0.1}
	q, err := New(0.05, 2)
	if err != nil {
		t.Fatal(err)
	}
	wq := make([]float32, len(w))
	q.Quantize(w, wq)
	a1, a2 := float32(1.9/6), float32(0.45)
	checkSlice(t, "alpha", q.Alpha, []float32{a1, a2})
	checkSlice(t, "W_eff", wq, []float32{a1 + a2, a1, -a1, 0, -(a1 + a2), a1 + a2, a1 + a2})
	// Each term contributes its own straight-through gradient: 2·g.
	gw := make([]float32, len(w))
	q.Backward(w, []float32{1, 1, 1, 1, 1, 1, 1}, gw)
	checkSlice(t, "grad", gw, []float32{0, 2, 2, 2, 2, 2, 2})

	// The sum equals the sum of separately ternarized terms.
	t1, t2 := make([]float32, len(w)), make([]float32, len(w))
	Ternarize(w, t1, q.Factors[0])
	Ternarize(w, t2, q.Factors[1])
	for i := range w {
		if !near(wq[i], t1[i]+t2[i]) {
			t.Fatalf("W_eff[%d] = %g, terms sum to %g", i, wq[i], t1[i]+t2[i])
		}
	}
}

func TestZeroWeight(t *testing.T) {
	w := make([]float32, 5)
	wq := []float32{9, 9, 9, 9, 9}
	q, _ := New(0.05, 4)
	q.Quantize(w, wq)
	for _, v := range wq {
		if v != 0 {
			t.Fatalf("all-zero weight gave %v", wq)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		t   float64
		tex int
	}{{0.05, 0}, {0, 1}, {-0.1, 1}, {0.3, 4}, {math.NaN(), 1}} {
		if _, err := New(c.t, c.tex); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%g, %d) = %v, want ErrConfig", c.t, c.tex, err)
		}
	}
	q, err := New(0.05, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkSlice(t, "factors", q.Factors, []float32{0.05, 0.10, 0.15, 0.20})
}
