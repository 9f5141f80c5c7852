package optim

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/tensor"
)

func param(name string, w ...float32) *nn.Param {
	p := nn.NewParam(name, len(w))
	copy(p.Data.Data, w)
	return p
}

func near(got float32, want float64) bool {
	return math.Abs(float64(got)-want) <= 1e-6*math.Max(math.Abs(want), 1e-3)
}

// stepWith sets every gradient element to g and steps.
func stepWith(t *testing.T, o Optimizer, p *nn.Param, g float32) {
	t.Helper()
	for i := range p.Grad.Data {
		p.Grad.Data[i] = g
	}
	if err := o.Step(); err != nil {
		t.Fatal(err)
	}
}

// The expected values below are worked by hand from the update rules in the
// SGD doc comment, starting from w = 1 and g = 0.5 unless stated.
func TestSGDHand(t *testing.T) {
	cases := []struct {
		name string
		h    Hyper
		g    []float32
		want []float64 // w after each step
	}{
		// d = .5 + .01*1 = .51, buf = .51, d = .51 + .9*.51 = .969, w = 1 - .0969.
		// d = .5 + .01*.9031 = .509031, buf = .9*.51 + d = .968031,
		// d = .509031 + .9*.968031 = 1.3802589, w = .9031 - .13802589.
		{"nesterov_wd", Hyper{LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, Nesterov: true},
			[]float32{0.5, 0.5}, []float64{0.9031, 0.76507411}},
		// buf = .51, w = .949; d = .50949, buf = .459 + .50949 = .96849, w = .949 - .096849.
		{"momentum_wd", Hyper{LR: 0.1, Momentum: 0.9, WeightDecay: 0.01},
			[]float32{0.5, 0.5}, []float64{0.949, 0.852151}},
		// w = 1 - .1*.51 = .949; w = .949 - .1*(.5 + .00949).
		{"plain_wd", Hyper{LR: 0.1, WeightDecay: 0.01},
			[]float32{0.5, 0.5}, []float64{0.949, 0.898051}},
		// The first step takes d undamped (buf = 1, w = 1 - .1); then
		// buf = .9*1 + .5*1 = 1.4, w = .9 - .14.
		{"dampening_first_step", Hyper{LR: 0.1, Momentum: 0.9, Dampening: 0.5},
			[]float32{1, 1}, []float64{0.9, 0.76}},
		// Nesterov without decay, gradient changing sign: buf = 1, d = 1.9,
		// w = .81; buf = .9 - 1 = -.1, d = -1 - .09 = -1.09, w = .81 + .109.
		{"nesterov_sign_change", Hyper{LR: 0.1, Momentum: 0.9, Nesterov: true},
			[]float32{1, -1}, []float64{0.81, 0.919}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := param("w", 1, 1, 1)
			o, err := New("sgd", []*nn.Param{p}, c.h)
			if err != nil {
				t.Fatal(err)
			}
			for k, g := range c.g {
				stepWith(t, o, p, g)
				for i, w := range p.Data.Data {
					if !near(w, c.want[k]) {
						t.Errorf("step %d w[%d] = %.9g, want %.9g", k+1, i, w, c.want[k])
					}
				}
			}
		})
	}
}

// Adam with lr .1, decay .1 and torch's betas from w = 1 over gradients
// .5, -.25, 1. Step 1: g = .6, m = .06, v = .00036, bias corrections .1 and
// .001 give m^ = .6 and sqrt(v^) = .6, so w = 1 - .1*.6/(.6+1e-8).
// Step 2: g = -.25 + .09 = -.16, m = .054 - .016 = .038,
// v = .00035964 + .0000256 = .00038524, m^ = .038/.19 = .2,
// sqrt(v^) = sqrt(.00038524/.001999) = .438995..., w = .9 - .02/.438995.
// Step 3 likewise (worked in float64).
func TestAdamHand(t *testing.T) {
	p := param("w", 1, 1)
	o, err := New("Adam", []*nn.Param{p}, Hyper{LR: 0.1, WeightDecay: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ w, m, v float64 }{
		{0.9000000016666666, 0.06, 0.00036},
		{0.8544413674617625, 0.038, 0.00038524},
		{0.7815043998631658, 0.1427444136896176, 0.0015630437339433732},
	}
	for k, g := range []float32{0.5, -0.25, 1} {
		stepWith(t, o, p, g)
		named, info := o.State()
		if info.Step != int64(k+1) {
			t.Errorf("step count %d, want %d", info.Step, k+1)
		}
		if len(named) != 2 || named[0].Name != "w.exp_avg" || named[1].Name != "w.exp_avg_sq" {
			t.Fatalf("state names %v", names(named))
		}
		for i := range p.Data.Data {
			if !near(p.Data.Data[i], want[k].w) || !near(named[0].T.Data[i], want[k].m) || !near(named[1].T.Data[i], want[k].v) {
				t.Errorf("step %d: w, m, v = %.9g %.9g %.9g, want %.9g %.9g %.9g", k+1,
					p.Data.Data[i], named[0].T.Data[i], named[1].T.Data[i], want[k].w, want[k].m, want[k].v)
			}
		}
	}
}

func TestAdamDefaults(t *testing.T) {
	o, err := New("ADAM", []*nn.Param{param("w", 1)}, Hyper{LR: 1e-4})
	if err != nil {
		t.Fatal(err)
	}
	_, info := o.State()
	if h := info.Hyper; h.Beta1 != 0.9 || h.Beta2 != 0.999 || h.Eps != 1e-8 || info.Kind != "Adam" {
		t.Errorf("defaults not applied: %+v", info)
	}
	// Explicit values stay, even beta1 = 0.
	o, err = New("adam", []*nn.Param{param("w", 1)}, Hyper{LR: 1e-4, Beta2: 0.99, Eps: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	if _, info = o.State(); info.Hyper.Beta1 != 0 || info.Hyper.Beta2 != 0.99 {
		t.Errorf("explicit betas replaced: %+v", info.Hyper)
	}
}

func names(named []tensor.Named) []string {
	var s []string
	for _, n := range named {
		s = append(s, n.Name)
	}
	return s
}

func TestNewErrors(t *testing.T) {
	ok := []*nn.Param{param("a", 1), param("b", 2)}
	_, err := New("rmsprop", ok, Hyper{LR: 1})
	if !errors.Is(err, ErrUnknownKind) || !strings.Contains(err.Error(), "SGD, Adam") {
		t.Errorf("unknown kind: %v", err)
	}
	for _, h := range []Hyper{
		{LR: -1},
		{LR: math.NaN()},
		{LR: 1, WeightDecay: -1},
		{LR: 1, Nesterov: true},
		{LR: 1, Momentum: 0.9, Dampening: 0.1, Nesterov: true},
		{LR: 1, Momentum: -0.5},
	} {
		if _, err := New("SGD", ok, h); !errors.Is(err, ErrHyper) {
			t.Errorf("SGD %+v: %v", h, err)
		}
	}
	for _, h := range []Hyper{
		{LR: 1, Beta1: 1, Beta2: 0.9, Eps: 1e-8},
		{LR: 1, Beta1: 0.9, Beta2: -0.1, Eps: 1e-8},
		{LR: 1, Beta1: 0.9, Beta2: 0.9, Eps: -1},
	} {
		if _, err := New("Adam", ok, h); !errors.Is(err, ErrHyper) {
			t.Errorf("Adam %+v: %v", h, err)
		}
	}
	bad := [][]*nn.Param{
		{param("a", 1), nil},
		{param("a", 1), param("a", 2)},
		{param("", 1)},
		{{Name: "x", Data: tensor.New(2)}},
		{{Name: "x", Data: tensor.New(2), Grad: tensor.New(3)}},
	}
	for i, ps := range bad {
		if _, err := New("SGD", ps, Hyper{LR: 1}); !errors.Is(err, ErrParams) {
			t.Errorf("params %d: %v", i, err)
		}
	}
	o, err := New("SGD", ok, Hyper{LR: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.SetLR(-0.1); !errors.Is(err, ErrHyper) || o.LR() != 1 {
		t.Errorf("SetLR(-0.1): %v, lr %v", err, o.LR())
	}
	if err := o.SetLR(0.25); err != nil || o.LR() != 0.25 {
		t.Errorf("SetLR(0.25): %v, lr %v", err, o.LR())
	}
	// A layer swapping in a tensor of another size is refused, not indexed.
	ok[1].Grad = tensor.New(5)
	if err := o.Step(); !errors.Is(err, ErrParams) {
		t.Errorf("step with resized grad: %v", err)
	}
	ok[1].Grad, ok[1].Data = tensor.New(5), tensor.New(5)
	if err := o.Step(); !errors.Is(err, ErrParams) {
		t.Errorf("step with resized param: %v", err)
	}
}

func randParams(n int, shapes ...[]int) []*nn.Param {
	var ps []*nn.Param
	x := uint32(12345 + n)
	next := func() float32 {
		x = x*1664525 + 1013904223
		return float32(int32(x>>8)-1<<23) / (1 << 23)
	}
	for i, s := range shapes {
		p := nn.NewParam(string(rune('a'+i))+".weight", s...)
		for j := range p.Data.Data {
			p.Data.Data[j] = next()
		}
		ps = append(ps, p)
	}
	return ps
}

func setGrads(ps []*nn.Param, k int) {
	for i, p := range ps {
		for j := range p.Grad.Data {
			p.Grad.Data[j] = float32(math.Sin(float64(k*7919+i*104729+j))) * float32(math.Pow(10, float64(j%5-3)))
		}
	}
}

var optimCases = []struct {
	kind string
	h    Hyper
}{
	{"SGD", Hyper{LR: 0.1, Momentum: 0.9, WeightDecay: 3e-4, Nesterov: true}},
	{"SGD", Hyper{LR: 0.1}},
	{"Adam", Hyper{LR: 1e-3, WeightDecay: 5e-6, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}},
}

// A run saved after 3 steps, passed through JSON and restored into a fresh
// optimizer over copies of the weights, must continue bit for bit.
func TestStateRoundTrip(t *testing.T) {
	shapes := [][]int{{3}, {4, 5}, {2, 3, 3, 3}}
	for _, c := range optimCases {
		t.Run(c.kind, func(t *testing.T) {
			ps := randParams(0, shapes...)
			o, err := New(c.kind, ps, c.h)
			if err != nil {
				t.Fatal(err)
			}
			// Before any step there are no buffers, and that state loads too.
			if named, info := o.State(); len(named) != 0 || info.Step != 0 {
				t.Errorf("fresh state: %v %+v", names(named), info)
			}
			for k := range 3 {
				setGrads(ps, k)
				if err := o.Step(); err != nil {
					t.Fatal(err)
				}
			}
			named, info := o.State()
			raw, err := json.Marshal(info)
			if err != nil {
				t.Fatal(err)
			}
			var info2 StateInfo
			if err := json.Unmarshal(raw, &info2); err != nil {
				t.Fatal(err)
			}
			if info2 != info {
				t.Fatalf("JSON round trip %+v -> %+v", info, info2)
			}
			ps2 := randParams(1, shapes...)
			for i := range ps {
				copy(ps2[i].Data.Data, ps[i].Data.Data)
			}
			o2, err := New(c.kind, ps2, Hyper{LR: 7, Beta1: 0.5, Beta2: 0.5, Eps: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := o2.LoadState(named, info2); err != nil {
				t.Fatal(err)
			}
			if o2.LR() != c.h.LR {
				t.Errorf("LR after load %v, want %v", o2.LR(), c.h.LR)
			}
			for k := 3; k < 6; k++ {
				setGrads(ps, k)
				setGrads(ps2, k)
				if err := o.Step(); err != nil {
					t.Fatal(err)
				}
				if err := o2.Step(); err != nil {
					t.Fatal(err)
				}
			}
			for i := range ps {
				if !slices.Equal(ps[i].Data.Data, ps2[i].Data.Data) {
					t.Errorf("%s differs after resume", ps[i].Name)
				}
			}
			a, ia := o.State()
			b, ib := o2.State()
			if ia != ib || len(a) != len(b) {
				t.Fatalf("state after resume: %+v vs %+v", ia, ib)
			}
			for i := range a {
				if a[i].Name != b[i].Name || !slices.Equal(a[i].T.Data, b[i].T.Data) {
					t.Errorf("buffer %s differs after resume", a[i].Name)
				}
			}
			// State returns copies: scribbling on them must not reach the optimizer.
			for _, nt := range b {
				clear(nt.T.Data)
			}
			again, _ := o2.State()
			for i := range a {
				if !slices.Equal(a[i].T.Data, again[i].T.Data) {
					t.Errorf("State aliases the optimizer's %s", a[i].Name)
				}
			}
		})
	}
}

func TestLoadStateMismatch(t *testing.T) {
	ps := randParams(0, []int{2, 2}, []int{3})
	o, err := NewAdam(ps, Hyper{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	setGrads(ps, 0)
	if err := o.Step(); err != nil {
		t.Fatal(err)
	}
	good, info := o.State()
	before := slices.Clone(good[0].T.Data)

	wrongShape := slices.Clone(good)
	wrongShape[0] = tensor.Named{Name: "a.weight.exp_avg", T: tensor.New(4)}
	sgdInfo := info
	sgdInfo.Kind = "SGD"
	cases := []struct {
		name  string
		named []tensor.Named
		info  StateInfo
		says  []string
	}{
		{"missing", good[1:], info, []string{"missing a.weight.exp_avg"}},
		{"unexpected", append(slices.Clone(good), tensor.Named{Name: "z.weight.exp_avg", T: tensor.New(1)}), info, []string{"unexpected z.weight.exp_avg"}},
		{"duplicate", append(slices.Clone(good), good[0]), info, []string{"duplicate a.weight.exp_avg"}},
		{"shape", wrongShape, info, []string{"a.weight.exp_avg has shape [4]", "want [2 2]"}},
		{"kind", good, sgdInfo, []string{`state is for "SGD"`}},
		{"sgd_names", []tensor.Named{{Name: "a.weight.momentum_buffer", T: tensor.New(2, 2)}}, info,
			[]string{"unexpected a.weight.momentum_buffer", "missing a.weight.exp_avg", "missing b.weight.exp_avg_sq"}},
		{"buffers_at_step_0", good, StateInfo{Kind: "Adam", Hyper: info.Hyper}, []string{"unexpected a.weight.exp_avg"}},
		{"nil", []tensor.Named{{Name: "a.weight.exp_avg"}}, info, []string{"nil tensor a.weight.exp_avg"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setGrads(ps, 1)
			err := o.LoadState(c.named, c.info)
			if !errors.Is(err, ErrStateMismatch) {
				t.Fatalf("got %v", err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not mention %q", err, s)
				}
			}
			if now, ni := o.State(); ni != info || !slices.Equal(now[0].T.Data, before) {
				t.Error("failed LoadState changed the optimizer")
			}
		})
	}
	bad := info
	bad.Hyper.Beta2 = 2
	if err := o.LoadState(good, bad); !errors.Is(err, ErrStateMismatch) || !errors.Is(err, ErrHyper) {
		t.Errorf("bad saved hyper-parameters: %v", err)
	}
}

// Results must not depend on the thread count, and parameters larger than a
// chunk must be covered completely.
func TestParallelDeterministic(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	shapes := [][]int{{3 * chunkLen / 2}, {7}, {2 * chunkLen}, {5, 3}}
	for _, c := range optimCases {
		var ref []*nn.Param
		for _, threads := range []int{1, 2, 3, 8} {
			parallel.SetThreads(threads)
			ps := randParams(0, shapes...)
			o, err := New(c.kind, ps, c.h)
			if err != nil {
				t.Fatal(err)
			}
			for k := range 3 {
				setGrads(ps, k)
				if err := o.Step(); err != nil {
					t.Fatal(err)
				}
			}
			if ref == nil {
				ref = ps
				init := randParams(0, shapes...)
				for i := range ps {
					for j := range ps[i].Data.Data {
						if ps[i].Data.Data[j] == init[i].Data.Data[j] && ps[i].Grad.Data[j] != 0 {
							t.Fatalf("%s %s[%d] not updated", c.kind, ps[i].Name, j)
						}
					}
				}
				continue
			}
			for i := range ps {
				if !slices.Equal(ps[i].Data.Data, ref[i].Data.Data) {
					t.Errorf("%s: %s differs with %d threads", c.kind, ps[i].Name, threads)
				}
			}
		}
	}
}

func TestStepNoAlloc(t *testing.T) {
	defer parallel.SetThreads(parallel.Threads())
	// One thread keeps the check about the optimizer, not the worker pool
	// (which is allocation-free too, see internal/parallel).
	parallel.SetThreads(1)
	for _, c := range optimCases {
		ps := randParams(0, []int{100}, []int{3, 3})
		o, err := New(c.kind, ps, c.h)
		if err != nil {
			t.Fatal(err)
		}
		setGrads(ps, 0)
		if n := testing.AllocsPerRun(20, func() { _ = o.Step() }); n != 0 {
			t.Errorf("%s: %v allocations per step", c.kind, n)
		}
	}
}

func BenchmarkStep(b *testing.B) {
	for _, c := range optimCases {
		b.Run(c.kind, func(b *testing.B) {
			ps := randParams(0, []int{1 << 20})
			o, err := New(c.kind, ps, c.h)
			if err != nil {
				b.Fatal(err)
			}
			setGrads(ps, 0)
			b.SetBytes(4 << 20)
			for b.Loop() {
				_ = o.Step()
			}
		})
	}
}
