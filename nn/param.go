package nn

import "github.com/tnn-go/tnn/tensor"

// Param is a trainable tensor with its gradient, named as in PyTorch's
// state_dict ("stage_1.0.conv_a.weight"). For ternarized layers Data is the
// latent full-precision weight; the forward pass only ever sees its
// ternarization, and Grad is the straight-through gradient for Data.
type Param struct {
	Name string
	Data *tensor.Tensor
	Grad *tensor.Tensor
}

// NewParam allocates a parameter and its zero gradient.
func NewParam(name string, shape ...int) *Param {
	return &Param{Name: name, Data: tensor.New(shape...), Grad: tensor.New(shape...)}
}
