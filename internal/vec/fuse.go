package vec

//go:generate go run -C _generate . -set fuse -out ../vec_fuse_amd64.s -stubs ../vec_fuse_amd64_stubs.go -pkg vec

// The kernels of a residual block's fused passes (the "fuse" set): each is
// two of the kernels above in one sweep, with the same float32 operations
// in the same order, so that fusing changes no bit of the result.

// fuseKernels is one implementation of the set: the assembly or the twins.
type fuseKernels struct {
	normalizeAdd, normalizeAddReLU func(y, x, o []float32, rows, cols, stride int, mean, invStd, g, b float32)
	maskPositiveSum                func(dx, a, b, y []float32)
}

var goFuse = fuseKernels{
	normalizeAdd: normalizeAddGo, normalizeAddReLU: normalizeAddReLUGo,
	maskPositiveSum: maskPositiveSumGo,
}

// NormalizeAdd sets y = BN(x) + o on every row, the BatchNorm transform t
// being applied as Normalize does and o added after it; with relu, y =
// max(BN(x) + o, 0), NaN passing. It is Normalize into a temporary z then
// Add(y, z, o, relu), bit for bit, without z. y, x and o share the layout.
func NormalizeAdd(y, x, o []float32, rows, cols, stride int, t BN, relu bool) {
	checkRows("NormalizeAdd", len(x), rows, cols, stride)
	checkRows("NormalizeAdd", len(o), rows, cols, stride)
	checkRows("NormalizeAdd", len(y), rows, cols, stride)
	if relu {
		activeFuse.normalizeAddReLU(y, x, o, rows, cols, stride, t.Mean, t.InvStd, t.Gamma, t.Beta)
	} else {
		activeFuse.normalizeAdd(y, x, o, rows, cols, stride, t.Mean, t.InvStd, t.Gamma, t.Beta)
	}
}

// MaskPositiveSum sets dx[i] = a[i] + b[i] where y[i] > 0 and 0 elsewhere
// (NaN in y included), for i < len(dx): the gradient through a ReLU whose
// output y has two readers, a and b being their gradients. It is Add then
// MaskPositive, bit for bit, without the sum's pass.
func MaskPositiveSum(dx, a, b, y []float32) {
	checkLen("MaskPositiveSum", len(dx), len(a), len(b), len(y))
	activeFuse.maskPositiveSum(dx, a, b, y)
}
