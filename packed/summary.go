package packed

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tnn-go/tnn/models"
)

// Row is one node of a model summary.
type Row struct {
	Name string
	Op   models.Op
	// Shape is the output shape without the batch dimension.
	Shape []int
	// TernParams counts packed weights; Float32 counts the 32-bit values the
	// packed file holds for the node (α, thresholds, scales, biases,
	// full-precision weights).
	TernParams, Float32 int64
	// Folded marks a BatchNorm folded into the layer before it.
	Folded bool
	// Bytes is the node's share of the file.
	Bytes int64
	// MACs counts multiply-accumulates per image; TernMACs those with a
	// ternary weight, which the runtime does as additions or subtractions.
	MACs, TernMACs int64
	// Sparsity is the fraction of zero weights, or -1 when the weights are not known.
	Sparsity float64
}

// Summary describes a packed model layer by layer.
type Summary struct {
	Arch    string
	TEx     int
	Packing Packing
	Rows    []Row
	// FileBytes is the packed size; HeaderBytes its part outside the layers.
	FileBytes, HeaderBytes int64
	// FloatParams counts the parameters of the trainable float model
	// (weights, biases, BatchNorm γ and β); Float32Bytes is 4× that.
	FloatParams, Float32Bytes int64
	// Estimated is set when no weights were given (sizes are exact, sparsity unknown).
	Estimated bool
}

// Summarize describes a packed model read from a file (or about to be written).
func Summarize(m *Model) (*Summary, error) {
	if m.Size == 0 {
		if _, err := Encode(m); err != nil {
			return nil, err
		}
	}
	return summarize(m, false)
}

// Estimate describes the file FromNet and Encode would write for spec, from
// an all-zero model: sizes are exact up to the metadata (dataset and class names).
func Estimate(spec *models.Spec, tex int, p Packing) (*Summary, error) {
	codec, err := NewCodec(p, tex)
	if err != nil {
		return nil, err
	}
	norm := Norm{Mean: make([]float32, spec.InC), Std: make([]float32, spec.InC)}
	for i := range norm.Std {
		norm.Std[i] = 1
	}
	m := &Model{Meta: Meta{Spec: spec, Norm: norm, TEx: tex, TFactor: 0.05, Packing: p}}
	sizes, err := plan(&m.Meta)
	if err != nil {
		return nil, err
	}
	zeros := make([]int8, 0)
	for _, s := range sizes {
		l := s.Layer
		if l.Ternary {
			l.Alpha, l.Threshold = make([]float32, tex), make([]float32, tex)
			if cap(zeros) < s.weights {
				zeros = make([]int8, s.weights)
			}
			if l.Codes, err = codec.Pack(zeros[:s.weights]); err != nil {
				return nil, err
			}
			if l.BN >= 0 {
				l.Scale = make([]float32, s.outC)
			}
		} else {
			l.Weight = make([]float32, s.weights)
		}
		if l.HasBias {
			l.Bias = make([]float32, s.outC)
		}
		m.Layers = append(m.Layers, l)
	}
	if _, err := Encode(m); err != nil {
		return nil, err
	}
	return summarize(m, true)
}

func summarize(m *Model, estimated bool) (*Summary, error) {
	sizes, err := plan(&m.Meta)
	if err != nil {
		return nil, err
	}
	codec, err := m.Codec()
	if err != nil {
		return nil, err
	}
	shapes, err := m.Spec.Shapes()
	if err != nil {
		return nil, err
	}
	s := &Summary{Arch: m.Spec.Arch, TEx: m.TEx, Packing: m.Packing, FileBytes: m.Size, HeaderBytes: m.HeaderBytes, Estimated: estimated}
	layerOf := map[int]int{}
	foldedBN := map[int]bool{}
	for i, l := range sizes {
		layerOf[l.Node] = i
		if l.BN >= 0 {
			foldedBN[l.BN] = true
		}
	}
	var lv []int8
	for i, n := range m.Spec.Nodes {
		r := Row{Name: n.Name, Op: n.Op, Shape: shapes[i], Sparsity: -1}
		switch n.Op {
		case models.OpConv2d, models.OpLinear:
			li := layerOf[i]
			ls := sizes[li]
			l := m.Layers[li]
			r.Bytes = int64(ls.bytes(codec, m.TEx))
			r.MACs = int64(ls.weights)
			if n.Op == models.OpConv2d {
				r.MACs *= int64(shapes[i][1] * shapes[i][2])
			}
			s.FloatParams += int64(ls.weights)
			if n.Bias {
				s.FloatParams += int64(n.OutC)
			}
			if l.Ternary {
				r.TernParams = int64(ls.weights)
				r.TernMACs = r.MACs
				r.Float32 = int64(2*m.TEx + len(l.Scale))
				if !estimated {
					if cap(lv) < ls.weights {
						lv = make([]int8, ls.weights)
					}
					lv = lv[:ls.weights]
					codec.Unpack(l.Codes, 0, lv)
					z := 0
					for _, v := range lv {
						if v == 0 {
							z++
						}
					}
					r.Sparsity = float64(z) / float64(max(len(lv), 1))
				}
			} else {
				r.Float32 = int64(ls.weights)
			}
			r.Float32 += int64(len(l.Bias))
		case models.OpBatchNorm1d, models.OpBatchNorm2d:
			r.Folded = foldedBN[i]
			s.FloatParams += 2 * int64(n.OutC)
		}
		s.Rows = append(s.Rows, r)
	}
	s.Float32Bytes = 4 * s.FloatParams
	return s, nil
}

// Ratio is the float32 size over the packed size.
func (s *Summary) Ratio() float64 { return float64(s.Float32Bytes) / float64(max(s.FileBytes, 1)) }

// Write prints the table and the totals.
func (s *Summary) Write(w io.Writer) error {
	bitsPer := "2-bit"
	if s.Packing == Dense {
		bitsPer = "base-3"
		if s.TEx > 1 {
			bitsPer = fmt.Sprintf("base-%d", 2*s.TEx+1)
		}
	} else if s.TEx > 1 {
		c, _ := NewCodec(Bits, s.TEx)
		bitsPer = fmt.Sprintf("%d-bit", c.width)
	}
	fmt.Fprintf(w, "%s, t_ex=%d, %s packing\n", s.Arch, s.TEx, bitsPer)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	// Names read better left-aligned and numbers right-aligned; tabwriter
	// aligns all cells one way, so the two text columns are padded here.
	nw, ow := len("layer"), len("op")
	for _, r := range s.Rows {
		nw, ow = max(nw, len(r.Name)), max(ow, len(r.Op))
	}
	left := func(name, op string) string { return fmt.Sprintf("%-*s  %-*s", nw, name, ow, op) }
	fmt.Fprintf(tw, "%s\toutput shape\tternary params\t32-bit params\tmemory (B)\tMACs\tternary MACs\tsparsity\t\n", left("layer", "op"))
	var tern, f32, macs, tmacs int64
	dash := func(v int64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprint(v)
	}
	for _, r := range s.Rows {
		shape := strings.Trim(strings.ReplaceAll(fmt.Sprint(r.Shape), " ", "x"), "[]")
		sp := "-"
		if r.Sparsity >= 0 {
			sp = fmt.Sprintf("%.1f%%", 100*r.Sparsity)
		}
		f := dash(r.Float32)
		if r.Folded {
			f = "folded"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", left(r.Name, string(r.Op)), shape, dash(r.TernParams), f, dash(r.Bytes), dash(r.MACs), dash(r.TernMACs), sp)
		tern += r.TernParams
		f32 += r.Float32
		macs += r.MACs
		tmacs += r.TernMACs
	}
	fmt.Fprintf(tw, "%s\t\t%d\t%d\t%d\t%d\t%d\t\t\n", left("total", ""), tern, f32, s.FileBytes-s.HeaderBytes, macs, tmacs)
	if err := tw.Flush(); err != nil {
		return err
	}
	est := ""
	if s.Estimated {
		est = " (estimated: metadata without dataset and class names)"
	}
	fmt.Fprintf(w, "model size: %d bytes = %d layer bytes + %d header, metadata and checksum%s\n", s.FileBytes, s.FileBytes-s.HeaderBytes, s.HeaderBytes, est)
	fmt.Fprintf(w, "as float32: %d bytes (%d parameters)\n", s.Float32Bytes, s.FloatParams)
	_, err := fmt.Fprintf(w, "compression: %.2fx; ternary MACs: %.1f%% of %d\n", s.Ratio(), 100*float64(tmacs)/float64(max(macs, 1)), macs)
	return err
}
