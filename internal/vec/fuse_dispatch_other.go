//go:build !amd64 || noasm

package vec

// asmFuse stands in for the assembly so that the tests compile everywhere;
// they skip the comparison when hasAsm is false.
var asmFuse = goFuse

var activeFuse = goFuse
