//go:build turbojpeg

package data

import (
	"bytes"
	"image/jpeg"
	"math"
	"testing"
)

// diffStats compares two byte slices: mean and largest absolute difference.
func diffStats(a, b []uint8) (mean float64, maxd int) {
	var sum float64
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += float64(d)
		maxd = max(maxd, d)
	}
	return sum / float64(len(a)), maxd
}

// TestTurboMatchesGo: libjpeg-turbo and image/jpeg decode the same file to
// nearly the same pixels. With libjpeg's smooth chroma upsampling (the
// default, as in PIL) colour differs where chroma varies from pixel to pixel,
// as in the noisy synthetic photo; with chroma replicated as Go does, only
// IDCT rounding is left.
func TestTurboMatchesGo(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"photo", jpegBytes(t, photo(500, 375, 3), 90)},
		{"grey", jpegBytes(t, grayImage(61, 47), 90)},
		{"odd", jpegBytes(t, testImage(37, 23), 95)},
		{"smooth", jpegBytes(t, smoothImage(64, 48), 90)},
	} {
		img, err := jpeg.Decode(bytes.NewReader(c.b))
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		g := decoded{img: img, w: b.Dx(), h: b.Dy(), scale: 1}
		var buf []uint8
		want, _ := g.rgbSpan(rect{0, 0, g.w, g.h}, &buf)
		for _, fast := range []bool{true, false} {
			ws := workspace{tj: turboState{fastUpsample: fast}}
			d, err := decodeImage(c.b, formatJPEG, 1, &ws)
			if err != nil || d.rgb == nil || d.w != g.w || d.h != g.h {
				t.Fatalf("%s: libjpeg-turbo did not decode: %v", c.name, err)
			}
			got, _ := d.rgbSpan(rect{0, 0, d.w, d.h}, &ws.rgb)
			mean, maxd := diffStats(got[:len(want)], want)
			t.Logf("%s, fast upsampling %v: mean |difference| %.3f, max %d", c.name, fast, mean, maxd)
			meanTol, maxTol := 0.5, 4
			if !fast {
				meanTol, maxTol = 5, 40
			}
			if mean > meanTol || maxd > maxTol {
				t.Errorf("%s, fast upsampling %v: libjpeg-turbo and Go differ by %.3f on average, %d at most", c.name, fast, mean, maxd)
			}
			ws.release()
		}
	}
}

// TestTurboScaled: decoding at 1/2, 1/4 or 1/8 before the resize (PIL's
// draft mode) gives nearly the transform of the full-size decode.
func TestTurboScaled(t *testing.T) {
	b := jpegBytes(t, photo(900, 680, 4), 90)
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	lossless := pngBytes(t, img) // the Go decode, through the PNG path
	for _, c := range []struct {
		name  string
		p     plan
		scale int
	}{
		{"val 256/224", (&ImageFolder{Size: 224, ResizeSize: 256}).plan(900, 680, Augment{}, nil), 2},
		{"val 73/64", (&ImageFolder{Size: 64, ResizeSize: 73}).plan(900, 680, Augment{}, nil), 8},
		{"crop 600x500 to 128", plan{fw: 900, fh: 680, region: rect{123, 77, 600, 500}, ow: 128, oh: 128, size: 128}, 2},
		{"crop 700x520 to 64", plan{fw: 900, fh: 680, region: rect{199, 13, 700, 520}, ow: 64, oh: 64, size: 64, flip: true}, 8},
	} {
		if s := draftScale(c.p.region.w, c.p.region.h, c.p.ow, c.p.oh); s != c.scale {
			t.Fatalf("%s: scale %d, want %d", c.name, s, c.scale)
		}
		got := renderBytes(t, b, c.p)
		want := renderBytes(t, lossless, c.p)
		mean, maxd := diffStats(got, want)
		t.Logf("%s (1/%d): mean |difference| %.3f, max %d", c.name, c.scale, mean, maxd)
		if mean > 3 || maxd > 40 || math.IsNaN(mean) {
			t.Errorf("%s: scaled decode differs by %.3f on average, %d at most", c.name, mean, maxd)
		}
	}
}
