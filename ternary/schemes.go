package ternary

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Scheme names a way of choosing the residual-expansion terms of a layer.
type Scheme string

// The schemes. Paper is the reference; the others are this project's answer
// to the seed's open task "optimizing the thresholds chosen for the residual
// expansion layers".
const (
	// Paper: term i uses threshold t·i·max|W| and α_i = mean |W| above it
	// (nested thresholds; W_eff ≈ k·W in scale, so the STE factor is k).
	Paper Scheme = "paper"
	// Greedy: term i is the least-squares ternarization of the residual
	// W − Σ_{j<i} term_j, with its own threshold and α chosen exactly (sort
	// |R| and maximise (Σ top-m |R|)²/m). Term 1 is the optimal ternary
	// approximation of W; each further term fits what is left.
	Greedy Scheme = "greedy"
	// Optimal: the nested form of the paper (a weight takes ±(α_1+…+α_l) by
	// how many thresholds its magnitude passes), with thresholds and α fitted
	// to minimise ‖W − W_eff‖² by Lloyd iterations on |W| (a 1-D k-means with
	// one level fixed at 0), started from the paper's levels optimally
	// rescaled, so it is never worse than the paper's terms up to scale.
	Optimal Scheme = "optimal"
)

// Schemes lists the valid scheme names.
var Schemes = []Scheme{Paper, Greedy, Optimal}

// ParseScheme checks a scheme name ("" means Paper).
func ParseScheme(s string) (Scheme, error) {
	if s == "" {
		return Paper, nil
	}
	for _, v := range Schemes {
		if Scheme(s) == v {
			return v, nil
		}
	}
	names := make([]string, len(Schemes))
	for i, v := range Schemes {
		names[i] = string(v)
	}
	return "", fmt.Errorf("%w: unknown REL scheme %q (valid: %s)", ErrConfig, s, strings.Join(names, ", "))
}

// NewScheme returns a quantizer with tex terms fitted by scheme. The factors
// t·i still seed the Optimal scheme and are reported for all.
func NewScheme(scheme Scheme, tfactor float64, tex int) (*Quantizer, error) {
	q, err := New(tfactor, tex)
	if err != nil {
		return nil, err
	}
	if _, err := ParseScheme(string(scheme)); err != nil {
		return nil, err
	}
	q.Scheme = scheme
	return q, nil
}

// fitter holds reusable scratch so that fitting allocates only on the
// first call for a layer.
type fitter struct {
	res, mag, tmp []float32
	zeros         int
}

func (f *fitter) buffers(n int) {
	if cap(f.res) < n {
		f.res = make([]float32, n)
		f.mag = make([]float32, n)
		f.tmp = make([]float32, n)
	}
	f.res, f.mag, f.tmp = f.res[:n], f.mag[:n], f.tmp[:n]
}

// sortMagnitudes sorts a, whose elements are ≥ 0 (or NaN), ascending, with
// tmp as scratch of the same length. The fitted schemes sort every layer's
// magnitudes at every step; for non-negative floats the bit patterns order
// as the values do, so three passes of a radix sort (11, 11 and 10 bits)
// replace a comparison sort several times slower, with the same result
// (NaNs, which slices.Sort puts first, go last).
func sortMagnitudes(a, tmp []float32) {
	if len(a) < 256 {
		slices.Sort(a)
		return
	}
	src, dst := a, tmp[:len(a)]
	for _, shift := range [3]uint{0, 11, 22} {
		var count [2048]int
		for _, v := range src {
			count[math.Float32bits(v)>>shift&2047]++
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, v := range src {
			k := math.Float32bits(v) >> shift & 2047
			dst[count[k]] = v
			count[k]++
		}
		src, dst = dst, src
	}
	// Three passes leave the result in tmp.
	copy(a, src)
}

// bestTernary returns the threshold and α minimising ‖r − α·sign(r)·[|r| ≥ th]‖².
// Keeping the m largest magnitudes removes (Σ_{top m}|r|)²/m from ‖r‖².
func bestTernary(r, mag, tmp []float32) (th, alpha float32) {
	for i, v := range r {
		mag[i] = abs32(v)
	}
	sortMagnitudes(mag, tmp)
	var s, best float64
	bestM := 0
	for m := 1; m <= len(mag); m++ {
		s += float64(mag[len(mag)-m])
		if g := s * s / float64(m); g > best {
			best, bestM = g, m
		}
	}
	if bestM == 0 {
		return math.MaxFloat32, 0
	}
	th = mag[len(mag)-bestM]
	return th, meanAbove(r, th)
}

func (f *fitter) greedy(q *Quantizer, w, wq []float32) {
	f.buffers(len(w))
	copy(f.res, w)
	clear(wq)
	for i := range q.Factors {
		th, a := bestTernary(f.res, f.mag, f.tmp)
		q.Threshold[i], q.Alpha[i] = th, a
		for j, v := range f.res {
			var t float32
			switch {
			case v >= th:
				t = a
			case v <= -th:
				t = -a
			}
			wq[j] += t
			f.res[j] = v - t
		}
	}
	f.zeros = 0
	for _, v := range wq {
		if v == 0 {
			f.zeros++
		}
	}
}

func (f *fitter) optimal(q *Quantizer, w, wq []float32) {
	k := len(q.Factors)
	f.buffers(len(w))
	// Start from the paper's levels β_l = α_1+…+α_l, rescaled by the
	// least-squares factor c = <W, W_eff>/<W_eff, W_eff>.
	paper := Quantizer{Factors: q.Factors, Alpha: q.Alpha, Threshold: q.Threshold}
	paper.Quantize(w, wq)
	var num, den float64
	for i, v := range w {
		num += float64(v) * float64(wq[i])
		den += float64(wq[i]) * float64(wq[i])
	}
	levels := make([]float64, k+1) // small, per call; k ≤ a handful
	c := 1.0
	if den > 0 {
		c = num / den
	}
	for l := 1; l <= k; l++ {
		levels[l] = levels[l-1] + c*float64(q.Alpha[l-1])
	}
	for i, v := range w {
		f.mag[i] = abs32(v)
	}
	sums := make([]float64, k+1)
	counts := make([]int, k+1)
	for iter := 0; iter < 30; iter++ {
		clear(sums)
		clear(counts)
		for _, a := range f.mag {
			l := nearestLevel(levels, float64(a))
			sums[l] += float64(a)
			counts[l]++
		}
		moved := 0.0
		for l := 1; l <= k; l++ {
			if counts[l] > 0 {
				nl := sums[l] / float64(counts[l])
				moved = math.Max(moved, math.Abs(nl-levels[l]))
				levels[l] = nl
			}
		}
		slices.Sort(levels[1:]) // keep levels ordered if an empty bucket lagged
		if moved <= 1e-7*levels[k] {
			break
		}
	}
	for l := 1; l <= k; l++ {
		q.Threshold[l-1] = float32((levels[l-1] + levels[l]) / 2)
		q.Alpha[l-1] = float32(levels[l] - levels[l-1])
	}
	q.writeNested(w, wq)
}

// nearestLevel returns the index of the level closest to a (levels ascending).
func nearestLevel(levels []float64, a float64) int {
	best, bi := math.Abs(a-levels[0]), 0
	for l := 1; l < len(levels); l++ {
		if d := math.Abs(a - levels[l]); d < best {
			best, bi = d, l
		}
	}
	return bi
}
