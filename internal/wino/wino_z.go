package wino

// The AVX-512 versions of the F(4×4, 3×3) kernels (wino_z_amd64.s, from
// _generate/f43z.go) compute each tile with the operations of the AVX2
// ones, sixteen tiles per instruction instead of eight: two tile rows per
// zmm. dispatch_z_amd64.go installs them where the CPU has AVX-512.

//go:generate go run -C _generate . -set z -out ../wino_z_amd64.s -stubs ../wino_z_amd64_stubs.go -pkg wino

// zKernels4 and zKernels4p (for packed plans) are the AVX-512 sets where
// this build and CPU run them, else nil; the tests hold them to the twins
// and the AVX2 kernels.
var zKernels4, zKernels4p *kernels4
