package data

import (
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"
)

// photo is a synthetic stand-in for a photograph: smooth shading, edges,
// texture and sensor-like noise, so that its JPEG has about the entropy of
// an ImageNet photo (about 0.6 bytes per pixel at quality 90, ~110 kB at
// 500×375).
func photo(w, h int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rng{seed}
	var ph [6]float64
	for i := range ph {
		ph[i] = r.uniform(0, 2*math.Pi)
	}
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			base := 110 + 60*math.Sin(3*fx+ph[0])*math.Cos(2*fy+ph[1])
			edge := 0.0
			if math.Sin(9*fx+5*fy+ph[2]) > 0.3 {
				edge = 40
			}
			tex := 18 * math.Sin(float64(x)*0.9+ph[3]) * math.Sin(float64(y)*0.7+ph[4])
			for c := range 3 {
				n := float64(int(r.next()>>58)) - 32 // ±32 noise
				v := base + edge + tex + float64(c-1)*25*math.Sin(4*fy+ph[5]) + n*1.0
				img.Pix[y*img.Stride+x*4+c] = uint8(max(0, min(255, v)))
			}
			img.Pix[y*img.Stride+x*4+3] = 255
		}
	}
	return img
}

// photoJPEG is a 500×375 synthetic photo at quality 90, the typical size
// and quality of an ImageNet image.
func photoJPEG(b testing.TB, seed uint64) []byte { return jpegBytes(b, photo(500, 375, seed), 90) }

// imgPerS reports images per second of wall-clock time and per second of
// CPU time used by the whole process since start (all goroutines).
func imgPerS(b *testing.B, n int, start time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "img/s")
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "img/cpu-s")
	}
}

// BenchmarkDecode is decoding alone: a 500×375 JPEG to RGB bytes, at full
// size and, with libjpeg-turbo, at the 1/2 scale a 224 crop of a large
// region allows.
func BenchmarkDecode(b *testing.B) {
	jp := photoJPEG(b, 1)
	for _, scale := range []int{1, 2} {
		b.Run(fmt.Sprintf("jpeg_500x375_scale1_%d/%s", scale, JPEGDecoder), func(b *testing.B) {
			var ws workspace
			defer ws.release()
			t0 := cpuTime()
			for b.Loop() {
				d, err := decodeImage(jp, formatJPEG, scale, &ws)
				if err != nil {
					b.Fatal(err)
				}
				d.rgbSpan(rect{0, 0, d.w, d.h}, &ws.rgb)
			}
			imgPerS(b, b.N, t0)
		})
	}
	pn := pngBytes(b, photo(500, 375, 1))
	b.Run("png_500x375", func(b *testing.B) {
		var ws workspace
		t0 := cpuTime()
		for b.Loop() {
			d, err := decodeImage(pn, formatPNG, 1, &ws)
			if err != nil {
				b.Fatal(err)
			}
			d.rgbSpan(rect{0, 0, d.w, d.h}, &ws.rgb)
		}
		imgPerS(b, b.N, t0)
	})
}

// BenchmarkResize is resizing alone, from decoded 500×375 RGB to 224×224
// (the whole image, as a RandomResizedCrop at scale 1) and to 341×256 with
// the central 224×224 kept (validation): this package's fixed-point
// bilinear, and golang.org/x/image/draw for comparison.
func BenchmarkResize(b *testing.B) {
	src := photo(500, 375, 1)
	rgb := make([]uint8, 500*375*3)
	for i := range 500 * 375 {
		copy(rgb[i*3:i*3+3], src.Pix[i*4:i*4+3])
	}
	lut := identityLUT()
	dst := make([]float32, 3*224*224)
	for _, c := range []struct {
		name           string
		ow, oh, wx, wy int
	}{{"rrc_500x375_to_224", 224, 224, 0, 0}, {"val_500x375_to_341x256_crop224", 341, 256, 58, 16}} {
		b.Run(c.name+"/tnn", func(b *testing.B) {
			var rs resampler
			t0 := cpuTime()
			for b.Loop() {
				rs.ax.set(500, 0, 500, c.ow, c.wx, 224)
				rs.ay.set(375, 0, 375, c.oh, c.wy, 224)
				x0, _ := rs.ax.span()
				y0, _ := rs.ay.span()
				rs.run(dst, rgb[(y0*500+x0)*3:], 500*3, lut, false)
			}
			imgPerS(b, b.N, t0)
		})
	}
	out := image.NewRGBA(image.Rect(0, 0, 224, 224))
	for _, k := range []struct {
		name string
		s    xdraw.Scaler
	}{{"x_image_draw_BiLinear", xdraw.BiLinear}, {"x_image_draw_ApproxBiLinear", xdraw.ApproxBiLinear}} {
		b.Run("rrc_500x375_to_224/"+k.name, func(b *testing.B) {
			t0 := cpuTime()
			for b.Loop() {
				k.s.Scale(out, out.Bounds(), src, src.Bounds(), xdraw.Src, nil)
			}
			imgPerS(b, b.N, t0)
		})
	}
}

// BenchmarkTransform is decode + resize + crop + normalise of one 500×375
// JPEG: the validation transform and RandomResizedCrop + flip.
func BenchmarkTransform(b *testing.B) {
	jp := photoJPEG(b, 1)
	f := &ImageFolder{Size: 224, ResizeSize: 256}
	spec, _ := Spec("imagenet")
	l := NewLoader(&ImageFolder{Size: 224}, LoaderConfig{Norm: spec.Norm})
	dst := make([]float32, 3*224*224)
	for _, aug := range []Augment{{}, spec.TrainAugment} {
		name := "val_resize256_crop224"
		if aug.RandomResizedCrop {
			name = "train_randomresizedcrop224_flip"
		}
		b.Run(name+"/"+JPEGDecoder, func(b *testing.B) {
			var ws workspace
			defer ws.release()
			i := 0
			t0 := cpuTime()
			for b.Loop() {
				r := rng{seedOf(tagAug, 1, 0, uint64(i))}
				i++
				if err := render(dst, jp, formatJPEG, f.plan(500, 375, aug, &r), l.lut, &ws); err != nil {
					b.Fatal(err)
				}
			}
			imgPerS(b, b.N, t0)
		})
	}
}

// BenchmarkLoader is the whole loader over a folder of 500×375 JPEGs:
// reading files, decoding, RandomResizedCrop + flip (train) or resize +
// center crop (val), normalising, batching. Each worker is one goroutine.
func BenchmarkLoader(b *testing.B) {
	root := b.TempDir()
	for i := range 64 {
		if i < 8 {
			writeFile(b, filepath.Join(root, "train", fmt.Sprintf("c%d", i%4), fmt.Sprintf("%d.jpg", i)), photoJPEG(b, uint64(i)))
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, "train", fmt.Sprintf("c%d", i%4), fmt.Sprintf("%d.jpg", i%8)))
		if err != nil {
			b.Fatal(err)
		}
		writeFile(b, filepath.Join(root, "train", fmt.Sprintf("c%d", i%4), fmt.Sprintf("%d.jpg", i)), data)
	}
	src, err := OpenImageFolder(filepath.Join(root, "train"), nil, 224)
	if err != nil {
		b.Fatal(err)
	}
	spec, _ := Spec("imagenet")
	for _, split := range []string{"train", "val"} {
		for _, workers := range []int{0, 1, 2} {
			b.Run(fmt.Sprintf("%s/workers%d/%s", split, workers, JPEGDecoder), func(b *testing.B) {
				cfg := LoaderConfig{BatchSize: 32, Shuffle: true, Norm: spec.Norm, Workers: workers}
				if split == "train" {
					cfg.Augment = spec.TrainAugment
				}
				l := NewLoader(src, cfg)
				defer l.Close()
				epoch, imgs := 0, 0
				l.Start(epoch)
				t0 := cpuTime()
				for b.Loop() {
					bt, ok := l.Next()
					if !ok {
						if l.Err() != nil {
							b.Fatal(l.Err())
						}
						epoch++
						l.Start(epoch)
						bt, _ = l.Next()
					}
					imgs += len(bt.Y)
					l.Release(bt)
				}
				imgPerS(b, imgs, t0)
			})
		}
	}
}
