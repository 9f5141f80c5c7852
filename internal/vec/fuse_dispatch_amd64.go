//go:build amd64 && !noasm

package vec

var asmFuse = fuseKernels{
	normalizeAdd: normalizeAdd, normalizeAddReLU: normalizeAddReLU,
	maskPositiveSum: maskPositiveSum,
}

var activeFuse = func() fuseKernels {
	if hasAsm {
		return asmFuse
	}
	return goFuse
}()
