package models

import "fmt"

// The ImageNet models of the seed, with torchvision's module names so that
// its pretrained weights load as they are: ResNet-18/34 (basic blocks),
// ResNet-50/101 (bottlenecks, stride on the 3×3 conv), and AlexNet with
// BatchNorm. Seed names say which layers are ternary: fq_lq ("first
// quantized, last quantized") ternarizes every conv and linear; ff_lf keeps
// the first conv and the last linear in full precision; tern_tex_k sets t_ex.
func init() {
	for _, r := range []struct {
		depth      int
		bottleneck bool
		blocks     []int
	}{
		{18, false, []int{2, 2, 2, 2}},
		{34, false, []int{3, 4, 6, 3}},
		{50, true, []int{3, 4, 6, 3}},
		{101, true, []int{3, 4, 23, 3}},
	} {
		r := r
		reg := func(name string, first, middle, last bool, tex int) {
			Register(name, func(c Config) (*Spec, error) {
				s := imagenetResNet(r.bottleneck, r.blocks, first, middle, last, c)
				s.TEx = tex
				return s, nil
			})
		}
		reg(fmt.Sprintf("resnet%d", r.depth), false, false, false, 0)
		reg(fmt.Sprintf("resnet%db_fq_lq_tex1", r.depth), true, true, true, 1)
		reg(fmt.Sprintf("resnet%db_ff_lf_tex1", r.depth), false, true, false, 1)
	}
	for _, k := range []int{2, 4} {
		k := k
		Register(fmt.Sprintf("resnet18b_fq_lq_tern_tex_%d", k), func(c Config) (*Spec, error) {
			s := imagenetResNet(false, []int{2, 2, 2, 2}, true, true, true, c)
			s.TEx = k
			return s, nil
		})
	}
	Register("alexnet_vanilla", func(c Config) (*Spec, error) { return alexnetBN(false, false, false, c), nil })
	Register("tern_alexnet_fq_lq", func(c Config) (*Spec, error) { return alexnetBN(true, true, true, c), nil })
	Register("tern_alexnet_ff_lf", func(c Config) (*Spec, error) { return alexnetBN(false, true, false, c), nil })
}

// imagenetResNet is torchvision's ResNet: conv1 7×7/2, bn1, relu, maxpool
// 3×3/2, layer1..layer4, global average pool, fc. first/middle/last choose
// ternarization of conv1, everything in between, and fc.
func imagenetResNet(bottleneck bool, blocks []int, first, middle, last bool, c Config) *Spec {
	b := &builder{s: &Spec{InC: c.InC, H: c.H, W: c.W, Classes: c.Classes}}
	x := b.conv("conv1", Input, c.InC, 64, 7, 2, 3, false, first)
	x = b.bn2d("bn1", x, 64)
	x = b.relu("relu", x)
	x = b.add(Node{Name: "maxpool", Op: OpMaxPool2d, Inputs: []int{x}, Kernel: 3, Stride: 2, Padding: 1})
	in := 64
	expansion := 1
	if bottleneck {
		expansion = 4
	}
	for li, n := range blocks {
		width := 64 << li
		for i := 0; i < n; i++ {
			stride := 1
			if li > 0 && i == 0 {
				stride = 2
			}
			p := fmt.Sprintf("layer%d.%d", li+1, i)
			if bottleneck {
				x = bottleneckBlock(b, p, x, in, width, stride, middle)
			} else {
				x = basicBlockB(b, p, x, in, width, stride, middle)
			}
			in = width * expansion
		}
	}
	x = b.add(Node{Name: "avgpool", Op: OpGlobalAvgPool, Inputs: []int{x}})
	b.linear("fc", x, in, c.Classes, true, last)
	return b.s
}

// downsample is torchvision's projection shortcut: 1×1 conv (stride) + BN.
func downsample(b *builder, p string, x, in, out, stride int, tern bool) int {
	if stride == 1 && in == out {
		return x
	}
	d := b.conv(p+".downsample.0", x, in, out, 1, stride, 0, false, tern)
	return b.bn2d(p+".downsample.1", d, out)
}

func basicBlockB(b *builder, p string, x, in, out, stride int, tern bool) int {
	y := b.conv(p+".conv1", x, in, out, 3, stride, 1, false, tern)
	y = b.bn2d(p+".bn1", y, out)
	y = b.relu(p+".relu1", y)
	y = b.conv(p+".conv2", y, out, out, 3, 1, 1, false, tern)
	y = b.bn2d(p+".bn2", y, out)
	sc := downsample(b, p, x, in, out, stride, tern)
	return b.relu(p+".relu", b.sum(p+".add", y, sc))
}

func bottleneckBlock(b *builder, p string, x, in, width, stride int, tern bool) int {
	out := width * 4
	y := b.conv(p+".conv1", x, in, width, 1, 1, 0, false, tern)
	y = b.bn2d(p+".bn1", y, width)
	y = b.relu(p+".relu1", y)
	y = b.conv(p+".conv2", y, width, width, 3, stride, 1, false, tern)
	y = b.bn2d(p+".bn2", y, width)
	y = b.relu(p+".relu2", y)
	y = b.conv(p+".conv3", y, width, out, 1, 1, 0, false, tern)
	y = b.bn2d(p+".bn3", y, out)
	sc := downsample(b, p, x, in, out, stride, tern)
	return b.relu(p+".relu", b.sum(p+".add", y, sc))
}

// alexnetBN is the reference's AlexNet with BatchNorm after every conv and
// hidden linear layer (no conv biases, no hidden linear biases), named as a
// torch Sequential: features.{0..17}, classifier.{0..6}.
func alexnetBN(first, middle, last bool, c Config) *Spec {
	b := &builder{s: &Spec{InC: c.InC, H: c.H, W: c.W, Classes: c.Classes}}
	idx := 0
	name := func(seq string) string { n := fmt.Sprintf("%s.%d", seq, idx); idx++; return n }
	pool := func(x int) int {
		return b.add(Node{Name: name("features"), Op: OpMaxPool2d, Inputs: []int{x}, Kernel: 3, Stride: 2})
	}
	convBN := func(x, in, out, k, stride, pad int, tern bool) int {
		x = b.conv(name("features"), x, in, out, k, stride, pad, false, tern)
		x = b.bn2d(name("features"), x, out)
		return b.relu(name("features"), x)
	}
	x := convBN(Input, c.InC, 96, 11, 4, 2, first)
	x = pool(x)
	x = convBN(x, 96, 256, 5, 1, 2, middle)
	x = pool(x)
	x = convBN(x, 256, 384, 3, 1, 1, middle)
	x = convBN(x, 384, 384, 3, 1, 1, middle)
	x = convBN(x, 384, 256, 3, 1, 1, middle)
	x = pool(x)
	// The classifier sees whatever spatial size the features end with
	// (6×6 = 9216 inputs at 224×224).
	h, w := c.H, c.W
	for _, st := range []struct{ k, s, p int }{{11, 4, 2}, {3, 2, 0}, {5, 1, 2}, {3, 2, 0}, {3, 1, 1}, {3, 1, 1}, {3, 1, 1}, {3, 2, 0}} {
		h, w = (h+2*st.p-st.k)/st.s+1, (w+2*st.p-st.k)/st.s+1
	}
	x = b.add(Node{Name: "flatten", Op: OpFlatten, Inputs: []int{x}})
	idx = 0
	x = b.linear(name("classifier"), x, 256*max(h, 0)*max(w, 0), 4096, false, middle)
	x = b.bn1d(name("classifier"), x, 4096)
	x = b.relu(name("classifier"), x)
	x = b.linear(name("classifier"), x, 4096, 4096, false, middle)
	x = b.bn1d(name("classifier"), x, 4096)
	x = b.relu(name("classifier"), x)
	b.linear(name("classifier"), x, 4096, c.Classes, true, last)
	return b.s
}
