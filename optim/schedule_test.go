package optim

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestStepScheduleCIFAR(t *testing.T) {
	s, err := NewSchedule("step", 0.1, 200, []int{80, 120, 160}, []float64{0.1, 0.1, 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// The reference multiplies in Python float64 in milestone order, so the
	// rates are compared exactly (variables, not constants: Go would fold
	// constant products exactly instead of rounding each one).
	base, g1, g2, g3 := 0.1, 0.1, 0.1, 0.5
	lr1 := base * g1
	lr2 := lr1 * g2
	lr3 := lr2 * g3
	for _, c := range []struct {
		epoch int
		want  float64
	}{
		{0, base}, {79, base}, {80, lr1}, {119, lr1}, {120, lr2}, {159, lr2}, {160, lr3}, {199, lr3},
	} {
		if got := s.LR(c.epoch); got != c.want {
			t.Errorf("LR(%d) = %v, want %v", c.epoch, got, c.want)
		}
	}
	if math.Abs(lr3-5e-4) > 1e-18 {
		t.Errorf("final rate %v, want 5e-4", lr3)
	}
	imagenet, err := NewSchedule("Step", 1e-4, 50, []int{30, 40, 45}, []float64{0.2, 0.2, 0.5})
	if err != nil {
		t.Fatal(err)
	}
	want := 1e-4
	for _, g := range []float64{0.2, 0.2, 0.5} {
		want *= g
	}
	if got := imagenet.LR(45); got != want {
		t.Errorf("ImageNet LR(45) = %v, want %v", got, want)
	}
	if got := imagenet.LR(29); got != 1e-4 {
		t.Errorf("ImageNet LR(29) = %v", got)
	}
}

func TestCosineSchedule(t *testing.T) {
	s, err := NewSchedule("cosine", 0.1, 200, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		epoch int
		want  float64
	}{{0, 0.1}, {100, 0.05}, {50, 0.1 * (1 + math.Sqrt2/2) / 2}, {200, 0}, {250, 0}, {-3, 0.1}} {
		if got := s.LR(c.epoch); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("LR(%d) = %v, want %v", c.epoch, got, c.want)
		}
	}
	if s.LR(0) != 0.1 {
		t.Errorf("LR(0) = %v, want exactly the base", s.LR(0))
	}
	// Odd T: the midpoint falls between epochs, and the rate only decreases.
	s, _ = NewSchedule("COSINE", 1, 7, nil, nil)
	for e := 1; e <= 7; e++ {
		if s.LR(e) >= s.LR(e-1) {
			t.Errorf("LR(%d) = %v not below LR(%d) = %v", e, s.LR(e), e-1, s.LR(e-1))
		}
	}
}

func TestScheduleErrors(t *testing.T) {
	cases := []struct {
		kind   string
		base   float64
		epochs int
		sched  []int
		gammas []float64
		want   error
	}{
		{"step", 0.1, 200, []int{80, 120}, []float64{0.1}, ErrScheduleLength},
		{"step", 0.1, 200, []int{120, 80}, []float64{0.1, 0.1}, ErrBadSchedule},
		{"step", 0.1, 200, []int{80}, []float64{math.NaN()}, ErrBadSchedule},
		{"step", -1, 200, nil, nil, ErrBadSchedule},
		{"cosine", 0.1, 0, nil, nil, ErrBadSchedule},
		{"linear", 0.1, 200, nil, nil, ErrUnknownSchedule},
	}
	for _, c := range cases {
		if _, err := NewSchedule(c.kind, c.base, c.epochs, c.sched, c.gammas); !errors.Is(err, c.want) {
			t.Errorf("%s %v %v: %v, want %v", c.kind, c.sched, c.gammas, err, c.want)
		}
	}
	if _, err := NewSchedule("linear", 0.1, 1, nil, nil); err == nil || !strings.Contains(err.Error(), "step, cosine") {
		t.Errorf("unknown schedule error does not list the valid ones: %v", err)
	}
}
