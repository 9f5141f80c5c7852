package models

import "fmt"

// The CIFAR ResNets of the reference (He et al. 2016 "option A" shortcuts),
// depth 6n+2, with its module names: conv_1_3x3, bn_1, stage_{1,2,3}.{i}.{conv_a,
// bn_a, conv_b, bn_b}, classifier. The pooling is global, so any input size
// works (28×28 Fashion-MNIST as well as 32×32 CIFAR).
func init() {
	for _, depth := range []int{20, 32, 44, 56, 110} {
		d := depth
		Register(fmt.Sprintf("resnet%d", d), func(c Config) (*Spec, error) { return cifarResNet(d, false, c), nil })
		Register(fmt.Sprintf("tern_resnet%d", d), func(c Config) (*Spec, error) { return cifarResNet(d, true, c), nil })
	}
}

func cifarResNet(depth int, tern bool, c Config) *Spec {
	n := (depth - 2) / 6
	b := &builder{s: &Spec{InC: c.InC, H: c.H, W: c.W, Classes: c.Classes}}
	x := b.conv("conv_1_3x3", Input, c.InC, 16, 3, 1, 1, false, tern)
	x = b.bn2d("bn_1", x, 16)
	x = b.relu("relu_1", x)
	in := 16
	for stage, width := range []int{16, 32, 64} {
		for i := 0; i < n; i++ {
			stride := 1
			if stage > 0 && i == 0 {
				stride = 2
			}
			x = basicBlockA(b, fmt.Sprintf("stage_%d.%d", stage+1, i), x, in, width, stride, tern)
			in = width
		}
	}
	x = b.add(Node{Name: "avgpool", Op: OpGlobalAvgPool, Inputs: []int{x}})
	b.linear("classifier", x, 64, c.Classes, true, tern)
	return b.s
}

// basicBlockA is ResNetBasicblock with DownsampleA when the shape changes.
func basicBlockA(b *builder, p string, x, in, out, stride int, tern bool) int {
	y := b.conv(p+".conv_a", x, in, out, 3, stride, 1, false, tern)
	y = b.bn2d(p+".bn_a", y, out)
	y = b.relu(p+".relu_a", y)
	y = b.conv(p+".conv_b", y, out, out, 3, 1, 1, false, tern)
	y = b.bn2d(p+".bn_b", y, out)
	sc := x
	if stride != 1 || in != out {
		sc = b.add(Node{Name: p + ".downsample", Op: OpShortcutA, Inputs: []int{x}, InC: in, OutC: out, Stride: stride})
	}
	y = b.sum(p+".add", y, sc)
	return b.relu(p+".relu", y)
}
