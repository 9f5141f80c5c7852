package infer

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // registers JPEG for image.Decode
	_ "image/png"  // registers PNG for image.Decode
	"io"
	"math"
	"os"
	"sort"

	"github.com/tnn-go/tnn/packed"
)

// ErrImage reports an image file that cannot be decoded.
var ErrImage = errors.New("infer: cannot read image")

// maxPixels bounds a decoded image (checked from the header before decoding).
const maxPixels = 1 << 26

// ImageInput decodes a PNG or JPEG file into one normalised C×H×W input of m.
func ImageInput(path string, m *packed.Model) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImage, err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrImage, path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("%w: %s is %dx%d pixels", ErrImage, path, cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImage, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrImage, path, err)
	}
	s := m.Spec
	return Preprocess(img, s.InC, s.H, s.W, m.Norm), nil
}

// Preprocess converts img to c channels (1: ITU-R 601 luma, 3: RGB; other
// counts repeat the luma), resizes it bilinearly to h×w (pixel centres
// aligned, as PIL and torchvision do without antialiasing) and normalises
// each channel as (x/255 - mean)/std.
func Preprocess(img image.Image, c, h, w int, norm packed.Norm) []float32 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	src := make([]float32, 3*sw*sh)
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			src[(0*sh+y)*sw+x] = float32(r) / 257
			src[(1*sh+y)*sw+x] = float32(g) / 257
			src[(2*sh+y)*sw+x] = float32(bl) / 257
		}
	}
	planes := make([][]float32, 3)
	for i := range planes {
		planes[i] = src[i*sw*sh : (i+1)*sw*sh]
	}
	if c != 3 {
		luma := make([]float32, sw*sh)
		for i := range luma {
			luma[i] = 0.299*planes[0][i] + 0.587*planes[1][i] + 0.114*planes[2][i]
		}
		planes = planes[:0]
		for range c {
			planes = append(planes, luma)
		}
	}
	out := make([]float32, c*h*w)
	for ch := 0; ch < c; ch++ {
		resize(planes[ch], sw, sh, out[ch*h*w:(ch+1)*h*w], w, h)
		m, sd := norm.Mean[min(ch, len(norm.Mean)-1)], norm.Std[min(ch, len(norm.Std)-1)]
		for i, v := range out[ch*h*w : (ch+1)*h*w] {
			out[ch*h*w+i] = (v/255 - m) / sd
		}
	}
	return out
}

// resize is bilinear interpolation with half-pixel centres and edge clamping.
func resize(src []float32, sw, sh int, dst []float32, dw, dh int) {
	sx, sy := float64(sw)/float64(dw), float64(sh)/float64(dh)
	for y := 0; y < dh; y++ {
		fy := math.Max((float64(y)+0.5)*sy-0.5, 0)
		y0 := min(int(fy), sh-1)
		y1 := min(y0+1, sh-1)
		wy := float32(fy - float64(y0))
		for x := 0; x < dw; x++ {
			fx := math.Max((float64(x)+0.5)*sx-0.5, 0)
			x0 := min(int(fx), sw-1)
			x1 := min(x0+1, sw-1)
			wx := float32(fx - float64(x0))
			top := src[y0*sw+x0]*(1-wx) + src[y0*sw+x1]*wx
			bot := src[y1*sw+x0]*(1-wx) + src[y1*sw+x1]*wx
			dst[y*dw+x] = top*(1-wy) + bot*wy
		}
	}
}

// Guess is one class and its probability.
type Guess struct {
	Class int
	Label string
	Prob  float64
}

// Top returns the k most probable classes of one row of logits (softmax).
func Top(logits []float32, names []string, k int) []Guess {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var z float64
	g := make([]Guess, len(logits))
	for i, v := range logits {
		p := math.Exp(float64(v) - mx)
		z += p
		g[i] = Guess{Class: i, Prob: p, Label: fmt.Sprint(i)}
		if i < len(names) {
			g[i].Label = names[i]
		}
	}
	for i := range g {
		g[i].Prob /= z
	}
	sort.SliceStable(g, func(a, b int) bool { return g[a].Prob > g[b].Prob })
	return g[:min(k, len(g))]
}
