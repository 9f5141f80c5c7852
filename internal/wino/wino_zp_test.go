package wino

import (
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
)

// zpFor returns the AVX-512 packed kernels, skipping the test where this
// build or CPU has none.
func zpFor(t testing.TB) kernels4 {
	t.Helper()
	if zpKernels4p == nil {
		t.Skip("no AVX-512 packed kernels on this machine or build")
	}
	return *zpKernels4p
}

// TestKernels4ZPMatch holds the AVX-512 packed kernels to the AVX2 packed
// kernels and to the twins, bit for bit (see testKernels4Z: random, NaN,
// ±Inf and −0 inputs, guards around every output and around scratch of
// exactly ScratchLen random floats, every output pixel written), on every
// plane with four tiles per tile row up to 20 rows, whose last group of
// four tile rows is full or holds one to three of them, and on taller
// planes where the carry between tile rows crosses several groups.
func TestKernels4ZPMatch(t *testing.T) {
	zp := zpFor(t)
	r := rand.New(rand.NewPCG(47, 48))
	hs := []int{33, 36, 37, 64, 66}
	for h := 1; h <= 20; h++ {
		hs = append(hs, h)
	}
	for _, h := range hs {
		for w := 13; w <= 16; w++ {
			p := plan4(t, h, w)
			if !p.packed {
				t.Fatalf("%dx%d: plan not packed", h, w)
			}
			for _, special := range []bool{false, true} {
				testKernels4Z(t, r, p, zp, asmKernels4p, special)
			}
		}
	}
}

// TestPlan4UsesZP checks that packed plans run the AVX-512 packed kernels
// where they exist, and the AVX2 ones under TNN_WINO=avx2.
func TestPlan4UsesZP(t *testing.T) {
	zp := zpFor(t)
	want := zp
	if os.Getenv("TNN_WINO") == "avx2" {
		want = asmKernels4p
	}
	got := plan4(t, 16, 16).kernels4()
	ptr := func(f any) uintptr { return reflect.ValueOf(f).Pointer() }
	for _, c := range []struct {
		name      string
		got, want any
	}{{"in", got.in, want.in}, {"out", got.out, want.out}, {"outT", got.outT, want.outT}, {"inT", got.inT, want.inT}} {
		if ptr(c.got) != ptr(c.want) {
			t.Errorf("%s: packed plan runs another kernel than expected", c.name)
		}
	}
	if zKernels4p == nil || ptr(zKernels4p.in) != ptr(zp.in) {
		t.Errorf("zKernels4p is not the AVX-512 packed set")
	}
}

// BenchmarkTransforms4ZP runs each AVX-512 packed kernel and the AVX2
// packed one in turn on the same plane, for their ratio.
func BenchmarkTransforms4ZP(b *testing.B) {
	zp := zpFor(b)
	r := rand.New(rand.NewPCG(49, 50))
	for _, s := range []int{16, 14} {
		p, _ := NewPlan4(s, s)
		benchPair(b, r, p, asmKernels4p, zp)
	}
}
