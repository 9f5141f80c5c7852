//go:build amd64 && !noasm

package vec

var asmPhase = phaseKernels{
	splitPhases: splitPhases, mergePhases: mergePhases,
	copyRows: copyRows, addRows: addRows,
}

var activePhase = func() phaseKernels {
	if hasAsm {
		return asmPhase
	}
	return goPhase
}()
