package xla

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

var (
	// ErrDevice reports a --device this build cannot open: an unknown name,
	// XLA not compiled in, or a PJRT plugin that fails to load.
	ErrDevice = errors.New("xla: cannot open device")
	// ErrUnsupported reports a model or option the lowering does not cover.
	ErrUnsupported = errors.New("xla: unsupported")
)

// BuildHint says how to get a binary that can use XLA devices.
const BuildHint = "build tnn with the XLA backend: go build -tags xla -o tnn ./cmd/tnn (needs cgo and a PJRT plugin at run time)"

// xlaCompiled is set by backend_xla.go, which only the xla build tag
// compiles: the XLA backend loads PJRT plugins with dlopen through cgo, and
// the default build must stay pure Go.
var xlaCompiled bool

// Devices lists the --device values this build accepts besides the CPU engine.
func Devices() []string {
	d := []string{"go"}
	if xlaCompiled {
		d = append(d, "cuda", "xla:cuda", "xla:cpu", "xla:PLUGIN")
	}
	return d
}

// openBackend maps a --device value onto a GoMLX backend:
//
//	cuda           XLA with the PJRT plugin named "cuda"
//	xla:NAME       XLA with the PJRT plugin NAME (cpu, cuda, or a plugin's absolute path)
//	go             GoMLX's pure-Go backend (slow; for tests and debugging)
func openBackend(device string) (b backends.Backend, err error) {
	config := ""
	switch {
	case device == "go" || device == "simplego":
		sb, err := simplego.New("")
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrDevice, device, err)
		}
		return goBackend{sb}, nil
	case device == "cuda" || device == "gpu":
		config = "xla:cuda"
	case strings.HasPrefix(device, "xla:") && len(device) > len("xla:"):
		config = device
	default:
		return nil, fmt.Errorf("%w %q (valid: cpu, %s)", ErrDevice, device, strings.Join(Devices(), ", "))
	}
	if !xlaCompiled {
		return nil, fmt.Errorf("%w %q: this binary has no XLA backend; %s", ErrDevice, device, BuildHint)
	}
	// The constructors panic on unknown backends; a bad plugin must come back
	// as an error the command line can print in one line.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w %q: %v", ErrDevice, device, r)
		}
	}()
	b, err = backends.NewWithConfig(config)
	if err != nil {
		msg := oneLine(err)
		if !strings.Contains(msg, "PJRT_PLUGIN_LIBRARY_PATH") {
			msg += " (PJRT_PLUGIN_LIBRARY_PATH names the folders searched for pjrt_c_api_<name>_plugin.so)"
		}
		return nil, fmt.Errorf("%w %q: %s", ErrDevice, device, msg)
	}
	return b, nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// goBackend is GoMLX's pure-Go backend with the two operations it lacks and
// that the gradients of this project's layers need: Reverse (the kernel
// flip in a convolution's input gradient) and Pad (the gradient of a strided
// slice and of sum pooling), written with operations it has, and a fix for
// convolutions without strides. With them whole training steps run, slowly,
// without cgo; tests use it to check the lowering against the CPU engine.
// Max pooling's gradient (SelectAndScatter) is still missing.
type goBackend struct{ backends.Backend }

func (b goBackend) Builder(name string) backends.Builder { return goBuilder{b.Backend.Builder(name)} }

type goBuilder struct{ backends.Builder }

// ConvGeneral fills in unit strides and dilations: the pure-Go backend
// reads missing strides as 0 and indexes missing kernel dilations, and
// GoMLX's convolution gradient leaves both out.
func (b goBuilder) ConvGeneral(x, kernel backends.Op, axes backends.ConvolveAxesConfig, strides []int, paddings [][2]int,
	inputDilations, kernelDilations []int, channelGroupCount, batchGroupCount int) (backends.Op, error) {
	ones := func(v []int) []int {
		if len(v) > 0 {
			return v
		}
		v = make([]int, len(axes.InputSpatial))
		for i := range v {
			v[i] = 1
		}
		return v
	}
	strides, inputDilations, kernelDilations = ones(strides), ones(inputDilations), ones(kernelDilations)
	return b.Builder.ConvGeneral(x, kernel, axes, strides, paddings, inputDilations, kernelDilations, channelGroupCount, batchGroupCount)
}

// Reverse slices every index of each axis and concatenates them backwards;
// kernels are small, so the number of slices is too.
func (b goBuilder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	for _, axis := range axes {
		s, err := b.OpShape(x)
		if err != nil {
			return nil, err
		}
		n := s.Dimensions[axis]
		if n <= 1 {
			continue
		}
		parts := make([]backends.Op, n)
		for i := range n {
			if parts[n-1-i], err = b.sliceAxis(x, s, axis, i, i+1); err != nil {
				return nil, err
			}
		}
		if x, err = b.Concatenate(axis, parts...); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Pad interleaves Interior fill values by concatenating a block of fill
// after every element along a new axis and merging the two axes, then adds
// (or, when negative, slices off) the edges.
func (b goBuilder) Pad(x, fill backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	for axis, p := range axesConfig {
		s, err := b.OpShape(x)
		if err != nil {
			return nil, err
		}
		if n := s.Dimensions[axis]; p.Interior > 0 && n > 1 {
			// [..., n, ...] → [..., n, 1, ...] ++ fill[..., n, I, ...] → [..., n·(1+I), ...], minus the trailing fill.
			dims := append([]int{}, s.Dimensions[:axis+1]...)
			dims = append(dims, 1)
			dims = append(dims, s.Dimensions[axis+1:]...)
			if x, err = b.Reshape(x, dims...); err != nil {
				return nil, err
			}
			dims[axis+1] = p.Interior
			f, err := b.fillOf(fill, dims)
			if err != nil {
				return nil, err
			}
			if x, err = b.Concatenate(axis+1, x, f); err != nil {
				return nil, err
			}
			merged := append([]int{}, s.Dimensions...)
			merged[axis] = n * (1 + p.Interior)
			if x, err = b.Reshape(x, merged...); err != nil {
				return nil, err
			}
			ms := shapes.Make(s.DType, merged...)
			if x, err = b.sliceAxis(x, ms, axis, 0, merged[axis]-p.Interior); err != nil {
				return nil, err
			}
		}
		for _, edge := range []struct {
			n     int
			start bool
		}{{p.Start, true}, {p.End, false}} {
			if edge.n == 0 {
				continue
			}
			s, err := b.OpShape(x)
			if err != nil {
				return nil, err
			}
			if edge.n < 0 {
				lo, hi := 0, s.Dimensions[axis]
				if edge.start {
					lo = -edge.n
				} else {
					hi += edge.n
				}
				if x, err = b.sliceAxis(x, s, axis, lo, hi); err != nil {
					return nil, err
				}
				continue
			}
			dims := append([]int{}, s.Dimensions...)
			dims[axis] = edge.n
			f, err := b.fillOf(fill, dims)
			if err != nil {
				return nil, err
			}
			if edge.start {
				x, err = b.Concatenate(axis, f, x)
			} else {
				x, err = b.Concatenate(axis, x, f)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return x, nil
}

func (b goBuilder) fillOf(fill backends.Op, dims []int) (backends.Op, error) {
	fs, err := b.OpShape(fill)
	if err != nil {
		return nil, err
	}
	return b.BroadcastInDim(fill, shapes.Make(fs.DType, dims...), nil)
}

func (b goBuilder) sliceAxis(x backends.Op, s shapes.Shape, axis, lo, hi int) (backends.Op, error) {
	r := s.Rank()
	starts, limits, strides := make([]int, r), append([]int{}, s.Dimensions...), make([]int, r)
	for i := range strides {
		strides[i] = 1
	}
	starts[axis], limits[axis] = lo, hi
	return b.Slice(x, starts, limits, strides)
}
