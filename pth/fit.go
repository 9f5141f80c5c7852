package pth

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/tensor"
)

// FitOptions choose how Fit adapts a state_dict to a network.
type FitOptions struct {
	// NewClassifier keeps the network's own (freshly initialised)
	// classifier when the state_dict's has another shape: fine-tuning
	// ImageNet weights on a dataset with other classes.
	NewClassifier bool
}

// Fit adapts an imported state_dict to net before net.LoadStateDict, which
// still reports every other difference (missing, unexpected and mis-shaped
// tensors, by name):
//
//   - BatchNorm's num_batches_tracked, which files saved before PyTorch 0.4.1
//     (torchvision's pretrained ResNets among them) lack, is taken from net
//     when every counter is missing, as PyTorch's own loader does;
//   - with o.NewClassifier, a classifier (the last layer) whose weight shape
//     differs from net's is replaced by net's own.
//
// Package models uses torchvision's module names for its ImageNet models,
// ternary variants included, so no renaming is needed. Fit returns the
// state_dict to load and one note per change, for the log.
func Fit(net *models.Net, sd []tensor.Named, o FitOptions) ([]tensor.Named, []string) {
	have := map[string]*tensor.Tensor{}
	for _, e := range sd {
		have[e.Name] = e.T
	}
	own := net.StateDict()
	out := append([]tensor.Named(nil), sd...)
	var notes []string

	var counters []string
	anyCounter := false
	for _, e := range own {
		if strings.HasSuffix(e.Name, ".num_batches_tracked") {
			if _, ok := have[e.Name]; ok {
				anyCounter = true
			} else {
				counters = append(counters, e.Name)
			}
		}
	}
	if !anyCounter && len(counters) > 0 {
		for _, name := range counters {
			for _, e := range own {
				if e.Name == name {
					out = append(out, tensor.Named{Name: name, T: e.T.Clone()})
				}
			}
		}
		notes = append(notes, fmt.Sprintf("the file has no BatchNorm num_batches_tracked (saved before PyTorch 0.4.1); %d counters start at 0", len(counters)))
	}

	if o.NewClassifier {
		last := net.Spec.Nodes[len(net.Spec.Nodes)-1]
		w, b := last.Name+".weight", last.Name+".bias"
		var mine *tensor.Tensor
		for _, e := range own {
			if e.Name == w {
				mine = e.T
			}
		}
		if theirs, ok := have[w]; ok && mine != nil && !tensor.SameShape(theirs.Shape, mine.Shape) {
			replace := map[string]*tensor.Tensor{}
			for _, e := range own {
				if e.Name == w || e.Name == b {
					replace[e.Name] = e.T.Clone()
				}
			}
			kept := out[:0]
			for _, e := range out {
				if _, ok := replace[e.Name]; !ok {
					kept = append(kept, e)
				}
			}
			out = kept
			names := make([]string, 0, len(replace))
			for n := range replace {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				out = append(out, tensor.Named{Name: n, T: replace[n]})
			}
			from := "?"
			if len(theirs.Shape) == 2 {
				from = fmt.Sprint(theirs.Shape[0])
			}
			notes = append(notes, fmt.Sprintf("classifier %s: the file's has %s outputs (weight %v), the model %d; it keeps its fresh initialisation and is trained from scratch",
				last.Name, from, theirs.Shape, net.Spec.Classes))
		}
	}
	return out, notes
}
