// Package models defines network architectures once, as data (a Spec: a
// list of nodes in topological order), and builds trainable networks from
// them. Exporters and other backends walk the same Spec.
package models

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Op names a node's operation.
type Op string

// The operations a Spec may contain.
const (
	OpConv2d        Op = "conv2d"         // InC, OutC, Kernel, Stride, Padding, Bias, Ternary
	OpLinear        Op = "linear"         // InC (in_features), OutC (out_features), Bias, Ternary
	OpBatchNorm2d   Op = "batchnorm2d"    // OutC channels
	OpBatchNorm1d   Op = "batchnorm1d"    // OutC features
	OpReLU          Op = "relu"           //
	OpMaxPool2d     Op = "maxpool2d"      // Kernel, Stride, Padding
	OpAvgPool2d     Op = "avgpool2d"      // Kernel, Stride, Padding (count_include_pad)
	OpGlobalAvgPool Op = "global_avgpool" // N×C×H×W → N×C
	OpShortcutA     Op = "shortcut_a"     // InC → OutC zero channels, Stride subsampling
	OpAdd           Op = "add"            // sum of the inputs
	OpFlatten       Op = "flatten"        // N×C×H×W → N×(C·H·W)
)

// Input marks a node input that is the network input.
const Input = -1

// Node is one operation. Name is the PyTorch module path; for nodes with
// parameters it prefixes their state_dict names ("stage_1.0.conv_a" →
// "stage_1.0.conv_a.weight").
type Node struct {
	Name    string `json:"name"`
	Op      Op     `json:"op"`
	Inputs  []int  `json:"inputs"`
	InC     int    `json:"in_channels,omitempty"`
	OutC    int    `json:"out_channels,omitempty"`
	Kernel  int    `json:"kernel,omitempty"`
	Stride  int    `json:"stride,omitempty"`
	Padding int    `json:"padding,omitempty"`
	Bias    bool   `json:"bias,omitempty"`
	Ternary bool   `json:"ternary,omitempty"`
}

// Spec is a whole network. The output of the last node is the logits.
type Spec struct {
	Arch    string `json:"arch"`
	InC     int    `json:"in_channels"`
	H       int    `json:"height"`
	W       int    `json:"width"`
	Classes int    `json:"classes"`
	// TEx is the residual-expansion count the architecture's name implies
	// (resnet18b_fq_lq_tern_tex_4 → 4); 0 means 1. --tex overrides it.
	TEx   int    `json:"tex,omitempty"`
	Nodes []Node `json:"nodes"`
}

// Config is what an architecture needs from the dataset.
type Config struct {
	InC, H, W, Classes int
}

// ErrUnknownArch reports an --arch that is not registered.
var ErrUnknownArch = errors.New("unknown architecture")

// ErrBadConfig reports a dataset shape an architecture cannot take.
var ErrBadConfig = errors.New("bad model configuration")

var registry = map[string]func(Config) (*Spec, error){}

// Register adds an architecture constructor under name.
func Register(name string, f func(Config) (*Spec, error)) { registry[name] = f }

// Names lists the registered architectures, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		// Natural order: resnet20 before resnet110.
		a, b := names[i], names[j]
		ta, tb := strings.TrimRight(a, "0123456789"), strings.TrimRight(b, "0123456789")
		if ta != tb {
			return a < b
		}
		return len(a) < len(b) || (len(a) == len(b) && a < b)
	})
	return names
}

// New builds the Spec of a registered architecture.
func New(arch string, cfg Config) (*Spec, error) {
	f, ok := registry[arch]
	if !ok {
		return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownArch, arch, strings.Join(Names(), ", "))
	}
	if cfg.InC <= 0 || cfg.H <= 0 || cfg.W <= 0 || cfg.Classes <= 0 {
		return nil, fmt.Errorf("%w: %s needs positive channels, size and classes, got %+v", ErrBadConfig, arch, cfg)
	}
	s, err := f(cfg)
	if err != nil {
		return nil, err
	}
	s.Arch = arch
	return s, nil
}

// builder appends nodes and returns their indices, so architecture code
// reads like the paper's description.
type builder struct{ s *Spec }

func (b *builder) add(n Node) int {
	b.s.Nodes = append(b.s.Nodes, n)
	return len(b.s.Nodes) - 1
}

func (b *builder) conv(name string, x, in, out, k, stride, pad int, bias, tern bool) int {
	return b.add(Node{Name: name, Op: OpConv2d, Inputs: []int{x}, InC: in, OutC: out, Kernel: k, Stride: stride, Padding: pad, Bias: bias, Ternary: tern})
}

func (b *builder) linear(name string, x, in, out int, bias, tern bool) int {
	return b.add(Node{Name: name, Op: OpLinear, Inputs: []int{x}, InC: in, OutC: out, Bias: bias, Ternary: tern})
}

func (b *builder) bn2d(name string, x, c int) int {
	return b.add(Node{Name: name, Op: OpBatchNorm2d, Inputs: []int{x}, OutC: c})
}

func (b *builder) bn1d(name string, x, c int) int {
	return b.add(Node{Name: name, Op: OpBatchNorm1d, Inputs: []int{x}, OutC: c})
}

func (b *builder) relu(name string, x int) int {
	return b.add(Node{Name: name, Op: OpReLU, Inputs: []int{x}})
}

func (b *builder) sum(name string, xs ...int) int {
	return b.add(Node{Name: name, Op: OpAdd, Inputs: xs})
}

// ShapeOf returns the output shape (without batch) of every node for the
// Spec's input size, and an error if a layer does not fit (an image too
// small for the network, channel counts that do not chain).
func (s *Spec) Shapes() ([][]int, error) {
	shapes := make([][]int, len(s.Nodes))
	in := []int{s.InC, s.H, s.W}
	get := func(i int) []int {
		if i == Input {
			return in
		}
		return shapes[i]
	}
	for i, n := range s.Nodes {
		if len(n.Inputs) == 0 {
			return nil, fmt.Errorf("%w: node %s has no input", ErrBadConfig, n.Name)
		}
		for _, j := range n.Inputs {
			if j != Input && (j < 0 || j >= i) {
				return nil, fmt.Errorf("%w: node %s reads node %d, which is not before it", ErrBadConfig, n.Name, j)
			}
		}
		x := get(n.Inputs[0])
		bad := func(what string) error {
			return fmt.Errorf("%w: %s (%s) %s for input %v", ErrBadConfig, n.Name, n.Op, what, x)
		}
		switch n.Op {
		case OpConv2d:
			if len(x) != 3 || x[0] != n.InC {
				return nil, bad(fmt.Sprintf("expects %d input channels", n.InC))
			}
			h := (x[1]+2*n.Padding-n.Kernel)/n.Stride + 1
			w := (x[2]+2*n.Padding-n.Kernel)/n.Stride + 1
			if h <= 0 || w <= 0 || x[1]+2*n.Padding < n.Kernel {
				return nil, bad("has an empty output")
			}
			shapes[i] = []int{n.OutC, h, w}
		case OpLinear:
			if len(x) != 1 || x[0] != n.InC {
				return nil, bad(fmt.Sprintf("expects %d input features", n.InC))
			}
			shapes[i] = []int{n.OutC}
		case OpBatchNorm2d, OpBatchNorm1d:
			want := 3
			if n.Op == OpBatchNorm1d {
				want = 1
			}
			if len(x) != want || x[0] != n.OutC {
				return nil, bad(fmt.Sprintf("expects %d channels", n.OutC))
			}
			shapes[i] = x
		case OpReLU:
			shapes[i] = x
		case OpMaxPool2d, OpAvgPool2d:
			if len(x) != 3 {
				return nil, bad("expects an image")
			}
			h := (x[1]+2*n.Padding-n.Kernel)/n.Stride + 1
			w := (x[2]+2*n.Padding-n.Kernel)/n.Stride + 1
			if h <= 0 || w <= 0 || x[1]+2*n.Padding < n.Kernel || x[2]+2*n.Padding < n.Kernel {
				return nil, bad("has an empty output")
			}
			shapes[i] = []int{x[0], h, w}
		case OpGlobalAvgPool:
			if len(x) != 3 {
				return nil, bad("expects an image")
			}
			shapes[i] = []int{x[0]}
		case OpFlatten:
			shapes[i] = []int{x[0] * prod(x[1:])}
		case OpShortcutA:
			if len(x) != 3 || x[0] != n.InC || n.OutC < n.InC {
				return nil, bad(fmt.Sprintf("expects %d channels", n.InC))
			}
			shapes[i] = []int{n.OutC, (x[1]-1)/n.Stride + 1, (x[2]-1)/n.Stride + 1}
		case OpAdd:
			for _, j := range n.Inputs[1:] {
				if fmt.Sprint(get(j)) != fmt.Sprint(x) {
					return nil, bad(fmt.Sprintf("adds mismatched shapes %v and %v", x, get(j)))
				}
			}
			shapes[i] = x
		default:
			return nil, fmt.Errorf("%w: node %s has unknown op %q", ErrBadConfig, n.Name, n.Op)
		}
	}
	if out := shapes[len(shapes)-1]; len(out) != 1 || out[0] != s.Classes {
		return nil, fmt.Errorf("%w: %s ends in shape %v, want [%d]", ErrBadConfig, s.Arch, out, s.Classes)
	}
	return shapes, nil
}

func prod(xs []int) int {
	p := 1
	for _, x := range xs {
		p *= x
	}
	return p
}
