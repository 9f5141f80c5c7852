package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gonum.org/v1/plot"
)

func history(n int) []Epoch {
	h := make([]Epoch, n)
	for i := range h {
		x := float64(i + 1)
		h[i] = Epoch{Epoch: i + 1, LR: 0.1, TrainLoss: 2 / x, TrainTop1: 100 - 60/x, TestLoss: 2.2 / x,
			TestTop1: 100 - 65/x, TestTop5: 99, Seconds: 30, ImgPerS: 1666}
	}
	return h
}

func TestWriteAccuracy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "accuracy.txt")
	h := []Epoch{{Epoch: 1, TrainTop1: 45.123456, TestTop1: 50.5}, {Epoch: 2, TrainTop1: 60, TestTop1: 61.25}}
	if err := WriteAccuracy(p, h); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := "epochs train test\n1 45.1235 50.5000\n2 60.0000 61.2500\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	if err := WriteAccuracy(p, h[:1]); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "epochs train test\n1 45.1235 50.5000\n" {
		t.Fatalf("rewrite gave %q", b)
	}
	if err := WriteAccuracy(filepath.Join(t.TempDir(), "no", "such", "dir", "a.txt"), h); err == nil {
		t.Fatal("no error for a missing directory")
	}
}

func TestWriteJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "summary.json")
	h := history(2)
	h[1].TrainLoss = math.NaN()
	h[1].TestLoss = math.Inf(1)
	in := map[string]any{"best_top1": 91.65, "history": h}
	if err := WriteJSON(p, in); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !bytes.Contains(b, []byte("\n  \"best_top1\": 91.65,\n")) || !bytes.HasSuffix(b, []byte("}\n")) {
		t.Fatalf("not indented JSON:\n%s", b)
	}
	var out struct {
		History []Epoch `json:"history"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(out.History[1].TrainLoss) || !math.IsNaN(out.History[1].TestLoss) {
		t.Fatalf("non-finite values did not come back as NaN: %+v", out.History[1])
	}
	out.History[1].TrainLoss, out.History[1].TestLoss = h[1].TrainLoss, h[1].TestLoss
	if !reflect.DeepEqual(out.History[0], h[0]) {
		t.Fatalf("round trip %+v, want %+v", out.History[0], h[0])
	}
	if err := WriteJSON(p, func() {}); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("unencodable value: err = %v", err)
	}
}

// TestEpochJSONNames keeps the custom encoder in step with Epoch's tags.
func TestEpochJSONNames(t *testing.T) {
	b, err := json.Marshal(Epoch{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	typ := reflect.TypeFor[Epoch]()
	if len(m) != typ.NumField() {
		t.Fatalf("%d keys for %d fields: %s", len(m), typ.NumField(), b)
	}
	for i := range typ.NumField() {
		if tag := typ.Field(i).Tag.Get("json"); m[tag] == nil {
			t.Errorf("field %s: key %q missing from %s", typ.Field(i).Name, tag, b)
		}
	}
}

func TestWriteCurve(t *testing.T) {
	dir := t.TempDir()
	withNaN := history(5)
	withNaN[2].TestLoss = math.NaN()
	allNaN := []Epoch{{Epoch: 1, TrainLoss: math.NaN(), TrainTop1: math.NaN(), TestLoss: math.NaN(), TestTop1: math.NaN()}}
	for name, h := range map[string][]Epoch{"one": history(1), "many": history(200), "nan": withNaN, "allnan": allNaN} {
		p := filepath.Join(dir, name+".png")
		if err := WriteCurve(p, h); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 400 {
			t.Fatalf("%s: image %v too small", name, b)
		}
		// A blank canvas would mean nothing was drawn.
		colors := map[uint32]bool{}
		for y := 0; y < img.Bounds().Dy(); y += 7 {
			for x := 0; x < img.Bounds().Dx(); x += 7 {
				r, g, b, _ := img.At(x, y).RGBA()
				colors[r>>8<<16|g>>8<<8|b>>8] = true
			}
		}
		if len(colors) < 3 {
			t.Fatalf("%s: only %d colours", name, len(colors))
		}
	}
	if err := WriteCurve(filepath.Join(dir, "empty.png"), nil); !errors.Is(err, ErrNoData) {
		t.Fatalf("empty history: err = %v", err)
	}
}

func TestLog(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	l, err := OpenLog(dir, 7, &out)
	if err != nil {
		t.Fatal(err)
	}
	l.Printf("epoch %d", 1)
	l.Printf("done\n")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A resumed run appends to the same file.
	l, err = OpenLog(dir, 7, &out)
	if err != nil {
		t.Fatal(err)
	}
	l.Printf("resumed")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := "epoch 1\ndone\nresumed\n"
	if out.String() != want {
		t.Fatalf("console %q, want %q", out.String(), want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "log_seed_7.txt"))
	if err != nil || string(b) != want {
		t.Fatalf("file %q (%v), want %q", b, err, want)
	}
	if l.Path() != filepath.Join(dir, "log_seed_7.txt") {
		t.Fatalf("Path %q", l.Path())
	}
	if _, err := OpenLog(filepath.Join(dir, "missing"), 1, &out); err == nil {
		t.Fatal("no error for a missing directory")
	}
}

var lineRE = regexp.MustCompile(`^  Epoch: \[003\]\[(\d{3})/010\]   Time \d+\.\d{3} \(\d+\.\d{3}\)   Loss (\d\.\d{4}) \((\d\.\d{4})\)   Prec@1 (\d+\.\d{3}) \((\d+\.\d{3})\)   \d+\.\d img/s   \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]$`)

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, 3, 10, 4)
	for i := range 10 {
		p.Update(i, 100, 1.0-float64(i)*0.05, 50+float64(i))
	}
	p.Finish()
	p.Finish()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (steps 0, 4, 8):\n%s", len(lines), out.String())
	}
	for i, ln := range lines {
		m := lineRE.FindStringSubmatch(ln)
		if m == nil {
			t.Fatalf("line %q does not match the reference format", ln)
		}
		if want := []string{"000", "004", "008"}[i]; m[1] != want {
			t.Fatalf("line %d is for step %s, want %s", i, m[1], want)
		}
	}
	if m := lineRE.FindStringSubmatch(lines[2]); m[2] != "0.6000" || m[3] != "0.8000" || m[4] != "58.000" || m[5] != "54.000" {
		t.Fatalf("step 8 values %v", m[2:])
	}
	if math.Abs(p.Loss()-0.775) > 1e-12 || math.Abs(p.Top1()-54.5) > 1e-12 || p.ImgPerS() <= 0 || p.Seconds() <= 0 {
		t.Fatalf("averages loss %v top1 %v img/s %v", p.Loss(), p.Top1(), p.ImgPerS())
	}
}

// TestProgressWeighted checks that averages weight steps by their examples,
// so a short last batch counts for what it holds.
func TestProgressWeighted(t *testing.T) {
	p := NewProgress(&bytes.Buffer{}, 1, 2, 0)
	p.Update(0, 3, 1, 100)
	p.Update(1, 1, 5, 0)
	if p.Loss() != 2 || p.Top1() != 75 {
		t.Fatalf("loss %v top1 %v, want 2 and 75", p.Loss(), p.Top1())
	}
	if NewProgress(&bytes.Buffer{}, 1, 2, 0).Loss() != 0 {
		t.Fatal("empty progress has nonzero loss")
	}
}

func TestLogProgressNonTerminal(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	l, err := OpenLog(dir, 1, &out)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Progress(3, 10, 5)
	for i := range 10 {
		p.Update(i, 10, 0.5, 90)
	}
	p.Finish()
	l.Close()
	b, _ := os.ReadFile(l.Path())
	if n := strings.Count(string(b), "  Epoch: [003]"); n != 2 || string(b) != out.String() {
		t.Fatalf("file has %d progress lines; file %q, console %q", n, b, out.String())
	}
}

func BenchmarkProgressUpdate(b *testing.B) {
	p := NewProgress(&bytes.Buffer{}, 1, b.N, 1<<30)
	for i := range b.N {
		p.Update(i+1, 128, 0.5, 90)
	}
}

func TestDistinctTicks(t *testing.T) {
	for _, r := range [][2]float64{{2.61, 2.64}, {0.1702, 0.1705}, {0, 100}, {93.1, 93.3}} {
		ticks := distinctTicks{}.Ticks(r[0], r[1])
		if !labelsDistinct(ticks) {
			t.Errorf("range %v: duplicate labels in %+v", r, ticks)
		}
		n := 0
		for _, tk := range ticks {
			if tk.Label != "" {
				n++
			}
		}
		if n < 2 {
			t.Errorf("range %v: %d labelled ticks, want at least 2", r, n)
		}
	}
	// The default really does repeat labels on a narrow range; otherwise this
	// test would prove nothing.
	dup := false
	for _, r := range [][2]float64{{2.61, 2.64}, {0.1702, 0.1705}, {93.1, 93.3}} {
		dup = dup || !labelsDistinct(plot.DefaultTicks{}.Ticks(r[0], r[1]))
	}
	if !dup {
		t.Log("plot.DefaultTicks no longer repeats labels on these ranges")
	}
}
