package data

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

var (
	// ErrLayout reports an image folder that is not laid out as
	// root/<class>/<images>, or whose images cannot be used.
	ErrLayout = errors.New("data: bad image folder")
	// ErrImage reports an image file that cannot be read or decoded.
	ErrImage = errors.New("data: unreadable image")
)

// DefaultImageSize is the side of the square crop ImageFolder datasets are
// trained and evaluated at unless Options say otherwise (ImageNet's 224).
const DefaultImageSize = 224

// Options are choices that shape a dataset's samples; the zero value gives
// each dataset's defaults.
type Options struct {
	// ImageSize is the side of the square crop of an ImageFolder dataset
	// (0: DefaultImageSize). Validation images are resized so that their
	// shorter side is ImageSize·256/224 before the center crop.
	ImageSize int
}

// IsImageFolder reports whether a dataset is read from folders of image
// files (decoded as batches are made) rather than held in memory.
func IsImageFolder(name string) bool { return name == "imagenet" || name == "imagefolder" }

// ImageFolder is one split of a folder of images laid out as torchvision's
// ImageFolder reads it: root/<class>/**/<image>. Classes are the sorted
// subfolder names; files are taken in torchvision's order (folders sorted
// by path, names sorted within each). Files ending in .jpg, .jpeg or .png,
// in any case, are images; their content decides the format. Nothing is
// decoded until the loader asks for a sample.
type ImageFolder struct {
	Root       string
	Paths      []string // full path of every image
	Labels     []int32
	ClassNames []string
	// Size is the side of the square crop the loader produces; ResizeSize
	// the shorter side validation images are resized to before the crop.
	Size, ResizeSize int
}

// Len is the number of images.
func (f *ImageFolder) Len() int { return len(f.Paths) }

// Dims is the shape of a sample: 3 channels, Size×Size.
func (f *ImageFolder) Dims() (c, h, w int) { return 3, f.Size, f.Size }

// Label is the class index of image i.
func (f *ImageFolder) Label(i int) int32 { return f.Labels[i] }

func (*ImageFolder) sealed() {}

// subset keeps n images evenly spread over the file order (the middle of
// each of n equal stretches), so that a small
// subset still covers every class in proportion (the first n files would be
// the first classes only).
func (f *ImageFolder) subset(n int) *ImageFolder {
	if n <= 0 || n >= len(f.Paths) {
		return f
	}
	s := *f
	s.Paths, s.Labels = make([]string, n), make([]int32, n)
	for i := range n {
		j := int((2*int64(i) + 1) * int64(len(f.Paths)) / (2 * int64(n)))
		s.Paths[i], s.Labels[i] = f.Paths[j], f.Labels[j]
	}
	return &s
}

// resizeFor is the validation resize for a crop of side size: 256 for 224,
// in proportion otherwise.
func resizeFor(size int) int { return size * 256 / 224 }

// torchvision's IMG_EXTENSIONS that tnn cannot decode; finding one is an
// error rather than a silently smaller dataset than torchvision's.
var otherImageExts = []string{".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

func imageExt(name string) (ok, other bool) {
	n := strings.ToLower(name)
	for _, e := range []string{".jpg", ".jpeg", ".png"} {
		if strings.HasSuffix(n, e) {
			return true, false
		}
	}
	for _, e := range otherImageExts {
		if strings.HasSuffix(n, e) {
			return false, true
		}
	}
	return false, false
}

// FindClasses lists the subfolders of root, sorted: the class names and so
// the label order of torchvision's ImageFolder.
func FindClasses(root string) ([]string, error) {
	es, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var classes []string
	for _, e := range es {
		if isDir(filepath.Join(root, e.Name())) {
			classes = append(classes, e.Name())
		}
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("%w: %s has no class folders (expected %s/<class>/<image>.jpg)", ErrLayout, root, root)
	}
	slices.Sort(classes)
	return classes, nil
}

// OpenImageFolder lists the images of root/<class>/ for every class folder
// of root. classes, when not nil, fixes the label of each folder name (a
// validation split takes its training split's classes, which it may have
// fewer of); a folder not among them is an error. size is the crop side
// (0: DefaultImageSize).
func OpenImageFolder(root string, classes []string, size int) (*ImageFolder, error) {
	if size <= 0 {
		size = DefaultImageSize
	}
	found, err := FindClasses(root)
	if err != nil {
		return nil, err
	}
	if classes == nil {
		classes = found
	}
	index := make(map[string]int32, len(classes))
	for i, c := range classes {
		index[c] = int32(i)
	}
	f := &ImageFolder{Root: root, ClassNames: classes, Size: size, ResizeSize: max(resizeFor(size), size)}
	var empty, unsupported []string
	for _, c := range found {
		label, ok := index[c]
		if !ok {
			return nil, fmt.Errorf("%w: %s: class folder %q is not among the %d training classes", ErrLayout, root, c, len(classes))
		}
		n := len(f.Paths)
		if err := walkClass(filepath.Join(root, c), func(p string) {
			if ok, other := imageExt(p); ok {
				f.Paths = append(f.Paths, p)
				f.Labels = append(f.Labels, label)
			} else if other {
				unsupported = append(unsupported, p)
			}
		}); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrLayout, err)
		}
		if len(f.Paths) == n {
			empty = append(empty, c)
		}
	}
	if len(unsupported) > 0 {
		return nil, fmt.Errorf("%w: %d images in formats other than JPEG and PNG, such as %s; convert them or move them out", ErrLayout, len(unsupported), unsupported[0])
	}
	if len(empty) > 0 {
		return nil, fmt.Errorf("%w: %s: no .jpg, .jpeg or .png files in class folder(s) %s", ErrLayout, root, strings.Join(empty, ", "))
	}
	return f, nil
}

// walkClass calls fn for every file under dir in the order of Python's
// sorted(os.walk(dir, followlinks=True)) with each folder's names sorted:
// folders by full path, then the files of each. Symbolic links are
// followed, except into a folder that is its own ancestor.
func walkClass(dir string, fn func(path string)) error {
	type folder struct {
		path  string
		files []string
	}
	var folders []folder
	var visit func(p string, ancestors []os.FileInfo) error
	visit = func(p string, ancestors []os.FileInfo) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		for _, a := range ancestors {
			if os.SameFile(a, fi) {
				return nil
			}
		}
		es, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		fo := folder{path: p}
		var subs []string
		for _, e := range es {
			q := filepath.Join(p, e.Name())
			if isDir(q) {
				subs = append(subs, q)
			} else {
				fo.files = append(fo.files, e.Name())
			}
		}
		slices.Sort(fo.files)
		folders = append(folders, fo)
		for _, s := range subs {
			if err := visit(s, append(ancestors, fi)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(dir, nil); err != nil {
		return err
	}
	slices.SortFunc(folders, func(a, b folder) int { return strings.Compare(a.path, b.path) })
	for _, fo := range folders {
		for _, n := range fo.files {
			fn(filepath.Join(fo.path, n))
		}
	}
	return nil
}

// folderRoot finds the folder holding a dataset's train/ and val/ splits.
func folderRoot(name, dir string) (string, error) {
	ds := searchDirs(name, dir)
	for _, d := range ds {
		if isDir(filepath.Join(d, "train")) || isDir(filepath.Join(d, "val")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: %s: no folder with train/ and val/ class folders among %s", ErrNotFound, name, strings.Join(ds, ", "))
}

// folderClasses returns a folder dataset's root and classes: those of its
// training split, or of its validation split when there is no training
// split (evaluation only).
func folderClasses(name, dir string) (root string, classes []string, err error) {
	if root, err = folderRoot(name, dir); err != nil {
		return "", nil, err
	}
	split := filepath.Join(root, "train")
	if !isDir(split) {
		split = filepath.Join(root, "val")
	}
	classes, err = FindClasses(split)
	return root, classes, err
}

// SpecOf is Spec for a dataset as found in dir: for ImageFolder datasets
// the classes come from the folder and the geometry from opt. Other
// datasets ignore dir and opt.
func SpecOf(name, dir string, opt Options) (DatasetSpec, error) {
	spec, err := Spec(name)
	if err != nil || !IsImageFolder(name) {
		return spec, err
	}
	_, classes, err := folderClasses(name, dir)
	if err != nil {
		return DatasetSpec{}, err
	}
	size := opt.ImageSize
	if size <= 0 {
		size = DefaultImageSize
	}
	spec.Classes, spec.ClassNames = len(classes), classes
	spec.H, spec.W = size, size
	spec.TrainSize, spec.TestSize = 0, 0
	return spec, nil
}

// Open returns a split of a dataset as a Source: in memory for the IDX and
// CIFAR datasets (as Load), files decoded on the fly for ImageFolder ones,
// whose training split is dir/train and test split dir/val.
func Open(name, dir string, train bool, opt Options) (Source, error) {
	if !IsImageFolder(name) {
		ds, err := Load(name, dir, train)
		if err != nil {
			return nil, err
		}
		return ds, nil
	}
	root, classes, err := folderClasses(name, dir)
	if err != nil {
		return nil, err
	}
	split := "val"
	if train {
		split = "train"
	}
	p := filepath.Join(root, split)
	if !isDir(p) {
		return nil, fmt.Errorf("%w: %s: no %s folder in %s", ErrNotFound, name, split, root)
	}
	return OpenImageFolder(p, classes, opt.ImageSize)
}

// Subset returns the first n samples of an in-memory dataset, or n images
// spread evenly over an ImageFolder (so that every class keeps its share).
// n <= 0 or n >= the size returns src itself.
func Subset(src Source, n int) Source {
	switch s := src.(type) {
	case *Dataset:
		return s.Subset(n)
	case *ImageFolder:
		return s.subset(n)
	}
	return src
}

// workspace is one loader worker's reusable decoding state.
type workspace struct {
	file     []byte
	rgb      []uint8
	turboBuf []uint8
	rs       resampler
	tj       turboState
}

func (ws *workspace) release() { ws.tj.close() }

// maxFileBytes bounds the size of one image file read into memory.
const maxFileBytes = 1 << 30

func (ws *workspace) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFileBytes {
		return nil, fmt.Errorf("%d bytes is more than an image file may have", fi.Size())
	}
	ws.file = grow(ws.file, int(fi.Size()))
	if _, err := io.ReadFull(f, ws.file); err != nil {
		return nil, err
	}
	return ws.file, nil
}

// draftScale is the largest of 8, 4, 2 by which a region of w×h pixels can
// be shrunk while decoding and still be at least ow×oh: PIL's draft rule,
// which keeps the final bilinear resize a reduction.
func draftScale(w, h, ow, oh int) int {
	for _, s := range []int{8, 4, 2} {
		if w >= ow*s && h >= oh*s {
			return s
		}
	}
	return 1
}

// sample writes image i into dst (3×Size×Size, channel-planar) through lut
// (256 normalised values per channel). With aug.RandomResizedCrop it takes
// torchvision's RandomResizedCrop(Size) with parameters drawn from r, else
// Resize(ResizeSize) + CenterCrop(Size); with aug.Flip, a horizontal flip
// with probability 0.5 drawn from r first.
func (f *ImageFolder) sample(dst []float32, i int, aug Augment, r *rng, lut []float32, ws *workspace) error {
	path := f.Paths[i]
	if err := f.transform(dst, path, aug, r, lut, ws); err != nil {
		return fmt.Errorf("%w %s: %v", ErrImage, path, err)
	}
	return nil
}

func (f *ImageFolder) transform(dst []float32, path string, aug Augment, r *rng, lut []float32, ws *workspace) error {
	b, err := ws.read(path)
	if err != nil {
		return err
	}
	format := sniff(b)
	fw, fh, err := header(b, format, &ws.tj)
	if err != nil {
		return err
	}
	return render(dst, b, format, f.plan(fw, fh, aug, r), lut, ws)
}

// plan is what to do with one image: resample region of the full-size
// image to ow×oh pixels, keep the size×size window at (wx, wy), and mirror
// it if flip.
type plan struct {
	fw, fh         int // full image size
	region         rect
	ow, oh, wx, wy int
	size           int
	flip           bool
}

func (f *ImageFolder) plan(fw, fh int, aug Augment, r *rng) plan {
	p := plan{fw: fw, fh: fh, size: f.Size}
	p.flip = aug.Flip && r.next()>>63 == 1
	if aug.RandomResizedCrop {
		p.region = rrcParams(r, fw, fh, rrcScale, rrcRatio)
		p.ow, p.oh = f.Size, f.Size
	} else {
		p.region = rect{0, 0, fw, fh}
		// Never resized below the crop, which torchvision would pad.
		p.ow, p.oh = resizedSize(fw, fh, max(f.ResizeSize, f.Size))
		p.wx, p.wy = centerCropOrigin(p.ow, p.oh, f.Size)
	}
	return p
}

// render decodes b and carries out p into dst.
func render(dst []float32, b []byte, format imageFormat, p plan, lut []float32, ws *workspace) error {
	scale := 1
	if format == formatJPEG {
		scale = draftScale(p.region.w, p.region.h, p.ow, p.oh)
	}
	d, err := decodeImage(b, format, scale, ws)
	if err != nil {
		return err
	}
	if d.scale == 1 && (d.w != p.fw || d.h != p.fh) {
		return fmt.Errorf("decoded %dx%d pixels, header says %dx%d", d.w, d.h, p.fw, p.fh)
	}
	// The region in decoded pixels: whole pixels around it, and the exact
	// (fractional, when scaled) box within them.
	rg := p.region
	rx0, ry0, rx1, ry1 := rg.x, rg.y, rg.x+rg.w, rg.y+rg.h
	bx0, by0, bx1, by1 := 0.0, 0.0, float64(rg.w), float64(rg.h)
	if d.scale > 1 {
		s := float64(d.scale)
		fx0, fy0, fx1, fy1 := float64(rx0)/s, float64(ry0)/s, float64(rx1)/s, float64(ry1)/s
		rx0, ry0 = int(fx0), int(fy0)
		rx1, ry1 = min(int(math.Ceil(fx1)), d.w), min(int(math.Ceil(fy1)), d.h)
		bx0, by0, bx1, by1 = fx0-float64(rx0), fy0-float64(ry0), fx1-float64(rx0), fy1-float64(ry0)
	}
	rs := &ws.rs
	rs.ax.set(rx1-rx0, bx0, bx1, p.ow, p.wx, p.size)
	rs.ay.set(ry1-ry0, by0, by1, p.oh, p.wy, p.size)
	sx0, sx1 := rs.ax.span()
	sy0, sy1 := rs.ay.span()
	pix, stride := d.rgbSpan(rect{rx0 + sx0, ry0 + sy0, sx1 - sx0, sy1 - sy0}, &ws.rgb)
	rs.run(dst, pix, stride, lut, p.flip)
	return nil
}
