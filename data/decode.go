package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// maxPixels is where PIL refuses an image as a decompression bomb (twice
// Image.MAX_IMAGE_PIXELS); a header claiming more is rejected before any
// pixel memory is allocated.
const maxPixels = 2 * 89478485

type imageFormat int

const (
	formatUnknown imageFormat = iota
	formatJPEG
	formatPNG
)

// sniff tells JPEG from PNG by content, not by name: ImageNet has a PNG
// named .JPEG, and PIL opens it by content too.
func sniff(b []byte) imageFormat {
	switch {
	case len(b) >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff:
		return formatJPEG
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return formatPNG
	}
	return formatUnknown
}

var errFormat = errors.New("not a JPEG or PNG file")

// header returns an image's size from its header without decoding pixels.
func header(b []byte, f imageFormat, tj *turboState) (w, h int, err error) {
	switch f {
	case formatJPEG:
		var ok bool
		if w, h, ok = tj.header(b); ok {
			break
		}
		c, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return 0, 0, err
		}
		w, h = c.Width, c.Height
	case formatPNG:
		c, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return 0, 0, err
		}
		w, h = c.Width, c.Height
	default:
		return 0, 0, errFormat
	}
	if w <= 0 || h <= 0 || int64(w)*int64(h) > maxPixels {
		return 0, 0, fmt.Errorf("image size %dx%d is empty or above the %d-pixel limit", w, h, maxPixels)
	}
	return w, h, nil
}

// decoded is one decoded image: a Go image, or packed RGB rows from
// libjpeg-turbo, possibly decoded at 1/scale of the size in its header.
type decoded struct {
	img   image.Image
	rgb   []uint8 // w*3 bytes per row
	w, h  int
	scale int
}

// decodeImage decodes b; with libjpeg-turbo available a JPEG may be decoded
// at 1/scale (scale 1, 2, 4 or 8). When libjpeg-turbo refuses a file (CMYK,
// or damage it would only warn about) the Go decoder decides, so a file is
// accepted or refused alike with and without the turbojpeg build tag.
func decodeImage(b []byte, f imageFormat, scale int, ws *workspace) (decoded, error) {
	if f == formatJPEG {
		var ok bool
		var d decoded
		if ws.turboBuf, d.w, d.h, ok = ws.tj.decode(b, scale, ws.turboBuf); ok {
			d.rgb, d.scale = ws.turboBuf, scale
			return d, nil
		}
	}
	var img image.Image
	var err error
	switch f {
	case formatJPEG:
		img, err = jpeg.Decode(bytes.NewReader(b))
	case formatPNG:
		img, err = png.Decode(bytes.NewReader(b))
	default:
		err = errFormat
	}
	if err != nil {
		return decoded{}, err
	}
	r := img.Bounds()
	return decoded{img: img, w: r.Dx(), h: r.Dy(), scale: 1}, nil
}

// rgbSpan returns the pixels of r (in decoded coordinates) as packed RGB
// rows and their stride. libjpeg-turbo output is returned in place; Go
// images are converted into *buf, only over r. The conversions are PIL's
// convert("RGB"): alpha is dropped, grey is replicated, 16-bit samples keep
// their high byte; YCbCr uses Go's conversion (libjpeg's differs in the
// last bit and in chroma upsampling).
func (d *decoded) rgbSpan(r rect, buf *[]uint8) ([]uint8, int) {
	if d.rgb != nil {
		stride := d.w * 3
		return d.rgb[r.y*stride+r.x*3:], stride
	}
	stride := r.w * 3
	*buf = grow(*buf, r.h*stride)
	out := *buf
	b := d.img.Bounds()
	x0, y0 := b.Min.X+r.x, b.Min.Y+r.y
	switch m := d.img.(type) {
	case *image.YCbCr:
		ycbcrRows(out, m, x0, y0, r.w, r.h)
	case *image.Gray:
		for y := range r.h {
			row := m.Pix[m.PixOffset(x0, y0+y):][:r.w]
			o := out[y*stride:][:stride]
			for x, v := range row {
				o[x*3], o[x*3+1], o[x*3+2] = v, v, v
			}
		}
	case *image.NRGBA:
		rgbaRows(out, m.Pix[m.PixOffset(x0, y0):], m.Stride, r.w, r.h)
	case *image.RGBA:
		rgbaRows(out, m.Pix[m.PixOffset(x0, y0):], m.Stride, r.w, r.h)
	case *image.Paletted:
		var pal [256][3]uint8
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [3]uint8{n.R, n.G, n.B}
		}
		for y := range r.h {
			row := m.Pix[m.PixOffset(x0, y0+y):][:r.w]
			o := out[y*stride:][:stride]
			for x, v := range row {
				p := pal[v]
				o[x*3], o[x*3+1], o[x*3+2] = p[0], p[1], p[2]
			}
		}
	default:
		// CMYK JPEGs and 16-bit PNGs are rare enough for the generic path.
		for y := range r.h {
			o := out[y*stride:][:stride]
			for x := range r.w {
				c := color.NRGBA64Model.Convert(d.img.At(x0+x, y0+y)).(color.NRGBA64)
				o[x*3], o[x*3+1], o[x*3+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
			}
		}
	}
	return out, stride
}

func rgbaRows(out, pix []uint8, stride, w, h int) {
	for y := range h {
		row := pix[y*stride:][:w*4]
		o := out[y*w*3:][:w*3]
		for x := range w {
			o[x*3], o[x*3+1], o[x*3+2] = row[x*4], row[x*4+1], row[x*4+2]
		}
	}
}

// ycbcrRows converts a w×h block at (x0, y0) to RGB with the arithmetic of
// color.YCbCrToRGB, reading the subsampled chroma planes directly rather
// than through At, which costs several times more per pixel.
func ycbcrRows(out []uint8, m *image.YCbCr, x0, y0, w, h int) {
	hs, vs := 0, 0
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio440:
		vs = 1
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 1
	}
	mx, my := m.Rect.Min.X, m.Rect.Min.Y
	for y := range h {
		yy := y0 + y
		yrow := m.Y[(yy-my)*m.YStride+(x0-mx):][:w]
		crow := (yy>>vs - my>>vs) * m.CStride
		cb := m.Cb[crow:]
		cr := m.Cr[crow:]
		o := out[y*w*3:][:w*3]
		for x, yv := range yrow {
			ci := (x0+x)>>hs - mx>>hs
			// color.YCbCrToRGB, inlined.
			yy1 := int32(yv) * 0x10101
			cb1 := int32(cb[ci]) - 128
			cr1 := int32(cr[ci]) - 128
			r := yy1 + 91881*cr1
			if uint32(r)&0xff000000 == 0 {
				r >>= 16
			} else {
				r = ^(r >> 31)
			}
			g := yy1 - 22554*cb1 - 46802*cr1
			if uint32(g)&0xff000000 == 0 {
				g >>= 16
			} else {
				g = ^(g >> 31)
			}
			bl := yy1 + 116130*cb1
			if uint32(bl)&0xff000000 == 0 {
				bl >>= 16
			} else {
				bl = ^(bl >> 31)
			}
			o[x*3], o[x*3+1], o[x*3+2] = uint8(r), uint8(g), uint8(bl)
		}
	}
}
