// Package infer runs a packed model (package packed) straight from its
// packed weights. A ternary convolution or linear layer never multiplies by
// a weight: per output channel it decodes one row of levels into a small
// buffer of input indices, adds the im2col rows at +m positions, subtracts
// those at -m positions, and applies the channel's scale (BatchNorm folded
// with α) and bias once. Full-precision layers use gemm.Sgemm. Activations
// are float32; BatchNorm is folded away, the other ops follow the Spec.
package infer

import (
	"errors"
	"fmt"

	"github.com/tnn-go/tnn/gemm"
	"github.com/tnn-go/tnn/internal/parallel"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/nn"
	"github.com/tnn-go/tnn/packed"
	"github.com/tnn-go/tnn/tensor"
)

var (
	// ErrInput reports an input whose shape the model does not take.
	ErrInput = errors.New("infer: input shape does not match the model")
	// ErrTooLarge reports a model whose activations would not fit in memory.
	ErrTooLarge = errors.New("infer: model too large")
)

// maxScratch bounds the float32 scratch of one worker (1 GiB), so that a
// crafted Spec with enormous activations is refused rather than allocated.
const maxScratch = 1 << 28

// Engine runs one packed model. Forward is not safe for concurrent use.
type Engine struct {
	Model  *packed.Model
	spec   *models.Spec
	shapes [][]int
	sizes  []int // per node, output elements per image
	layer  []int // per node, its index in Model.Layers or -1
	alias  []int // per node, the node whose buffer it shares (folded BN, flatten), or itself
	codec  *packed.Codec
	// coef holds, per ternary layer, OutC×k multipliers scale_c·(α_1+…+α_m).
	coef    [][]float32
	maxCol  int
	maxRow  int
	workers []*worker
}

// worker is the per-goroutine scratch: one buffer per node for one image,
// an im2col buffer, a decoded row and its index lists.
type worker struct {
	outs  [][]float32
	col   []float32
	lv    []int8
	idx   []int32
	accs  []float32
	input []float32
}

// New prepares a model for inference.
func New(m *packed.Model) (*Engine, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	s := m.Spec
	shapes, err := s.Shapes()
	if err != nil {
		return nil, err
	}
	codec, err := m.Codec()
	if err != nil {
		return nil, err
	}
	e := &Engine{Model: m, spec: s, shapes: shapes, codec: codec}
	k := len(s.Nodes)
	e.sizes = make([]int, k)
	e.layer = make([]int, k)
	e.alias = make([]int, k)
	e.coef = make([][]float32, len(m.Layers))
	for i := range e.layer {
		e.layer[i], e.alias[i] = -1, i
		e.sizes[i] = tensor.Numel(shapes[i])
	}
	for li, l := range m.Layers {
		e.layer[l.Node] = li
		if l.BN >= 0 {
			e.alias[l.BN] = l.Node
		}
		n := s.Nodes[l.Node]
		rowLen := n.InC
		if n.Op == models.OpConv2d {
			rowLen *= n.Kernel * n.Kernel
			e.maxCol = max(e.maxCol, rowLen*shapes[l.Node][1]*shapes[l.Node][2])
		}
		e.maxRow = max(e.maxRow, rowLen)
		if l.Ternary {
			tex := len(l.Alpha)
			c := make([]float32, n.OutC*tex)
			for o := 0; o < n.OutC; o++ {
				var a float32
				sc := float32(1)
				if l.Scale != nil {
					sc = l.Scale[o]
				}
				for j := 0; j < tex; j++ {
					a += l.Alpha[j]
					c[o*tex+j] = sc * a
				}
			}
			e.coef[li] = c
		}
	}
	// Nodes are in topological order, so an alias target is already resolved.
	total := e.maxCol
	for i := range s.Nodes {
		if e.alias[i] == i {
			total += e.sizes[i]
		}
		if total > maxScratch {
			return nil, fmt.Errorf("%w: more than %d activations per image", ErrTooLarge, maxScratch)
		}
	}
	for i, n := range s.Nodes {
		if n.Op == models.OpFlatten && n.Inputs[0] != models.Input {
			e.alias[i] = n.Inputs[0]
		}
		e.alias[i] = e.alias[e.alias[i]]
	}
	return e, nil
}

func (e *Engine) newWorker() *worker {
	w := &worker{outs: make([][]float32, len(e.spec.Nodes))}
	for i := range e.spec.Nodes {
		if e.alias[i] == i {
			w.outs[i] = make([]float32, e.sizes[i])
		}
	}
	w.col = make([]float32, e.maxCol)
	w.lv = make([]int8, e.maxRow)
	w.idx = make([]int32, e.maxRow)
	return w
}

// Forward runs x (N×C×H×W, normalised) and returns the logits (N×classes).
func (e *Engine) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	s := e.spec
	if len(x.Shape) != 4 || x.Shape[1] != s.InC || x.Shape[2] != s.H || x.Shape[3] != s.W || len(x.Data) != tensor.Numel(x.Shape) {
		return nil, fmt.Errorf("%w: got %v, want N×%d×%d×%d", ErrInput, x.Shape, s.InC, s.H, s.W)
	}
	n := x.Shape[0]
	out := tensor.New(n, s.Classes)
	for len(e.workers) < parallel.Threads() {
		e.workers = append(e.workers, nil)
	}
	inSz := s.InC * s.H * s.W
	parallel.For(n, func(lo, hi, wk int) {
		if e.workers[wk] == nil {
			e.workers[wk] = e.newWorker()
		}
		w := e.workers[wk]
		for i := lo; i < hi; i++ {
			logits := e.image(w, x.Data[i*inSz:(i+1)*inSz])
			copy(out.Data[i*s.Classes:(i+1)*s.Classes], logits)
		}
	})
	return out, nil
}

// image runs the whole network on one image.
func (e *Engine) image(w *worker, x []float32) []float32 {
	s := e.spec
	get := func(j int) []float32 {
		if j == models.Input {
			return x
		}
		return w.outs[e.alias[j]]
	}
	for i, n := range s.Nodes {
		if e.alias[i] != i {
			continue
		}
		in := get(n.Inputs[0])
		y := w.outs[i]
		var inShape []int
		if n.Inputs[0] == models.Input {
			inShape = []int{s.InC, s.H, s.W}
		} else {
			inShape = e.shapes[n.Inputs[0]]
		}
		switch n.Op {
		case models.OpConv2d, models.OpLinear:
			e.compute(w, i, in, inShape, y)
		case models.OpFlatten:
			copy(y, in)
		case models.OpReLU:
			for j, v := range in {
				y[j] = max(v, 0)
			}
		case models.OpMaxPool2d:
			pool(in, y, inShape, e.shapes[i], n, true)
		case models.OpAvgPool2d:
			pool(in, y, inShape, e.shapes[i], n, false)
		case models.OpGlobalAvgPool:
			hw := inShape[1] * inShape[2]
			for c := range y {
				var sum float32
				for _, v := range in[c*hw : (c+1)*hw] {
					sum += v
				}
				y[c] = sum / float32(hw)
			}
		case models.OpShortcutA:
			h, wd := inShape[1], inShape[2]
			ho, wo := e.shapes[i][1], e.shapes[i][2]
			for c := 0; c < n.OutC; c++ {
				dst := y[c*ho*wo : (c+1)*ho*wo]
				if c >= n.InC {
					clear(dst)
					continue
				}
				src := in[c*h*wd : (c+1)*h*wd]
				for oh := 0; oh < ho; oh++ {
					for ow := 0; ow < wo; ow++ {
						dst[oh*wo+ow] = src[oh*n.Stride*wd+ow*n.Stride]
					}
				}
			}
		case models.OpAdd:
			copy(y, in)
			for _, j := range n.Inputs[1:] {
				for k, v := range get(j) {
					y[k] += v
				}
			}
		}
	}
	return get(len(s.Nodes) - 1)
}

// compute runs conv2d or linear node i on one image into y.
func (e *Engine) compute(w *worker, i int, in []float32, inShape []int, y []float32) {
	n := e.spec.Nodes[i]
	l := &e.Model.Layers[e.layer[i]]
	col, hw, rowLen := in, 1, n.InC
	if n.Op == models.OpConv2d {
		ho, wo := e.shapes[i][1], e.shapes[i][2]
		hw = ho * wo
		rowLen = n.InC * n.Kernel * n.Kernel
		if n.Kernel != 1 || n.Stride != 1 || n.Padding != 0 {
			col = w.col[:rowLen*hw]
			nn.Im2col(in, col, n.InC, inShape[1], inShape[2], n.Kernel, n.Kernel, n.Stride, n.Padding, ho, wo)
		}
	}
	if !l.Ternary {
		gemm.Sgemm(false, false, n.OutC, hw, rowLen, 1, l.Weight, rowLen, col, hw, 0, y, hw)
		if l.Bias != nil {
			for o, b := range l.Bias {
				row := y[o*hw : (o+1)*hw]
				for j := range row {
					row[j] += b
				}
			}
		}
		return
	}
	tex := len(l.Alpha)
	coef := e.coef[e.layer[i]]
	if tex > 1 && len(w.accs) < hw {
		w.accs = make([]float32, hw)
	}
	lv := w.lv[:rowLen]
	for o := 0; o < n.OutC; o++ {
		e.codec.Unpack(l.Codes, o*rowLen, lv)
		row := y[o*hw : (o+1)*hw]
		var b float32
		if l.Bias != nil {
			b = l.Bias[o]
		}
		if tex == 1 {
			clear(row)
			addSub(row, col, hw, w.idx, lv, 1)
			sc := coef[o]
			for j, v := range row {
				row[j] = v*sc + b
			}
			continue
		}
		for j := range row {
			row[j] = b
		}
		acc := w.accs[:hw]
		for m := 1; m <= tex; m++ {
			clear(acc)
			if !addSub(acc, col, hw, w.idx, lv, int8(m)) {
				continue
			}
			sc := coef[o*tex+m-1]
			for j, v := range acc {
				row[j] += v * sc
			}
		}
	}
}

// addSub adds to acc the col rows whose level is +m and subtracts those at
// -m; it reports whether any row was at ±m.
func addSub(acc, col []float32, hw int, idx []int32, lv []int8, m int8) bool {
	np, nn := 0, len(lv)
	for r, v := range lv {
		switch v {
		case m:
			idx[np] = int32(r)
			np++
		case -m:
			nn--
			idx[nn] = int32(r)
		}
	}
	if hw == 1 {
		var s float32
		for _, r := range idx[:np] {
			s += col[r]
		}
		for _, r := range idx[nn:len(lv)] {
			s -= col[r]
		}
		acc[0] += s
		return np > 0 || nn < len(lv)
	}
	addRows(acc, col, hw, idx[:np], 1)
	addRows(acc, col, hw, idx[nn:len(lv)], -1)
	return np > 0 || nn < len(lv)
}

// addRows adds sign × the col rows listed in rows to acc. Four rows go per
// pass so that acc is loaded and stored once per four rows, not per row.
func addRows(acc, col []float32, hw int, rows []int32, sign float32) {
	i := 0
	for ; i+4 <= len(rows); i += 4 {
		a := col[int(rows[i])*hw:][:hw]
		b := col[int(rows[i+1])*hw:][:hw]
		c := col[int(rows[i+2])*hw:][:hw]
		d := col[int(rows[i+3])*hw:][:hw]
		acc := acc[:hw]
		for j := range acc {
			acc[j] += sign * ((a[j] + b[j]) + (c[j] + d[j]))
		}
	}
	for ; i < len(rows); i++ {
		a := col[int(rows[i])*hw:][:hw]
		acc := acc[:hw]
		for j := range acc {
			acc[j] += sign * a[j]
		}
	}
}

// pool runs nn's per-plane max or average pooling over every channel of one image.
func pool(x, y []float32, inShape, outShape []int, n models.Node, isMax bool) {
	c, h, w := inShape[0], inShape[1], inShape[2]
	ho, wo := outShape[1], outShape[2]
	for p := 0; p < c; p++ {
		src, dst := x[p*h*w:(p+1)*h*w], y[p*ho*wo:(p+1)*ho*wo]
		if isMax {
			nn.MaxPoolPlane(src, dst, nil, h, w, n.Kernel, n.Stride, n.Padding)
		} else {
			nn.AvgPoolPlane(src, dst, h, w, n.Kernel, n.Stride, n.Padding)
		}
	}
}
