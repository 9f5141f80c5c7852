package train

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tnn-go/tnn/checkpoint"
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/pth"
)

// LoadCheckpoint reads a --resume file: a tnn checkpoint (.safetensors), or
// a PyTorch file (.pth, .pth.tar, .pt; either torch.save container,
// recognised by its content). A PyTorch file comes back as a Checkpoint
// with its state_dict and no Info, plus what pth read from it.
func LoadCheckpoint(path string) (*checkpoint.Checkpoint, *pth.File, error) {
	if pth.Detect(path) {
		f, err := pth.Load(path)
		if err != nil {
			return nil, nil, err
		}
		return &checkpoint.Checkpoint{Model: f.StateDict}, f, nil
	}
	ck, err := checkpoint.Load(path)
	if errors.Is(err, checkpoint.ErrNotCheckpoint) {
		err = fmt.Errorf("%w, nor a PyTorch file (torch.save's zip or legacy format)", err)
	}
	return ck, nil, err
}

// openCheckpoint reads --resume, or with --pretrained fetches torchvision's
// weights for --arch. A PyTorch file's own "arch" entry (the seed saves one)
// stands in for a missing --arch.
func (s *session) openCheckpoint() (*checkpoint.Checkpoint, error) {
	cfg := &s.cfg
	if cfg.Pretrained {
		arch := cfg.Arch
		if arch == "" {
			arch = Defaults().Arch
		}
		p, err := pth.Pretrained(arch, s.out)
		if err != nil {
			return nil, fmt.Errorf("--pretrained: %w", err)
		}
		f, err := pth.Load(p)
		if err != nil {
			return nil, fmt.Errorf("%w: --pretrained: %v", ErrCheckpoint, err)
		}
		s.imported = f
		s.notes = append(s.notes, fmt.Sprintf("pretrained: torchvision's weights %s (%d tensors)", p, len(f.StateDict)))
		return &checkpoint.Checkpoint{Model: f.StateDict}, nil
	}
	ck, f, err := LoadCheckpoint(cfg.Resume)
	if err != nil {
		return nil, fmt.Errorf("%w: --resume %s: %v", ErrCheckpoint, cfg.Resume, err)
	}
	if f == nil {
		return ck, nil
	}
	s.imported = f
	if cfg.Arch == "" && slices.Contains(models.Names(), f.Arch) {
		cfg.Arch = f.Arch
	}
	what := fmt.Sprintf("PyTorch %s file, %d tensors (%s)", f.Format, len(f.StateDict), f.DtypeSummary())
	if f.Key != "" {
		what += fmt.Sprintf(" under %q", f.Key)
	}
	if f.Prefix != "" {
		what += fmt.Sprintf(", %q prefix removed", f.Prefix)
	}
	if len(f.Skipped) > 0 {
		what += "; not used: " + strings.Join(f.Skipped, ", ")
		if slices.Contains(f.Skipped, "optimizer") {
			what += " (PyTorch optimizer state is not imported: momentum and Adam moments start at zero)"
		}
	}
	s.notes = append(s.notes, fmt.Sprintf("--resume %s: %s", cfg.Resume, what))
	return ck, nil
}

// loadWeights copies ck's model into the network. Imported PyTorch weights
// and --fine_tune go through pth.Fit: when fine-tuning (or starting from
// --pretrained) a classifier for another number of classes is replaced by
// a fresh one. A PyTorch file resumed without --fine_tune starts at its
// "epoch" entry, as the seed's main.py does.
func (s *session) loadWeights(ck *checkpoint.Checkpoint) error {
	cfg := &s.cfg
	src := "--resume " + cfg.Resume
	if cfg.Pretrained {
		src = "--pretrained"
	}
	newHead := cfg.FineTune || cfg.Pretrained
	sd, notes := pth.Fit(s.net, ck.Model, pth.FitOptions{NewClassifier: newHead})
	if err := s.net.LoadStateDict(sd); err != nil {
		hint := ""
		if _, head := pth.Fit(s.net, ck.Model, pth.FitOptions{NewClassifier: true}); !newHead && len(head) > len(notes) {
			hint = fmt.Sprintf("; to train a new %d-class classifier on these weights add --fine_tune, to keep the file's give --num_classes", s.net.Spec.Classes)
		}
		first := s.net.Spec.Nodes[0]
		for _, e := range ck.Model {
			if e.Name == first.Name+".weight" && len(e.T.Shape) == 4 && e.T.Shape[1] != first.InC {
				hint += fmt.Sprintf("; the weights take %d-channel images, dataset %s has %d", e.T.Shape[1], cfg.Dataset, first.InC)
			}
		}
		return fmt.Errorf("%w: %s: %v%s", ErrCheckpoint, src, err, hint)
	}
	s.notes = append(s.notes, notes...)
	if s.imported != nil && !newHead && !cfg.Evaluate && s.imported.Epoch > 0 {
		s.info.Epoch = s.imported.Epoch
		s.notes = append(s.notes, fmt.Sprintf("starting at the file's epoch %d", s.imported.Epoch))
	}
	if cfg.Evaluate {
		for _, n := range s.notes {
			fmt.Fprintln(s.out, n)
		}
		s.notes = nil
	}
	return nil
}
