package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// fill sets s to random values, some of them signed zeros and NaNs with
// distinct payloads, so that a kernel that adds where it should copy, drops
// a sign, or swaps the operands of an add (which NaN it returns) shows.
func fill(r *rand.Rand, s []float32) {
	for i := range s {
		switch r.IntN(8) {
		case 0:
			s[i] = float32(math.Copysign(0, -1))
		case 1:
			s[i] = 0
		case 2:
			s[i] = math.Float32frombits(0x7fc00000 | uint32(r.IntN(1<<22)))
		default:
			s[i] = float32(r.NormFloat64())
		}
	}
}

// TestPhaseTwins checks the twins against the definition, element by
// element, and the assembly against the twins bit for bit, on widths 0..100
// with every remainder of the 16-float blocks, pads around the phases, and
// guard values around every output.
func TestPhaseTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for w := 0; w <= 100; w++ {
		for _, rows := range []int{1, 2, 3} {
			p0 := r.IntN(3)
			lp := p0 + (w+1)/2 + r.IntN(4)
			what := fmt.Sprintf("w=%d rows=%d lp=%d p0=%d", w, rows, lp, p0)
			img := make([]float32, rows*w)
			fill(r, img)

			// Definition of the split.
			want := make([]float32, rows*2*lp)
			for i := range want {
				want[i] = 0
			}
			for rr := 0; rr < rows; rr++ {
				for j := 0; j < w; j++ {
					at := rr*2*lp + p0 + j/2
					if j%2 == 1 {
						at += lp
					}
					want[at] = img[rr*w+j]
				}
			}
			for _, impl := range []struct {
				name string
				use  bool
				k    phaseKernels
			}{{"go", true, goPhase}, {"asm", hasAsm, asmPhase}} {
				if !impl.use {
					continue
				}
				ph, check := guarded(t, len(want))
				for i := range ph {
					ph[i] = float32(math.NaN()) // stale scratch must be overwritten
				}
				impl.k.splitPhases(ph, img, w, rows, lp, p0)
				check(impl.name + " splitPhases " + what)
				same(t, impl.name+" splitPhases "+what, ph, want)

				back, check := guarded(t, len(img))
				impl.k.mergePhases(back, want, w, rows, lp, p0)
				check(impl.name + " mergePhases " + what)
				same(t, impl.name+" mergePhases "+what, back, img)
			}
		}
	}
}

// TestRowsTwins does the same for copyRows and addRows on strided rows.
func TestRowsTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for n := 0; n <= 100; n++ {
		for _, rows := range []int{1, 2, 5} {
			ds, ss := n+r.IntN(9), n+r.IntN(9)
			what := fmt.Sprintf("n=%d rows=%d strides %d, %d", n, rows, ds, ss)
			ld, ls := (rows-1)*ds+n, (rows-1)*ss+n
			src := make([]float32, ls)
			fill(r, src)
			base := make([]float32, ld)
			fill(r, base)
			wantCopy := append([]float32(nil), base...)
			wantAdd := append([]float32(nil), base...)
			for rr := 0; rr < rows; rr++ {
				for j := 0; j < n; j++ {
					wantCopy[rr*ds+j] = src[rr*ss+j]
					wantAdd[rr*ds+j] = base[rr*ds+j] + src[rr*ss+j]
				}
			}
			for _, impl := range []struct {
				name string
				use  bool
				k    phaseKernels
			}{{"go", true, goPhase}, {"asm", hasAsm, asmPhase}} {
				if !impl.use {
					continue
				}
				for _, op := range []struct {
					name string
					f    func(dst, src []float32, n, rows, dstStride, srcStride int)
					want []float32
				}{{"copyRows", impl.k.copyRows, wantCopy}, {"addRows", impl.k.addRows, wantAdd}} {
					dst, check := guarded(t, ld)
					copy(dst, base)
					op.f(dst, src, n, rows, ds, ss)
					check(impl.name + " " + op.name + " " + what)
					same(t, impl.name+" "+op.name+" "+what, dst, op.want)
				}
			}
		}
	}
}

func TestPhaseChecks(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"SplitPhases short dst", func() { SplitPhases(make([]float32, 15), make([]float32, 8), 4, 2, 4, 1) }},
		{"SplitPhases p0 too far", func() { SplitPhases(make([]float32, 16), make([]float32, 8), 4, 2, 4, 3) }},
		{"MergePhases short dst", func() { MergePhases(make([]float32, 7), make([]float32, 16), 4, 2, 4, 1) }},
		{"CopyRows short src", func() { CopyRows(make([]float32, 20), make([]float32, 10), 4, 3, 8, 4) }},
		{"AddRows short dst", func() { AddRows(make([]float32, 19), make([]float32, 12), 4, 3, 8, 4) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			c.f()
		}()
	}
}

// BenchmarkPhases times the kernels on the rows of the CIFAR ResNet's first
// stride-2 convolution (16 channels of 32×32, pad 1), assembly against the
// twin.
func BenchmarkPhases(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const ch, hw, lp = 16, 32, 17
	img := randSlice(r, ch*hw*hw, 0)
	ph := make([]float32, ch*hw*2*lp)
	for _, impl := range []struct {
		name string
		k    phaseKernels
	}{{"asm", asmPhase}, {"go", goPhase}} {
		b.Run("split/"+impl.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				impl.k.splitPhases(ph, img, hw, ch*hw, lp, 1)
			}
		})
		b.Run("merge/"+impl.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				impl.k.mergePhases(img, ph, hw, ch*hw, lp, 1)
			}
		})
		b.Run("addRows/"+impl.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				impl.k.addRows(ph, img, 16, 16, 4*lp, 16)
			}
		})
	}
}
