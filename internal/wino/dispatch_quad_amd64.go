//go:build amd64 && !noasm

package wino

var asmKernelsQ = kernelsQ{in: in4q, out: out4q, outT: outT4q, inT: inT4q}

var activeQ = func() kernelsQ {
	if hasAsm {
		return asmKernelsQ
	}
	return goKernelsQ
}()
