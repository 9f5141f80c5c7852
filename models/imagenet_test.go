package models

import "testing"

// specParams counts trainable parameters from a Spec alone (no allocation).
func specParams(s *Spec) int {
	n := 0
	for _, nd := range s.Nodes {
		switch nd.Op {
		case OpConv2d:
			n += nd.OutC * nd.InC * nd.Kernel * nd.Kernel
		case OpLinear:
			n += nd.OutC * nd.InC
		case OpBatchNorm2d, OpBatchNorm1d:
			n += 2 * nd.OutC
		}
		if nd.Bias {
			n += nd.OutC
		}
	}
	return n
}

// TestImageNetModels checks each seed architecture at 224×224 against the
// parameter counts torchvision reports (ResNets) and method.md's AlexNet,
// and which layers each seed name ternarizes.
func TestImageNetModels(t *testing.T) {
	cfg := Config{InC: 3, H: 224, W: 224, Classes: 1000}
	alex := 3*96*121 + 96*256*25 + 256*384*9 + 384*384*9 + 384*256*9 + 2*(96+256+384+384+256) +
		9216*4096 + 4096*4096 + 2*2*4096 + 4096*1000 + 1000
	for _, c := range []struct {
		arch          string
		params        int
		first, last   bool // conv1/fc ternary
		middleTernary bool
		tex           int
	}{
		{"resnet18", 11689512, false, false, false, 0},
		{"resnet34", 21797672, false, false, false, 0},
		{"resnet50", 25557032, false, false, false, 0},
		{"resnet101", 44549160, false, false, false, 0},
		{"resnet18b_fq_lq_tex1", 11689512, true, true, true, 1},
		{"resnet50b_ff_lf_tex1", 25557032, false, false, true, 1},
		{"resnet101b_fq_lq_tex1", 44549160, true, true, true, 1},
		{"resnet18b_fq_lq_tern_tex_4", 11689512, true, true, true, 4},
		{"alexnet_vanilla", alex, false, false, false, 0},
		{"tern_alexnet_ff_lf", alex, false, false, true, 0},
		{"tern_alexnet_fq_lq", alex, true, true, true, 0},
	} {
		s, err := New(c.arch, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Shapes(); err != nil {
			t.Fatalf("%s: %v", c.arch, err)
		}
		if got := specParams(s); got != c.params {
			t.Errorf("%s: %d parameters, want %d", c.arch, got, c.params)
		}
		var convs, linears []Node
		for _, nd := range s.Nodes {
			switch nd.Op {
			case OpConv2d:
				convs = append(convs, nd)
			case OpLinear:
				linears = append(linears, nd)
			}
		}
		firstN, lastN := convs[0], linears[len(linears)-1]
		if firstN.Ternary != c.first || lastN.Ternary != c.last || convs[1].Ternary != c.middleTernary {
			t.Errorf("%s: ternary first %v middle %v last %v, want %v %v %v", c.arch, firstN.Ternary, convs[1].Ternary, lastN.Ternary, c.first, c.middleTernary, c.last)
		}
		if s.TEx != c.tex {
			t.Errorf("%s: t_ex %d, want %d", c.arch, s.TEx, c.tex)
		}
	}
}

// TestImageNetNames spot-checks torchvision's state_dict names.
func TestImageNetNames(t *testing.T) {
	s, _ := New("resnet50", Config{InC: 3, H: 64, W: 64, Classes: 10})
	names := map[string]bool{}
	for _, nd := range s.Nodes {
		names[nd.Name] = true
	}
	for _, n := range []string{"conv1", "bn1", "layer1.0.conv3", "layer1.0.downsample.0", "layer1.0.downsample.1", "layer4.2.bn3", "fc"} {
		if !names[n] {
			t.Errorf("resnet50 lacks %s", n)
		}
	}
	a, _ := New("alexnet_vanilla", Config{InC: 3, H: 224, W: 224, Classes: 1000})
	for _, nd := range a.Nodes {
		if nd.Op == OpConv2d && nd.Name == "features.0" && nd.Kernel == 11 {
			return
		}
	}
	t.Error("alexnet's first conv is not features.0 (11×11)")
}
