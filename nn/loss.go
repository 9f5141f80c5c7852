package nn

import (
	"math"

	"github.com/tnn-go/tnn/tensor"
)

// CrossEntropy is softmax cross-entropy averaged over the batch, as
// PyTorch's F.cross_entropy with reduction "mean".
type CrossEntropy struct {
	dx *tensor.Tensor
}

// Forward returns the mean loss and keeps dL/dlogits for Backward. Labels
// must lie in [0, classes).
func (ce *CrossEntropy) Forward(logits *tensor.Tensor, labels []int32) float64 {
	n, k := logits.Shape[0], logits.Shape[1]
	ce.dx = ensure(ce.dx, n, k)
	var total float64
	for i := 0; i < n; i++ {
		row := logits.Data[i*k : (i+1)*k]
		g := ce.dx.Data[i*k : (i+1)*k]
		m := row[0]
		for _, v := range row {
			m = max(m, v)
		}
		var s float64
		for j, v := range row {
			e := math.Exp(float64(v - m))
			g[j] = float32(e)
			s += e
		}
		y := labels[i]
		total += math.Log(s) - float64(row[y]-m)
		inv := 1 / (s * float64(n))
		for j := range g {
			g[j] = float32(float64(g[j]) * inv)
		}
		g[y] -= 1 / float32(n)
	}
	return total / float64(n)
}

// Backward returns dL/dlogits of the last Forward.
func (ce *CrossEntropy) Backward() *tensor.Tensor { return ce.dx }

// TopK counts the rows whose label is among the k largest logits; ties are
// broken toward the lower class index, as torch.topk does in practice.
func TopK(logits *tensor.Tensor, labels []int32, k int) int {
	n, c := logits.Shape[0], logits.Shape[1]
	hits := 0
	for i := 0; i < n; i++ {
		row := logits.Data[i*c : (i+1)*c]
		y := labels[i]
		v := row[y]
		rank := 0
		for j, u := range row {
			if u > v || (u == v && int32(j) < y) {
				rank++
			}
		}
		if rank < k {
			hits++
		}
	}
	return hits
}
