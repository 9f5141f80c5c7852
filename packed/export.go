package packed

import (
	"fmt"
	"math"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/nn"
)

// Options describe what a Net does not know about itself.
type Options struct {
	Packing    Packing
	TFactor    float64
	TEx        int
	Dataset    string
	Norm       Norm
	ClassNames []string
}

// FromNet packs a network in eval mode: each ternary layer's latent weight is
// ternarized as its forward pass does, and each BatchNorm that alone
// consumes a conv or linear output is folded into it.
func FromNet(net *models.Net, o Options) (*Model, error) {
	s := net.Spec
	if o.TEx == 0 {
		o.TEx = 1
	}
	codec, err := NewCodec(o.Packing, o.TEx)
	if err != nil {
		return nil, err
	}
	m := &Model{Meta: Meta{Spec: s, Dataset: o.Dataset, Norm: o.Norm, ClassNames: o.ClassNames,
		TFactor: o.TFactor, TEx: o.TEx, Packing: o.Packing}}
	layout, err := Layout(s)
	if err != nil {
		return nil, err
	}
	for _, layer := range layout {
		i := layer.Node
		n := s.Nodes[i]
		var w []float32
		var bias *nn.Param
		switch l := net.Layers[i].(type) {
		case *nn.Conv2d:
			w, bias = l.Weight.Data.Data, l.Bias
		case *nn.Linear:
			w, bias = l.Weight.Data.Data, l.Bias
		default:
			return nil, fmt.Errorf("%w: node %s is not a conv or linear layer", ErrInvalid, n.Name)
		}
		outC := n.OutC
		scale := make([]float32, outC)
		shift := make([]float32, outC)
		for c := range scale {
			scale[c] = 1
		}
		if bias != nil {
			copy(shift, bias.Data.Data)
		}
		if layer.BN >= 0 {
			bn, ok := net.Layers[layer.BN].(*nn.BatchNorm)
			if !ok {
				return nil, fmt.Errorf("%w: node %s is not a BatchNorm layer", ErrInvalid, s.Nodes[layer.BN].Name)
			}
			for c := range scale {
				// Same float32 rounding of 1/sqrt(var+eps) as the BatchNorm's eval pass.
				inv := float32(1 / math.Sqrt(float64(bn.RunningVar.Data[c])+float64(bn.Eps)))
				sc := inv * bn.Weight.Data.Data[c]
				shift[c] = (shift[c]-bn.RunningMean.Data[c])*sc + bn.Bias.Data.Data[c]
				scale[c] = sc
			}
		}
		if layer.HasBias {
			layer.Bias = shift
		}
		rowLen := len(w) / outC
		if q := net.Quant[i]; q != nil {
			if len(q.Factors) != o.TEx {
				return nil, fmt.Errorf("%w: layer %s has t_ex %d, options say %d", ErrInvalid, n.Name, len(q.Factors), o.TEx)
			}
			tmp := make([]float32, len(w))
			q.Quantize(w, tmp)
			layer.Alpha = append([]float32(nil), q.Alpha...)
			layer.Threshold = append([]float32(nil), q.Threshold...)
			levels := make([]int8, len(w))
			for k, v := range w {
				av := float32(math.Abs(float64(v)))
				var lv int8
				for _, th := range q.Threshold {
					if av >= th {
						lv++
					}
				}
				if v < 0 {
					lv = -lv
				}
				levels[k] = lv
			}
			if layer.Codes, err = codec.Pack(levels); err != nil {
				return nil, err
			}
			if layer.BN >= 0 {
				layer.Scale = scale
			}
		} else {
			layer.Weight = make([]float32, len(w))
			for r := 0; r < outC; r++ {
				for k := 0; k < rowLen; k++ {
					layer.Weight[r*rowLen+k] = w[r*rowLen+k] * scale[r]
				}
			}
		}
		m.Layers = append(m.Layers, layer)
	}
	return m, nil
}
