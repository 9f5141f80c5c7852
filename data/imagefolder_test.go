package data

import (
	"bytes"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func jpegBytes(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// smoothImage is a w×h colour gradient, which JPEG keeps nearly intact.
func smoothImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(255 * x / max(w-1, 1)), uint8(255 * y / max(h-1, 1)), uint8(128 + 100*(x-y)/max(w+h, 1)), 255})
		}
	}
	return img
}

func grayImage(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 5)
	}
	return img
}

func palettedImage(w, h int) *image.Paletted {
	pal := color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 200, 0, 255}, color.NRGBA{0, 0, 255, 128}}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range img.Pix {
		img.Pix[i] = uint8(i % 3)
	}
	return img
}

// tinyFolder writes a small ImageFolder: three classes of JPEG and PNG
// files of odd sizes in both orientations, a nested folder, names in mixed
// case, and a file that is not an image. It returns the training paths in
// the order torchvision lists them, relative to root.
func tinyFolder(t testing.TB, root string) []string {
	t.Helper()
	files := map[string][]byte{
		"train/a_cat/img1.JPEG":             jpegBytes(t, testImage(37, 23), 90),
		"train/a_cat/img0.png":              pngBytes(t, testImage(23, 41)),
		"train/a_cat/notes.txt":             []byte("not an image"),
		"train/a_cat/sub/z.jpg":             jpegBytes(t, smoothImage(30, 30), 90),
		"train/a_cat/sub-2/y.jpg":           jpegBytes(t, testImage(45, 31), 75),
		"train/a_cat/sub/deeper/x.png":      pngBytes(t, palettedImage(19, 27)),
		"train/b_dog/d1.jpg":                jpegBytes(t, testImage(41, 29), 95),
		"train/b_dog/d2.PNG":                pngBytes(t, palettedImage(29, 41)),
		"train/b_dog/D0.jpeg":               jpegBytes(t, grayImage(33, 33), 90),
		"train/b_dog/png-named-as-jpeg.jpg": pngBytes(t, testImage(40, 26)),
		"train/c_zebra/z1.jpg":              jpegBytes(t, testImage(64, 48), 90),
		"train/c_zebra/z2.jpg":              jpegBytes(t, testImage(48, 64), 90),
		"val/a_cat/v1.jpg":                  jpegBytes(t, testImage(50, 38), 90),
		"val/b_dog/v2.png":                  pngBytes(t, testImage(38, 50)),
		"val/c_zebra/v3.jpg":                jpegBytes(t, smoothImage(36, 36), 90),
	}
	for p, b := range files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(p)), b)
	}
	// Folders in full-path order: a_cat, a_cat/sub, a_cat/sub-2 ('-'
	// sorts before '/'), a_cat/sub/deeper; capitals before lower case.
	return []string{
		"train/a_cat/img0.png", "train/a_cat/img1.JPEG", "train/a_cat/sub/z.jpg", "train/a_cat/sub-2/y.jpg", "train/a_cat/sub/deeper/x.png",
		"train/b_dog/D0.jpeg", "train/b_dog/d1.jpg", "train/b_dog/d2.PNG", "train/b_dog/png-named-as-jpeg.jpg",
		"train/c_zebra/z1.jpg", "train/c_zebra/z2.jpg",
	}
}

func TestImageFolderLayout(t *testing.T) {
	root := t.TempDir()
	want := tinyFolder(t, root)
	spec, err := SpecOf("imagefolder", root, Options{ImageSize: 48})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Classes != 3 || spec.C != 3 || spec.H != 48 || spec.W != 48 || !slices.Equal(spec.ClassNames, []string{"a_cat", "b_dog", "c_zebra"}) ||
		spec.TrainAugment != (Augment{RandomResizedCrop: true, Flip: true}) || spec.Norm.Mean[2] != 0.406 || spec.Norm.Std[0] != 0.229 {
		t.Errorf("spec %+v", spec)
	}
	src, err := Open("imagefolder", root, true, Options{ImageSize: 48})
	if err != nil {
		t.Fatal(err)
	}
	f := src.(*ImageFolder)
	var got []string
	for _, p := range f.Paths {
		r, _ := filepath.Rel(root, p)
		got = append(got, filepath.ToSlash(r))
	}
	if !slices.Equal(got, want) {
		t.Errorf("files\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(f.Labels, []int32{0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2}) {
		t.Errorf("labels %v", f.Labels)
	}
	if c, h, w := f.Dims(); c != 3 || h != 48 || w != 48 || f.ResizeSize != 54 {
		t.Errorf("dims %d %d %d resize %d", c, h, w, f.ResizeSize)
	}
	val, err := Open("imagenet", root, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := val.(*ImageFolder); v.Len() != 3 || !slices.Equal(v.Labels, []int32{0, 1, 2}) || v.Size != 224 || v.ResizeSize != 256 {
		t.Errorf("val: %d images, labels %v, size %d/%d", v.Len(), v.Labels, v.Size, v.ResizeSize)
	}
	// Spread subsets keep every class.
	s := Subset(f, 3).(*ImageFolder)
	if !slices.Equal(s.Labels, []int32{0, 1, 2}) || s.Len() != 3 || Subset(f, 0) != Source(f) {
		t.Errorf("subset labels %v", s.Labels)
	}
	// An in-memory dataset through Open is Load's.
	if ds, err := Open("fashion-mnist-sample", "", false, Options{}); err != nil || ds.Len() != sampleTest {
		t.Errorf("Open(fashion-mnist-sample): %v", err)
	}
}

func TestImageFolderLayoutErrors(t *testing.T) {
	good := jpegBytes(t, testImage(20, 20), 90)
	cases := []struct {
		name  string
		files map[string][]byte
		is    error
		says  string
	}{
		{"no folder", map[string][]byte{"readme": nil}, ErrNotFound, "train/ and val/"},
		{"no classes", map[string][]byte{"train/x.jpg": good, "val/y.jpg": good}, ErrLayout, "no class folders"},
		{"empty class", map[string][]byte{"train/a/x.jpg": good, "train/b/notes.txt": nil, "val/a/y.jpg": good}, ErrLayout, "class folder(s) b"},
		{"other format", map[string][]byte{"train/a/x.jpg": good, "train/a/y.BMP": nil, "val/a/y.jpg": good}, ErrLayout, "y.BMP"},
		{"unknown val class", map[string][]byte{"train/a/x.jpg": good, "val/a/y.jpg": good, "val/zz/y.jpg": good}, ErrLayout, `"zz"`},
	}
	for _, c := range cases {
		root := t.TempDir()
		for p, b := range c.files {
			writeFile(t, filepath.Join(root, p), b)
		}
		_, err := Open("imagefolder", root, true, Options{})
		if err == nil {
			_, err = Open("imagefolder", root, false, Options{})
		}
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want %v saying %q", c.name, err, c.is, c.says)
		}
	}
	if _, err := Load("imagenet", "", true); !errors.Is(err, ErrUnknownDataset) || !strings.Contains(err.Error(), "read in place") {
		t.Errorf("Load(imagenet): %v", err)
	}
}

// TestImageFolderDeterminism: batches depend on seed and epoch only, never
// on the number of workers; epochs differ.
func TestImageFolderDeterminism(t *testing.T) {
	root := t.TempDir()
	tinyFolder(t, root)
	src, err := Open("imagefolder", root, true, Options{ImageSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := Spec("imagefolder")
	cfg := LoaderConfig{BatchSize: 4, Shuffle: true, Augment: spec.TrainAugment, Norm: spec.Norm, Seed: 3}
	var ref epochData
	for _, workers := range []int{0, 1, 3} {
		cfg.Workers = workers
		l := NewLoader(src, cfg)
		e := drain(t, l, 5)
		if l.Err() != nil {
			t.Fatal(l.Err())
		}
		l.Close()
		if len(e.y) != 11 || !slices.Equal(e.sizes, []int{4, 4, 3}) {
			t.Fatalf("workers=%d: sizes %v", workers, e.sizes)
		}
		if workers == 0 {
			ref = e
			continue
		}
		if !equalEpochs(e, ref) {
			t.Fatalf("workers=%d differs from the synchronous loader", workers)
		}
	}
	for i, v := range ref.idx {
		if ref.y[i] != src.Label(v) {
			t.Fatalf("label of position %d", i)
		}
	}
	l := NewLoader(src, cfg)
	other := drain(t, l, 6)
	l.Close()
	if slices.Equal(other.x, ref.x) {
		t.Error("epochs 5 and 6 gave the same pixels")
	}
	// Unshuffled, unaugmented: sample 0 is the validation transform of the
	// first file.
	l = NewLoader(src, LoaderConfig{BatchSize: 2})
	e := drain(t, l, 0)
	l.Close()
	f := src.(*ImageFolder)
	b, err := os.ReadFile(f.Paths[0])
	if err != nil {
		t.Fatal(err)
	}
	want := renderBytes(t, b, f.plan(23, 41, Augment{}, nil))
	for c := range 3 {
		for i := range 24 * 24 {
			if got, w := e.x[c*576+i], float32(want[i*3+c])/255; got != w {
				t.Fatalf("sample 0 channel %d pixel %d: %v, want %v", c, i, got, w)
			}
		}
	}
}

// TestImageFolderCorrupt: an unreadable image ends the epoch with an error
// naming the file, with and without workers.
func TestImageFolderCorrupt(t *testing.T) {
	good := jpegBytes(t, testImage(30, 20), 90)
	for _, c := range []struct {
		name string
		body []byte
		says string
	}{
		{"garbage.jpg", []byte("this is not a JPEG at all"), "not a JPEG or PNG"},
		{"truncated.jpg", good[:len(good)/2], ""},
		{"bad.png", append(pngBytes(t, testImage(8, 8))[:40], 0, 0, 0), ""},
		{"huge.png", pngHeader(t, 100000, 100000), "limit"},
	} {
		root := t.TempDir()
		for i := range 6 {
			writeFile(t, filepath.Join(root, "train", "a", "ok"+string(rune('0'+i))+".jpg"), good)
		}
		bad := filepath.Join(root, "train", "b", c.name)
		writeFile(t, bad, c.body)
		src, err := Open("imagefolder", root, true, Options{ImageSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{0, 2} {
			l := NewLoader(src, LoaderConfig{BatchSize: 2, Workers: workers, Augment: Augment{RandomResizedCrop: true}})
			l.Start(0)
			n := 0
			for {
				b, ok := l.Next()
				if !ok {
					break
				}
				n++
				l.Release(b)
			}
			err := l.Err()
			if n != 3 || !errors.Is(err, ErrImage) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%s, workers=%d: %d batches, error %v", c.name, workers, n, err)
			}
			// The loader recovers for the next epoch (which fails again).
			l.Start(1)
			if _, ok := l.Next(); !ok || l.Err() != nil {
				t.Errorf("%s: next epoch: %v", c.name, l.Err())
			}
			l.Close()
		}
	}
}

// pngHeader is the start of a PNG claiming w×h pixels.
func pngHeader(t testing.TB, w, h uint32) []byte {
	b := pngBytes(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	b = slices.Clone(b[:33])
	b[16], b[17], b[18], b[19] = byte(w>>24), byte(w>>16), byte(w>>8), byte(w)
	b[20], b[21], b[22], b[23] = byte(h>>24), byte(h>>16), byte(h>>8), byte(h)
	c := crc32.ChecksumIEEE(b[12:29])
	b[29], b[30], b[31], b[32] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	return b
}

// TestDecodeKinds: JPEG (colour and grey), paletted PNG and a PNG behind a
// .jpg name all come out as the pixels they hold.
func TestDecodeKinds(t *testing.T) {
	p := plan{fw: 40, fh: 30, region: rect{0, 0, 40, 30}, ow: 40, oh: 30, size: 30, wx: 5}
	src := smoothImage(40, 30)
	want := make([]uint8, 0, 30*30*3)
	for y := range 30 {
		for x := 5; x < 35; x++ {
			c := src.RGBAAt(x, y)
			want = append(want, c.R, c.G, c.B)
		}
	}
	check := func(name string, got []uint8, tol float64) {
		var sum float64
		for i := range got {
			d := float64(got[i]) - float64(want[i])
			sum += d * d
		}
		if rms := math.Sqrt(sum / float64(len(got))); rms > tol {
			t.Errorf("%s: RMS difference %.2f, want ≤ %g", name, rms, tol)
		}
	}
	check("png", renderBytes(t, pngBytes(t, src), p), 0)
	check("jpeg q100", renderBytes(t, jpegBytes(t, src, 100), p), 4) // 4:2:0 chroma on a steep gradient
	check("jpeg q90", renderBytes(t, jpegBytes(t, src, 90), p), 4.5)

	g := grayImage(40, 30)
	got := renderBytes(t, jpegBytes(t, g, 100), p)
	for y := range 30 {
		for x := range 30 {
			v := float64(g.GrayAt(x+5, y).Y)
			for c := range 3 {
				if d := float64(got[(y*30+x)*3+c]) - v; d > 3 || d < -3 {
					t.Fatalf("grey JPEG at (%d, %d) channel %d: %d, want %v", x, y, c, got[(y*30+x)*3+c], v)
				}
			}
		}
	}
	pal := palettedImage(40, 30)
	got = renderBytes(t, pngBytes(t, pal), p)
	for y := range 30 {
		for x := range 30 {
			c := color.NRGBAModel.Convert(pal.At(x+5, y)).(color.NRGBA)
			if o := got[(y*30+x)*3:]; o[0] != c.R || o[1] != c.G || o[2] != c.B {
				t.Fatalf("paletted PNG at (%d, %d): %v, want %v", x, y, o[:3], c)
			}
		}
	}
}
