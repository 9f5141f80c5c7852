package infer

import (
	"fmt"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
)

type stepKind int

const (
	stepConv stepKind = iota // conv2d or linear, with folded BatchNorm and maybe ReLU
	stepReLU
	stepAdd // maybe with a fused ReLU
	stepShortcut
	stepMaxPool
	stepAvgPool
	stepGlobalAvgPool
	stepFlatten // NHWC → CHW order
)

// step is one computation of the plan: what it reads and writes are worker
// buffer indices.
type step struct {
	kind stepKind
	in   []int
	out  int
	relu bool
	// accum: a conv step adds its result to in[1], in place, and so
	// computes a residual sum (see fuseResidual).
	accum bool
	conv  *convLayer
	// Geometry of the input (c, h, w) and output (oc, ho, wo) of the
	// element-wise and pooling steps.
	c, h, w, oc, ho, wo int
	k, stride, pad      int
	outLen              int // output elements
}

// plan turns the Spec into steps: BatchNorms and the ReLUs that alone
// follow a layer or a sum disappear into the step before them, and values
// share buffers once they are no longer read.
func (e *Engine) plan() error {
	m, s := e.Model, e.spec
	shapes, err := s.Shapes()
	if err != nil {
		return err
	}
	nodes := s.Nodes
	input := len(nodes) // value id of the network input
	shapeOf := func(v int) []int {
		if v == input {
			return []int{s.InC, s.H, s.W}
		}
		return shapes[v]
	}
	consumers := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, j := range n.Inputs {
			if j != models.Input {
				consumers[j] = append(consumers[j], i)
			}
		}
	}
	layerOf := make([]int, len(nodes))
	for i := range layerOf {
		layerOf[i] = -1
	}
	for li, l := range m.Layers {
		layerOf[l.Node] = li
	}
	// val[i] is the value (producing node) whose buffer holds node i's output.
	val := make([]int, len(nodes))
	for i := range val {
		val[i] = -1
	}
	valOf := func(j int) int {
		if j == models.Input {
			return input
		}
		return val[j]
	}
	// soleReLU returns the ReLU node that alone consumes node i, or -1.
	soleReLU := func(i int) int {
		if len(consumers[i]) == 1 {
			if r := consumers[i][0]; nodes[r].Op == models.OpReLU && len(nodes[r].Inputs) == 1 {
				return r
			}
		}
		return -1
	}
	nonneg := make([]bool, len(nodes)+1)
	var steps []step
	for i, n := range nodes {
		if val[i] >= 0 {
			continue // folded into an earlier step
		}
		x := valOf(n.Inputs[0])
		inShape := shapeOf(x)
		st := step{in: []int{x}, out: i}
		switch n.Op {
		case models.OpConv2d, models.OpLinear:
			l := &m.Layers[layerOf[i]]
			end := i
			if l.BN >= 0 {
				end = l.BN
				val[l.BN] = i
			}
			if r := soleReLU(end); r >= 0 {
				st.relu = true
				val[r] = i
			}
			c, err := newConvLayer(e, l, n, inShape, nonneg[x])
			if err != nil {
				return err
			}
			st.kind, st.conv = stepConv, c
			nonneg[i] = st.relu
		case models.OpBatchNorm1d, models.OpBatchNorm2d:
			// packed.Layout folds every BatchNorm; Validate has checked it.
			return fmt.Errorf("%w: BatchNorm %s is not folded", packed.ErrInvalid, n.Name)
		case models.OpReLU:
			st.kind = stepReLU
			nonneg[i] = true
		case models.OpAdd:
			st.kind = stepAdd
			st.in = st.in[:0]
			nonneg[i] = true
			for _, j := range n.Inputs {
				st.in = append(st.in, valOf(j))
				nonneg[i] = nonneg[i] && nonneg[valOf(j)]
			}
			if r := soleReLU(i); r >= 0 {
				st.relu = true
				val[r] = i
				nonneg[i] = true
			}
		case models.OpShortcutA, models.OpMaxPool2d, models.OpAvgPool2d, models.OpGlobalAvgPool:
			st.kind = map[models.Op]stepKind{models.OpShortcutA: stepShortcut, models.OpMaxPool2d: stepMaxPool,
				models.OpAvgPool2d: stepAvgPool, models.OpGlobalAvgPool: stepGlobalAvgPool}[n.Op]
			nonneg[i] = nonneg[x]
		case models.OpFlatten:
			nonneg[i] = nonneg[x]
			if len(inShape) != 3 || inShape[1]*inShape[2] == 1 {
				val[i] = x // NHWC and CHW orders agree
				continue
			}
			st.kind = stepFlatten
		default:
			return fmt.Errorf("%w: node %s has op %q", packed.ErrUnsupported, n.Name, n.Op)
		}
		if len(inShape) == 3 {
			st.c, st.h, st.w = inShape[0], inShape[1], inShape[2]
		}
		if sh := shapes[i]; len(sh) == 3 {
			st.oc, st.ho, st.wo = sh[0], sh[1], sh[2]
		}
		st.k, st.stride, st.pad = n.Kernel, n.Stride, n.Padding
		st.outLen = tensor.Numel(shapes[i])
		val[i] = i
		steps = append(steps, st)
	}
	last := val[len(nodes)-1]
	steps = fuseResidual(steps, input)

	// Buffers by liveness: a value's buffer is free once the step that
	// reads it last is done; a step writes a buffer it reads only when it
	// accumulates into it (then the buffer passes to its output).
	lastUse := make([]int, len(nodes)+1)
	for i := range lastUse {
		lastUse[i] = -1
	}
	for t, st := range steps {
		for _, v := range st.in {
			lastUse[v] = t
		}
	}
	lastUse[last] = len(steps)
	bufOf := make([]int, len(nodes)+1)
	var free []int
	alloc := func() int {
		if len(free) > 0 {
			b := free[len(free)-1]
			free = free[:len(free)-1]
			return b
		}
		e.nbuf++
		return e.nbuf - 1
	}
	e.bufLen = tensor.Numel(shapeOf(input))
	e.inBuf = alloc()
	bufOf[input] = e.inBuf
	if lastUse[input] < 0 {
		free = append(free, e.inBuf)
	}
	for t := range steps {
		st := &steps[t]
		v := st.out
		e.bufLen = max(e.bufLen, tensor.Numel(shapes[v]))
		released := map[int]bool{}
		if st.accum {
			bufOf[v] = bufOf[st.in[1]]
			released[st.in[1]] = true // now v's
		} else {
			bufOf[v] = alloc()
		}
		st.out = bufOf[v]
		for k, u := range st.in {
			st.in[k] = bufOf[u]
			if lastUse[u] == t && !released[u] {
				released[u] = true
				free = append(free, bufOf[u])
			}
		}
		if lastUse[v] < 0 && v != last {
			free = append(free, bufOf[v]) // never read
		}
	}
	e.outBuf = bufOf[last]
	e.steps = steps
	if total := e.nbuf*e.bufLen + e.qLen/4 + e.fLen + e.colLen; total > maxScratch || e.bufLen > maxScratch {
		return fmt.Errorf("%w: more than %d activations per image", ErrTooLarge, maxScratch)
	}
	return nil
}

// fuseResidual folds a sum of a convolution's output and another value
// into the convolution: its epilogue adds the other value, in that value's
// buffer, so the sum costs no pass of its own. That needs the conv output
// to be read by the sum alone, and the other value to be computed before
// the conv and read by nothing after it (but the sum).
func fuseResidual(steps []step, input int) []step {
	steps = hoistShortcuts(steps, input)
	producer := map[int]int{input: -1}
	readers := map[int][]int{}
	for t, st := range steps {
		producer[st.out] = t
		for _, v := range st.in {
			readers[v] = append(readers[v], t)
		}
	}
	drop := make([]bool, len(steps))
	for t := range steps {
		st := &steps[t]
		if st.kind != stepAdd || len(st.in) != 2 {
			continue
		}
		for _, ord := range [][2]int{{0, 1}, {1, 0}} {
			a, b := st.in[ord[0]], st.in[ord[1]]
			ta, ok := producer[a]
			if !ok || ta < 0 || a == b || len(readers[a]) != 1 {
				continue
			}
			conv := &steps[ta]
			if conv.kind != stepConv || conv.relu || conv.accum || len(conv.in) != 1 {
				continue
			}
			tb, ok := producer[b]
			if !ok || tb >= ta {
				continue
			}
			later := false
			for _, r := range readers[b] {
				later = later || (r > ta && r != t)
			}
			if later {
				continue
			}
			conv.in = append(conv.in, b)
			conv.accum, conv.relu, conv.out = true, st.relu, st.out
			drop[t] = true
			// The sum's readers now read the conv's output.
			producer[st.out] = ta
			readers[b] = append(readers[b], ta)
			break
		}
	}
	out := steps[:0]
	for t, st := range steps {
		if !drop[t] {
			out = append(out, st)
		}
	}
	return out
}

// hoistShortcuts moves the step computing the other operand of a sum with
// a convolution's output before that convolution when its own inputs allow
// (ResNet's shortcut_a comes after conv_b in the Spec), so that
// fuseResidual can fold the sum.
func hoistShortcuts(steps []step, input int) []step {
	for t := range steps {
		producer := map[int]int{input: -1}
		for k, st := range steps {
			producer[st.out] = k
		}
		st := steps[t]
		if st.kind != stepAdd || len(st.in) != 2 {
			continue
		}
		for _, ord := range [][2]int{{0, 1}, {1, 0}} {
			ta, tb := producer[st.in[ord[0]]], producer[st.in[ord[1]]]
			if ta < 0 || steps[ta].kind != stepConv || tb <= ta || tb >= t {
				continue
			}
			ready := true
			for _, v := range steps[tb].in {
				ready = ready && producer[v] < ta
			}
			if !ready {
				continue
			}
			moved := steps[tb]
			copy(steps[ta+1:tb+1], steps[ta:tb])
			steps[ta] = moved
			break
		}
	}
	return steps
}
