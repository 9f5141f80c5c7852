//go:build turbojpeg

package data

// #cgo LDFLAGS: -lturbojpeg
// #include <turbojpeg.h>
import "C"

import "unsafe"

// JPEGDecoder names the JPEG decoder this binary was built with.
const JPEGDecoder = "libjpeg-turbo"

// turboState is one libjpeg-turbo decompressor, owned by one loader worker
// so that no handle is shared between goroutines.
type turboState struct {
	h C.tjhandle
	// fastUpsample replicates chroma samples as image/jpeg does instead of
	// libjpeg's smooth upsampling (which PIL uses); tests set it to compare
	// the two decoders closely.
	fastUpsample bool
}

func (t *turboState) handle() bool {
	if t.h == nil {
		t.h = C.tjInitDecompress()
	}
	return t.h != nil
}

// header reads the size of a JPEG.
func (t *turboState) header(b []byte) (w, h int, ok bool) {
	if len(b) == 0 || !t.handle() {
		return 0, 0, false
	}
	var cw, ch, sub, cs C.int
	if C.tjDecompressHeader3(t.h, (*C.uchar)(unsafe.Pointer(&b[0])), C.ulong(len(b)), &cw, &ch, &sub, &cs) != 0 || cw <= 0 || ch <= 0 {
		t.close()
		return 0, 0, false
	}
	return int(cw), int(ch), true
}

// decode decodes a JPEG to packed RGB at 1/scale of its size (scale 1, 2, 4
// or 8; libjpeg scales in the DCT domain, as PIL's draft mode does), with
// libjpeg's default accurate integer IDCT and smooth chroma upsampling, the
// settings PIL decodes with. It declines (ok false) CMYK files, which
// libjpeg-turbo cannot convert to RGB, and any file with errors or warnings,
// leaving the verdict to the Go decoder.
func (t *turboState) decode(b []byte, scale int, buf []uint8) (out []uint8, w, h int, ok bool) {
	if len(b) == 0 || !t.handle() {
		return buf, 0, 0, false
	}
	src := (*C.uchar)(unsafe.Pointer(&b[0]))
	var cw, ch, sub, cs C.int
	if C.tjDecompressHeader3(t.h, src, C.ulong(len(b)), &cw, &ch, &sub, &cs) != 0 || cw <= 0 || ch <= 0 {
		t.close()
		return buf, 0, 0, false
	}
	if cs == C.TJCS_CMYK || cs == C.TJCS_YCCK {
		return buf, 0, 0, false
	}
	// TJSCALED: ceil(dimension / scale).
	w, h = (int(cw)+scale-1)/scale, (int(ch)+scale-1)/scale
	buf = grow(buf, w*h*3)
	var flags C.int
	if t.fastUpsample {
		flags = C.TJFLAG_FASTUPSAMPLE
	}
	if C.tjDecompress2(t.h, src, C.ulong(len(b)), (*C.uchar)(unsafe.Pointer(&buf[0])),
		C.int(w), C.int(w*3), C.int(h), C.TJPF_RGB, flags) != 0 {
		// A failed decompressor may not be reusable: start afresh.
		t.close()
		return buf, 0, 0, false
	}
	return buf, w, h, true
}

func (t *turboState) close() {
	if t.h != nil {
		C.tjDestroy(t.h)
		t.h = nil
	}
}
