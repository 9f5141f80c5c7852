package optim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

var (
	// ErrUnknownSchedule reports a schedule name other than step or cosine.
	ErrUnknownSchedule = errors.New("optim: unknown learning-rate schedule")
	// ErrScheduleLength reports step milestones and gammas of different lengths.
	ErrScheduleLength = errors.New("optim: schedule and gammas differ in length")
	// ErrBadSchedule reports an invalid schedule parameter.
	ErrBadSchedule = errors.New("optim: invalid learning-rate schedule")
)

// ScheduleKinds lists the names NewSchedule accepts (case-insensitively).
var ScheduleKinds = []string{"step", "cosine"}

// Schedule gives the learning rate for a 0-based epoch; the trainer sets it
// at the start of each epoch.
type Schedule interface {
	LR(epoch int) float64
}

// StepSchedule is the reference's adjust_learning_rate: the base rate times
// every gamma whose milestone epoch has been reached.
type StepSchedule struct {
	Base       float64
	Milestones []int
	Gammas     []float64
}

// LR multiplies in float64 in milestone order, as the reference's Python
// loop does, so the rate is bit-identical to the reference's. The reference
// stops at the first milestone not reached; NewSchedule requires sorted
// milestones, where that is the same as testing every one.
func (s StepSchedule) LR(epoch int) float64 {
	lr := s.Base
	for j, m := range s.Milestones {
		if epoch < m || j >= len(s.Gammas) {
			break
		}
		lr *= s.Gammas[j]
	}
	return lr
}

// CosineSchedule is torch's CosineAnnealingLR in closed form with eta_min 0
// and T_max the number of epochs: base*(1+cos(pi*epoch/T))/2.
type CosineSchedule struct {
	Base   float64
	Epochs int
}

// LR clamps epoch to [0, Epochs]: past the end torch's formula would climb
// back up, which no run of Epochs epochs asks for.
func (s CosineSchedule) LR(epoch int) float64 {
	if s.Epochs <= 0 {
		return s.Base
	}
	e := float64(min(max(epoch, 0), s.Epochs))
	// torch: eta_min + (base_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2
	return s.Base * (1 + math.Cos(math.Pi*e/float64(s.Epochs))) / 2
}

// NewSchedule builds the schedule named kind ("step" or "cosine", any case).
// Step uses schedule and gammas (equal lengths, milestones non-decreasing,
// gammas finite and non-negative); cosine uses epochs (positive).
func NewSchedule(kind string, base float64, epochs int, schedule []int, gammas []float64) (Schedule, error) {
	if !finite(base) || base < 0 {
		return nil, fmt.Errorf("%w: base learning rate %v", ErrBadSchedule, base)
	}
	switch strings.ToLower(kind) {
	case "step":
		if len(schedule) != len(gammas) {
			return nil, fmt.Errorf("%w: %d milestones, %d gammas", ErrScheduleLength, len(schedule), len(gammas))
		}
		if !slices.IsSorted(schedule) {
			return nil, fmt.Errorf("%w: milestones %v not in increasing order", ErrBadSchedule, schedule)
		}
		for _, g := range gammas {
			if !finite(g) || g < 0 {
				return nil, fmt.Errorf("%w: gamma %v", ErrBadSchedule, g)
			}
		}
		return StepSchedule{Base: base, Milestones: slices.Clone(schedule), Gammas: slices.Clone(gammas)}, nil
	case "cosine":
		if epochs <= 0 {
			return nil, fmt.Errorf("%w: cosine needs a positive number of epochs, got %d", ErrBadSchedule, epochs)
		}
		return CosineSchedule{Base: base, Epochs: epochs}, nil
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownSchedule, kind, strings.Join(ScheduleKinds, ", "))
}
