package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tnn-go/tnn/internal/atomicfile"
)

var (
	trainColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	testColor  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// WriteCurve atomically writes path (curve.png): top-1 accuracy (top panel)
// and loss (bottom panel) of train and test versus epoch.
func WriteCurve(path string, h []Epoch) error {
	if len(h) == 0 {
		return fmt.Errorf("%w: %s", ErrNoData, path)
	}
	img, err := renderCurve(h)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

func renderCurve(h []Epoch) (img *vgimg.Canvas, err error) {
	// gonum/plot panics on some degenerate inputs; a report must not take a
	// training run down with it.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%v", r)
		}
	}()

	best, bestEpoch := math.Inf(-1), 0
	for _, e := range h {
		if e.TestTop1 > best {
			best, bestEpoch = e.TestTop1, e.Epoch
		}
	}
	accTitle := "Top-1 accuracy"
	if !math.IsInf(best, -1) {
		accTitle = fmt.Sprintf("Top-1 accuracy (best test %.2f%% at epoch %d)", best, bestEpoch)
	}
	acc := panel(accTitle, "accuracy (%)")
	loss := panel("Loss", "cross-entropy loss")
	acc.Legend.Top = false // accuracy rises: keep the legend off the curves
	loss.Legend.Top = true

	marks := len(h) <= 40 // points would clutter a long run; one epoch needs them to show at all
	for _, s := range []struct {
		p     *plot.Plot
		name  string
		c     color.Color
		value func(Epoch) float64
	}{
		{acc, "train", trainColor, func(e Epoch) float64 { return e.TrainTop1 }},
		{acc, "test", testColor, func(e Epoch) float64 { return e.TestTop1 }},
		{loss, "train", trainColor, func(e Epoch) float64 { return e.TrainLoss }},
		{loss, "test", testColor, func(e Epoch) float64 { return e.TestLoss }},
	} {
		xy := make(plotter.XYs, 0, len(h))
		for _, e := range h {
			// Missing values (NaN, e.g. a diverged loss) leave a gap rather
			// than failing the whole figure.
			if v := s.value(e); !math.IsNaN(v) && !math.IsInf(v, 0) {
				xy = append(xy, plotter.XY{X: float64(e.Epoch), Y: v})
			}
		}
		if len(xy) == 0 {
			continue
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		line.Color = s.c
		line.Width = vg.Points(2)
		s.p.Add(line)
		if marks {
			pts, err := plotter.NewScatter(xy)
			if err != nil {
				return nil, err
			}
			pts.Color = s.c
			pts.Shape = draw.CircleGlyph{}
			pts.Radius = vg.Points(3)
			s.p.Add(pts)
			s.p.Legend.Add(s.name, line, pts)
		} else {
			s.p.Legend.Add(s.name, line)
		}
	}

	const w, ht = 9 * vg.Inch, 8 * vg.Inch
	img = vgimg.NewWith(vgimg.UseWH(w, ht), vgimg.UseDPI(100), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(10), PadBottom: vg.Points(10),
		PadLeft: vg.Points(10), PadRight: vg.Points(20), PadY: vg.Points(20)}
	cs := plot.Align([][]*plot.Plot{{acc}, {loss}}, tiles, dc)
	acc.Draw(cs[0][0])
	loss.Draw(cs[1][0])
	return img, nil
}

func panel(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(13)
		a.Tick.Label.Font.Size = vg.Points(11)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(12)
	p.Legend.Left = false
	p.X.Tick.Marker = epochTicks{}
	p.Y.Tick.Marker = distinctTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// epochTicks labels only whole epochs: the default ticker puts 0.5 steps on
// a short run, which reads as if half epochs existed.
type epochTicks struct{}

func (epochTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	out := ticks[:0]
	for _, t := range ticks {
		if t.Label != "" && t.Value != math.Trunc(t.Value) {
			continue
		}
		if t.Value != math.Trunc(t.Value) {
			t.Label = ""
		}
		out = append(out, t)
	}
	return out
}

// distinctTicks is the default ticker with labels given as many decimals as
// it takes to tell them apart: on a narrow range (a loss that moves from
// 2.61 to 2.64) the default prints the same label twice.
type distinctTicks struct{}

func (distinctTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for prec := 1; prec <= 6 && !labelsDistinct(ticks); prec++ {
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', prec, 64)
			}
		}
	}
	return ticks
}

func labelsDistinct(ticks []plot.Tick) bool {
	seen := make(map[string]bool, len(ticks))
	for _, t := range ticks {
		if t.Label == "" {
			continue
		}
		if seen[t.Label] {
			return false
		}
		seen[t.Label] = true
	}
	return true
}
