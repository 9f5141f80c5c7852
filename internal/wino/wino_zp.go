package wino

// The AVX-512 versions of the packed F(4×4, 3×3) kernels (tw = 4, planes
// 13 to 16 pixels wide; wino_zp_amd64.s, from _generate/f43zp.go) compute
// each tile with the operations of the AVX2 packed ones, sixteen tiles per
// instruction instead of eight: four tile rows per zmm, a whole 16×16
// plane. dispatch_z_amd64.go installs them as zKernels4p where the CPU
// runs them.

//go:generate go run -C _generate . -set zp -out ../wino_zp_amd64.s -stubs ../wino_zp_amd64_stubs.go -pkg wino

// zpKernels4p is the AVX-512 packed set where this build and CPU run it,
// else nil. It is a variable, not an init, so that it is set before any
// init of the package runs, dispatch_z_amd64.go's included.
var zpKernels4p = newZPKernels4p()
