package infer

import (
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/tnn-go/tnn/packed"
)

func TestPreprocess(t *testing.T) {
	norm := packed.Norm{Mean: []float32{0.5}, Std: []float32{0.25}}
	// A uniform gray image stays uniform whatever the resize.
	g := image.NewGray(image.Rect(0, 0, 7, 5))
	for i := range g.Pix {
		g.Pix[i] = 191
	}
	want := (float32(191)/255 - 0.5) / 0.25
	for _, v := range Preprocess(g, 1, 12, 12, norm) {
		if math.Abs(float64(v-want)) > 1e-5 {
			t.Fatalf("uniform image gives %g, want %g", v, want)
		}
	}
	// Halving a 4-wide ramp samples midway between pixel pairs.
	r := image.NewGray(image.Rect(0, 0, 4, 1))
	copy(r.Pix, []uint8{0, 100, 200, 250})
	got := Preprocess(r, 1, 1, 2, packed.Norm{Mean: []float32{0}, Std: []float32{1}})
	for i, w := range []float32{50, 225} {
		if math.Abs(float64(got[i]*255-w)) > 1e-3 {
			t.Errorf("pixel %d = %g, want %g", i, got[i]*255, w)
		}
	}
	// RGB to three channels keeps the channels apart.
	c := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := 0; i < 4; i++ {
		c.Set(i%2, i/2, color.RGBA{255, 0, 51, 255})
	}
	rgb := Preprocess(c, 3, 2, 2, packed.Norm{Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}})
	if rgb[0] != 1 || rgb[4] != 0 || math.Abs(float64(rgb[8]-0.2)) > 1e-6 {
		t.Errorf("RGB planes %v", rgb)
	}
}

func TestTop(t *testing.T) {
	g := Top([]float32{0, 3, 1, 2}, []string{"a", "b", "c", "d"}, 2)
	if len(g) != 2 || g[0].Label != "b" || g[1].Label != "d" || !(g[0].Prob > g[1].Prob) {
		t.Errorf("Top = %+v", g)
	}
}
