//go:build !turbojpeg

package data

// JPEGDecoder names the JPEG decoder this binary was built with; build with
// -tags turbojpeg (cgo and libjpeg-turbo's libturbojpeg) for the faster one.
const JPEGDecoder = "Go image/jpeg"

// turboState is empty without libjpeg-turbo: every call declines, and the Go
// decoder does the work.
type turboState struct{}

func (*turboState) header([]byte) (w, h int, ok bool) { return 0, 0, false }

func (*turboState) decode(_ []byte, _ int, buf []uint8) ([]uint8, int, int, bool) {
	return buf, 0, 0, false
}

func (*turboState) close() {}
