//go:build xla

package xla

// The XLA backend loads PJRT plugins (CUDA, CPU) with dlopen through cgo, so
// only builds with the xla tag include it: go build -tags xla ./cmd/tnn.
import _ "github.com/gomlx/gomlx/backends/xla"

func init() { xlaCompiled = true }
