package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"testing"
)

// specials puts the values where fused and unfused passes could part ways
// (NaN, ±Inf, ±0) at random places of s.
func specials(r *rand.Rand, s []float32) {
	if len(s) == 0 {
		return
	}
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1))} {
		s[r.IntN(len(s))] = v
	}
}

// TestNormalizeAddIsNormalizeThenAdd holds the twins, and through the next
// test the kernels, to the passes they fuse: Normalize into a temporary,
// then Add (with ReLU) of o.
func TestNormalizeAddIsNormalizeThenAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	layouts(func(rows, cols, stride int) {
		n := max((rows-1)*stride+cols, 0)
		x, o := randSlice(r, n, 0.3), randSlice(r, n, 0)
		specials(r, x)
		specials(r, o)
		// mean, invStd, gamma, beta: beta = −mean·invStd·gamma would make
		// BN(0) = 0, so the ReLU decides on values near 0 too.
		const mean, is, gm, bt = 0.25, 1.75, -0.8, 0.1
		for _, relu := range []bool{false, true} {
			z := make([]float32, n)
			want := make([]float32, n)
			normalizeGo(z, x, rows, cols, stride, mean, is, gm, bt)
			if relu {
				addReLUGo(want, z, o)
			} else {
				addGo(want, z, o)
			}
			got := make([]float32, n)
			f := goFuse.normalizeAdd
			if relu {
				f = goFuse.normalizeAddReLU
			}
			f(got, x, o, rows, cols, stride, mean, is, gm, bt)
			for i := 0; i < rows; i++ {
				same(t, fmt.Sprintf("normalizeAdd relu=%v %dx%d/%d", relu, rows, cols, stride), got[i*stride:][:cols], want[i*stride:][:cols])
			}
		}
	})
}

func TestFuseKernelsMatchTwins(t *testing.T) {
	needAsm(t)
	r := rand.New(rand.NewPCG(8, 8))
	layouts(func(rows, cols, stride int) {
		n := max((rows-1)*stride+cols, 0)
		x, o := randSlice(r, n, 0.3), randSlice(r, n, 0)
		specials(r, x)
		specials(r, o)
		const mean, is, gm, bt = 0.25, 1.75, -0.8, 0.1
		for _, relu := range []bool{false, true} {
			k, tw := asmFuse.normalizeAdd, goFuse.normalizeAdd
			if relu {
				k, tw = asmFuse.normalizeAddReLU, goFuse.normalizeAddReLU
			}
			// The sources are guarded too: masked loads must not read past them.
			xs, _ := guarded(t, n)
			os, _ := guarded(t, n)
			copy(xs, x)
			copy(os, o)
			y, check := guarded(t, n)
			k(y, xs, os, rows, cols, stride, mean, is, gm, bt)
			check("normalizeAdd")
			want := make([]float32, n)
			tw(want, x, o, rows, cols, stride, mean, is, gm, bt)
			for i := 0; i < rows; i++ {
				same(t, fmt.Sprintf("normalizeAdd relu=%v %dx%d/%d", relu, rows, cols, stride), y[i*stride:][:cols], want[i*stride:][:cols])
			}
		}
	})
}

// TestMaskPositiveSum holds the twin to Add then MaskPositive, and the
// kernel to the twin.
func TestMaskPositiveSum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, n := range lens {
		a, b, y := randSlice(r, n, 0), randSlice(r, n, 0), randSlice(r, n, 0)
		specials(r, a)
		specials(r, b)
		specials(r, y)
		sum, want := make([]float32, n), make([]float32, n)
		addGo(sum, a, b)
		maskPositiveGo(want, sum, y)
		got := make([]float32, n)
		maskPositiveSumGo(got, a, b, y)
		same(t, fmt.Sprintf("maskPositiveSumGo n=%d", n), got, want)
		if !hasAsm {
			continue
		}
		dx, check := guarded(t, n)
		asmFuse.maskPositiveSum(dx, a, b, y)
		check("maskPositiveSum")
		same(t, fmt.Sprintf("maskPositiveSum n=%d", n), dx, want)
	}
}

// TestFuseExported checks the exported entry points on a few values
// against their definitions, whichever implementation is active.
func TestFuseExported(t *testing.T) {
	nan := float32(math.NaN())
	x := []float32{1, 2, 3, nan, 5, 6}
	o := []float32{1, -10, 0.5, 0, -1, 100}
	y := []float32{42, 42, 42, 42, 42, 42}
	// Two rows of 2 with stride 3, y[2] and y[5] between them untouched:
	// BN(x) = (x−1)·2·1 + 0.5.
	t1 := BN{Mean: 1, InvStd: 2, Gamma: 1, Beta: 0.5}
	NormalizeAdd(y, x, o, 2, 2, 3, t1, true)
	if y[0] != 1.5 || y[1] != 0 || y[2] != 42 || y[3] == y[3] || y[4] != 7.5 || y[5] != 42 {
		t.Fatalf("NormalizeAdd relu = %v", y)
	}
	NormalizeAdd(y, x, o, 2, 2, 3, t1, false)
	if y[1] != -7.5 || y[4] != 7.5 || y[5] != 42 {
		t.Fatalf("NormalizeAdd = %v", y)
	}
	MaskPositiveSum(y, []float32{1, 2, 3, 4, 5, 6}, []float32{10, 20, 30, 40, 50, 60}, []float32{1, 0, nan, -1, 2, float32(math.Inf(1))})
	if y[0] != 11 || y[1] != 0 || y[2] != 0 || y[3] != 0 || y[4] != 55 || y[5] != 66 {
		t.Fatalf("MaskPositiveSum = %v", y)
	}
}

func TestFuseBoundsPanic(t *testing.T) {
	bn := BN{InvStd: 1, Gamma: 1}
	for name, f := range map[string]func(){
		"NormalizeAdd o": func() { NormalizeAdd(make([]float32, 10), make([]float32, 10), make([]float32, 9), 2, 5, 5, bn, true) },
		"NormalizeAdd y": func() { NormalizeAdd(make([]float32, 9), make([]float32, 10), make([]float32, 10), 2, 5, 5, bn, false) },
		"MaskPositiveSum": func() {
			MaskPositiveSum(make([]float32, 4), make([]float32, 4), make([]float32, 3), make([]float32, 4))
		},
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

// TestFuseAssemblyIsAVX2 is TestAssemblyIsAVX2 for this set's file.
func TestFuseAssemblyIsAVX2(t *testing.T) {
	src, err := os.ReadFile("vec_fuse_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[1-7])\b`).Find(src); m != nil {
		t.Fatalf("vec_fuse_amd64.s uses the AVX-512 register %s", m)
	}
}
