package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// testImage is make_fixtures.py's test_image: a gradient per channel plus
// hashed noise.
func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			for c := range 3 {
				hh := (uint64(x)*374761393 + uint64(y)*668265263 + uint64(c)*2246822519) & 0xffffffff
				hh = ((hh ^ hh>>13) * 1274126177) & 0xffffffff
				noise := int(hh>>16) & 63
				grad := [3]int{x * 255 / (w - 1), y * 255 / (h - 1), (x + y) * 255 / (w + h - 2)}[c]
				img.Pix[y*img.Stride+x*4+c] = uint8(min(grad*3/4+noise, 255))
			}
			img.Pix[y*img.Stride+x*4+3] = 255
		}
	}
	return img
}

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// identityLUT maps every byte to itself, so rendered values are pixels.
func identityLUT() []float32 {
	lut := make([]float32, 3*256)
	for i := range lut {
		lut[i] = float32(i % 256)
	}
	return lut
}

// renderBytes runs plan p on an encoded image and returns HWC bytes.
func renderBytes(t testing.TB, b []byte, p plan) []uint8 {
	t.Helper()
	var ws workspace
	defer ws.release()
	dst := make([]float32, 3*p.size*p.size)
	if err := render(dst, b, sniff(b), p, identityLUT(), &ws); err != nil {
		t.Fatal(err)
	}
	return planarToHWC(dst, p.size)
}

func planarToHWC(dst []float32, size int) []uint8 {
	out := make([]uint8, len(dst))
	for c := range 3 {
		for i := range size * size {
			out[i*3+c] = uint8(dst[c*size*size+i])
		}
	}
	return out
}

type torchCase struct {
	Name              string
	W, H              int
	Kind              string
	Resize, Size      int
	Top, Left, Ch, Cw int
}

// TestTorchvisionTransforms compares Resize + CenterCrop and resized_crop
// with torchvision 0.14 on PIL images, byte for byte: a PNG decodes to the
// same pixels in Go and PIL, so any difference is in the transforms.
func TestTorchvisionTransforms(t *testing.T) {
	dir := filepath.Join("testdata", "imagefolder")
	js, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []torchCase
	if err := json.Unmarshal(js, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 9 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, c.Name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			src := testImage(c.W, c.H)
			var p plan
			if c.Kind == "val" {
				f := &ImageFolder{Size: c.Size, ResizeSize: c.Resize}
				p = f.plan(c.W, c.H, Augment{}, nil)
			} else {
				p = plan{fw: c.W, fh: c.H, region: rect{c.Left, c.Top, c.Cw, c.Ch}, ow: c.Size, oh: c.Size, size: c.Size}
			}
			// The same pixels as RGBA, as NRGBA with an alpha channel PIL's
			// convert("RGB") drops, and as a 16-bit image.
			nrgba := image.NewNRGBA(src.Rect)
			rgba64 := image.NewRGBA64(src.Rect)
			for i := range len(src.Pix) / 4 {
				copy(nrgba.Pix[i*4:i*4+3], src.Pix[i*4:i*4+3])
				nrgba.Pix[i*4+3] = uint8(i * 7)
				for c := range 4 {
					rgba64.Pix[i*8+c*2] = src.Pix[i*4+c]
					rgba64.Pix[i*8+c*2+1] = uint8(i)
				}
			}
			for _, img := range []image.Image{src, nrgba, rgba64} {
				got := renderBytes(t, pngBytes(t, img), p)
				if !bytes.Equal(got, want) {
					n, first := 0, -1
					for i := range got {
						if got[i] != want[i] {
							n++
							if first < 0 {
								first = i
							}
						}
					}
					t.Fatalf("%T: %d of %d bytes differ from torchvision; first at %d: %d, want %d", img, n, len(got), first, got[first], want[first])
				}
			}
		})
	}
}

// replay feeds recorded draws to rrcParams as the fixture fed them to
// torchvision.
type replay struct {
	u []float64
	i int
}

func (r *replay) take() float64 {
	v := r.u[r.i]
	r.i++
	return v
}
func (r *replay) uniform(a, b float64) float64 { return a + (b-a)*r.take() }
func (r *replay) intn(n int) int               { return int(r.take() * float64(n)) }

// TestRandomResizedCropParams replays torchvision's get_params with the same
// draws, fallback to the central crop included.
func TestRandomResizedCropParams(t *testing.T) {
	js, err := os.ReadFile(filepath.Join("testdata", "imagefolder", "rrc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		W, H              int
		U                 []float64
		Top, Left, Ch, Cw int
	}
	if err := json.Unmarshal(js, &cases); err != nil {
		t.Fatal(err)
	}
	fallbacks := 0
	for _, c := range cases {
		r := &replay{u: c.U}
		got := rrcParams(r, c.W, c.H, rrcScale, rrcRatio)
		want := rect{c.Left, c.Top, c.Cw, c.Ch}
		if got != want {
			t.Errorf("%dx%d: %+v, torchvision %+v", c.W, c.H, got, want)
		}
		if r.i == 20 {
			fallbacks++
		}
	}
	if len(cases) < 40 || fallbacks < 12 {
		t.Errorf("%d cases, %d fallbacks: the fixture should cover both paths", len(cases), fallbacks)
	}
	// The fallback by hand: no crop of area ≥ 8% with ratio ≥ 3/4 fits in
	// 10 rows of 1000 pixels, so the central 13×10 (ratio 4/3) is taken.
	if got := rrcParams(&rng{1}, 1000, 10, rrcScale, rrcRatio); got != (rect{493, 0, 13, 10}) {
		t.Errorf("fallback crop %+v", got)
	}
	// Our own draws: crops stay inside, area and ratio within range up to
	// rounding.
	var areaSum float64
	for i := range 2000 {
		r := rng{seedOf(tagAug, 9, 0, uint64(i))}
		c := rrcParams(&r, 500, 375, rrcScale, rrcRatio)
		if c.x < 0 || c.y < 0 || c.w < 1 || c.h < 1 || c.x+c.w > 500 || c.y+c.h > 375 {
			t.Fatalf("crop %+v outside 500x375", c)
		}
		a := float64(c.w*c.h) / (500 * 375)
		ratio := float64(c.w) / float64(c.h)
		if a < 0.075 || a > 1 || ratio < 0.7 || ratio > 1.4 {
			t.Fatalf("crop %+v: area %.3f ratio %.3f", c, a, ratio)
		}
		areaSum += a
	}
	// E[area] over uniform(0.08, 1) is 0.54; large crops that do not fit
	// are redrawn, which pulls the mean down a little.
	if m := areaSum / 2000; m < 0.42 || m > 0.56 {
		t.Errorf("mean crop area %.3f", m)
	}
}

func TestGeometry(t *testing.T) {
	for _, c := range []struct{ w, h, size, ow, oh int }{
		{500, 375, 256, 341, 256}, {375, 500, 256, 256, 341}, {256, 256, 256, 256, 256}, {61, 47, 36, 46, 36},
	} {
		if ow, oh := resizedSize(c.w, c.h, c.size); ow != c.ow || oh != c.oh {
			t.Errorf("resize %dx%d to %d: %dx%d, want %dx%d", c.w, c.h, c.size, ow, oh, c.ow, c.oh)
		}
	}
	// Python's round: halves go to the even neighbour.
	for _, c := range []struct{ w, h, crop, left, top int }{
		{341, 256, 224, 58, 16}, {41, 37, 32, 4, 2}, {43, 39, 32, 6, 4}, {32, 32, 32, 0, 0},
	} {
		if l, tp := centerCropOrigin(c.w, c.h, c.crop); l != c.left || tp != c.top {
			t.Errorf("center crop %d of %dx%d at (%d, %d), want (%d, %d)", c.crop, c.w, c.h, l, tp, c.left, c.top)
		}
	}
	if resizeFor(224) != 256 || resizeFor(32) != 36 || resizeFor(64) != 73 {
		t.Error("validation resize is not size·256/224")
	}
	for _, c := range []struct{ w, h, ow, oh, s int }{
		{500, 375, 224, 224, 1}, {500, 500, 224, 224, 2}, {2000, 1800, 224, 224, 8}, {1000, 900, 224, 224, 4}, {64, 64, 16, 16, 4},
	} {
		if s := draftScale(c.w, c.h, c.ow, c.oh); s != c.s {
			t.Errorf("draft scale of %dx%d for %dx%d: %d, want %d", c.w, c.h, c.ow, c.oh, s, c.s)
		}
	}
}

// TestCenterCropGradient checks the validation transform, flip and ImageNet
// normalisation through the loader on a gradient worked out by hand.
func TestCenterCropGradient(t *testing.T) {
	root := t.TempDir()
	// 40×36: the shorter side is already 36 = 32·256/224, so no resize;
	// the 32×32 center crop starts at x = 4, y = 2.
	img := image.NewRGBA(image.Rect(0, 0, 40, 36))
	for y := range 36 {
		for x := range 40 {
			img.Set(x, y, color.RGBA{uint8(6 * x), uint8(7 * y), 100, 255})
		}
	}
	b := pngBytes(t, img)
	for i := range 8 {
		writeFile(t, filepath.Join(root, "val", "only", fmt.Sprintf("g%d.png", i)), b)
	}
	f, err := OpenImageFolder(filepath.Join(root, "val"), nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := Spec("imagenet")
	mean, std := []float64{0.485, 0.456, 0.406}, []float64{0.229, 0.224, 0.225}
	for _, aug := range []Augment{{}, {Flip: true}} {
		l := NewLoader(f, LoaderConfig{BatchSize: 3, Norm: spec.Norm, Seed: 11, Augment: aug, Workers: 1})
		e := drain(t, l, 2)
		l.Close()
		flips := 0
		for p := range 8 {
			r := rng{seedOf(tagAug, 11, 2, uint64(p))}
			flip := aug.Flip && r.next()>>63 == 1
			if flip {
				flips++
			}
			for y := range 32 {
				for x := range 32 {
					sx := x
					if flip {
						sx = 31 - x
					}
					v := [3]float64{float64(6 * (sx + 4)), float64(7 * (y + 2)), 100}
					for c := range 3 {
						want := (v[c]/255 - mean[c]) / std[c]
						got := float64(e.x[p*3*1024+c*1024+y*32+x])
						if math.Abs(got-want) > 1e-5 {
							t.Fatalf("aug %+v position %d channel %d (%d, %d): %v, want %v", aug, p, c, x, y, got, want)
						}
					}
				}
			}
		}
		if aug.Flip && (flips == 0 || flips == 8) {
			t.Errorf("%d of 8 flipped: the test should see both", flips)
		}
	}
}
