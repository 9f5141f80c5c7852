package gemm

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestSetKernels(t *testing.T) {
	names := AvailableKernels()
	if names[len(names)-1] != "go" {
		t.Fatalf("AvailableKernels() = %v, want the pure-Go set last", names)
	}
	if os.Getenv("TNN_GEMM") == "" && Kernels() != names[0] {
		t.Fatalf("default set %q, want the fastest, %q", Kernels(), names[0])
	}
	defer SetKernels(Kernels())
	for _, name := range names {
		if err := SetKernels(name); err != nil {
			t.Fatalf("SetKernels(%q): %v", name, err)
		}
		if Kernels() != name {
			t.Fatalf("Kernels() = %q after SetKernels(%q)", Kernels(), name)
		}
		// The set in use computes: 2×3 · 3×2.
		c := make([]float32, 4)
		Sgemm(false, false, 2, 2, 3, 1, []float32{1, 2, 3, 4, 5, 6}, 3, []float32{1, 0, 0, 1, 1, 1}, 2, 0, c, 2)
		if !slices.Equal(c, []float32{4, 5, 10, 11}) {
			t.Fatalf("%s: got %v", name, c)
		}
	}
	before := Kernels()
	for _, bad := range []string{"", "avx1024", "AVX2"} {
		if err := SetKernels(bad); !errors.Is(err, ErrKernels) {
			t.Fatalf("SetKernels(%q) = %v, want ErrKernels", bad, err)
		}
	}
	if Kernels() != before {
		t.Fatalf("a failed SetKernels changed the set to %q", Kernels())
	}
}

// TestKernelsEnv runs this test binary again with TNN_GEMM set and checks
// the set it starts with.
func TestKernelsEnv(t *testing.T) {
	if name := os.Getenv("TNN_GEMM_CHILD"); name != "" {
		if Kernels() != name {
			t.Fatalf("TNN_GEMM=%q: started with %q", os.Getenv("TNN_GEMM"), Kernels())
		}
		return
	}
	names := AvailableKernels()
	cases := map[string]string{"go": "go", "no-such-set": names[0]}
	if slices.Contains(names, "avx2") {
		cases["avx2"] = "avx2"
	}
	for env, want := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKernelsEnv$", "-test.count=1")
		cmd.Env = append(os.Environ(), "TNN_GEMM="+env, "TNN_GEMM_CHILD="+want)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("TNN_GEMM=%s: %v\n%s", env, err, out)
		}
	}
}
