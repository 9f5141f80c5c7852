//go:build !amd64 || noasm

package vec

// asmPhase stands in for the assembly so that tests compile everywhere; they
// skip the comparison when hasAsm is false.
var asmPhase = goPhase

var activePhase = goPhase
