// Package tensor holds the dense float32 array every layer reads and writes.
//
// Layout is row-major; image tensors are NCHW as in PyTorch, so state_dict
// tensors map onto Data without transposition.
package tensor

import (
	"errors"
	"fmt"
	"math"
)

// ErrShape reports tensors whose shapes do not agree.
var ErrShape = errors.New("tensor: shape mismatch")

// Tensor is a shape and a flat row-major float32 slice of exactly Numel(Shape) elements.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	return &Tensor{Shape: s, Data: make([]float32, Numel(s))}
}

// From wraps data (not copied) as a tensor of the given shape.
func From(data []float32, shape ...int) (*Tensor, error) {
	s := append([]int(nil), shape...)
	if Numel(s) != len(data) {
		return nil, fmt.Errorf("%w: %d values for shape %v", ErrShape, len(data), s)
	}
	return &Tensor{Shape: s, Data: data}, nil
}

// Numel is the number of elements of a shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Dim returns size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{Shape: append([]int(nil), t.Shape...), Data: make([]float32, len(t.Data))}
	copy(c.Data, t.Data)
	return c
}

// Zero sets every element to 0.
func (t *Tensor) Zero() { clear(t.Data) }

// Fill sets every element to v.
func (t *Tensor) Fill(v float32) {
	for i := range t.Data {
		t.Data[i] = v
	}
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Reshape makes t hold shape, reusing its storage when capacity allows.
// Contents are unspecified afterwards. This is how layers keep their
// buffers across steps whose batch size changes (the last, short batch).
func (t *Tensor) Reshape(shape ...int) {
	n := Numel(shape)
	t.Shape = append(t.Shape[:0], shape...)
	if cap(t.Data) >= n {
		t.Data = t.Data[:n]
		return
	}
	t.Data = make([]float32, n)
}

// CopyFrom copies src's values into t; shapes must match.
func (t *Tensor) CopyFrom(src *Tensor) error {
	if !SameShape(t.Shape, src.Shape) {
		return fmt.Errorf("%w: %v vs %v", ErrShape, t.Shape, src.Shape)
	}
	copy(t.Data, src.Data)
	return nil
}

// MaxAbs returns max |x|.
func MaxAbs(x []float32) float32 {
	var m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	return m
}

// AllFinite reports whether no element is NaN or Inf.
func AllFinite(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// Named is a tensor with its state_dict name; ordered lists of them are how
// models, optimizers and checkpoints exchange state.
type Named struct {
	Name string
	T    *Tensor
}
