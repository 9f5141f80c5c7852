package data

import (
	"sync"
	"sync/atomic"

	"github.com/tnn-go/tnn/tensor"
)

// Source is a split the Loader can batch: an in-memory *Dataset, or an
// *ImageFolder whose files the loader's workers decode as batches are made.
// Only this package implements it, because the Loader has a separate path
// for each kind (the in-memory one must stay allocation-free and fast).
type Source interface {
	Len() int
	Dims() (c, h, w int)
	Label(i int) int32
	sealed()
}

// Len is the number of samples.
func (d *Dataset) Len() int { return d.N }

// Dims is the shape of a sample.
func (d *Dataset) Dims() (c, h, w int) { return d.C, d.H, d.W }

// Label is the class of sample i.
func (d *Dataset) Label(i int) int32 { return d.Labels[i] }

func (*Dataset) sealed() {}

// Batch is one mini-batch. X is B×C×H×W, normalised (and augmented if the
// loader augments); the last batch of an epoch may be smaller unless
// DropLast. Index holds the dataset index of each sample.
type Batch struct {
	X     *tensor.Tensor
	Y     []int32
	Index []int

	owner  *Loader
	pooled uint32 // 1 while in the free pool; guards against double Release
	err    error  // set by a worker that could not make the batch
}

// LoaderConfig configures a Loader.
//
// BatchSize below 1 is taken as 1. Norm entries are per channel; a Norm
// shorter than the channel count repeats its last entry, an empty one leaves
// pixels at x/255, and a zero Std counts as 1. Workers <= 0 produces batches
// synchronously inside Next.
type LoaderConfig struct {
	BatchSize int
	Shuffle   bool
	Augment   Augment
	Norm      Norm
	Seed      uint64
	Workers   int
	DropLast  bool
}

// Loader turns a Source into batches, one epoch at a time.
//
// Output is a pure function of (source, config, epoch): the order of an
// epoch depends only on Seed and the epoch, and the augmentation of the
// sample at position p only on Seed, the epoch and p. Worker count and
// scheduling never show in the data, so a run resumed at epoch e sees
// exactly what an uninterrupted run would have seen.
//
// An in-memory Dataset takes Augment's Pad and Flip; an ImageFolder takes
// RandomResizedCrop and Flip, and without RandomResizedCrop gives the
// validation transform (resize and center crop). An image that cannot be
// read ends the epoch: Next returns false and Err says which file.
//
// Start, Next, Err and Close are meant for one goroutine; Release may be
// called from any goroutine.
type Loader struct {
	ds      *Dataset     // in-memory source, or nil
	folder  *ImageFolder // file source, or nil
	n       int
	c, h, w int
	cfg     LoaderConfig
	bs      int
	nb      int
	chw     int
	depth   int
	lut     []float32 // 256 normalised values per channel
	perm    []int
	free    chan *Batch

	epoch  int
	next   int
	active bool
	run    *run
	err    error
	ws     workspace // for batches made inside Next
}

// run is the background state of one epoch.
type run struct {
	done    chan struct{}
	results []chan *Batch // one per batch, capacity 1, so producers never block
	tokens  chan struct{} // bounds batches produced but not yet taken by Next
	wg      sync.WaitGroup
}

// NewLoader returns a loader over src; call Start before Next.
func NewLoader(src Source, cfg LoaderConfig) *Loader {
	l := &Loader{cfg: cfg, bs: max(cfg.BatchSize, 1), n: src.Len()}
	switch s := src.(type) {
	case *Dataset:
		l.ds = s
	case *ImageFolder:
		l.folder = s
	}
	l.c, l.h, l.w = src.Dims()
	l.chw = l.c * l.h * l.w
	l.cfg.Augment.Pad = max(l.cfg.Augment.Pad, 0)
	l.nb = l.n / l.bs
	if !cfg.DropLast && l.n%l.bs != 0 {
		l.nb++
	}
	// depth keeps every worker busy with one batch ready for Next; the pool
	// adds one for the batch the caller is training on.
	l.depth = max(cfg.Workers, 0) + 1
	l.free = make(chan *Batch, l.depth+1)
	l.lut = make([]float32, l.c*256)
	for c := range l.c {
		var m, s float32 = 0, 1
		if k := len(cfg.Norm.Mean); k > 0 {
			m = cfg.Norm.Mean[min(c, k-1)]
		}
		if k := len(cfg.Norm.Std); k > 0 && cfg.Norm.Std[min(c, k-1)] != 0 {
			s = cfg.Norm.Std[min(c, k-1)]
		}
		for v := range 256 {
			// Same float32 operations as torchvision's ToTensor + Normalize.
			l.lut[c*256+v] = (float32(v)/255 - m) / s
		}
	}
	return l
}

// Len is the number of batches per epoch.
func (l *Loader) Len() int { return l.nb }

// Start begins the given epoch, abandoning whatever remains of the previous
// one. With Workers > 0 batches are produced ahead in the background.
func (l *Loader) Start(epoch int) {
	l.stop()
	l.epoch, l.next, l.active, l.err = epoch, 0, true, nil
	if cap(l.perm) < l.n {
		l.perm = make([]int, l.n)
	}
	l.perm = l.perm[:l.n]
	for i := range l.perm {
		l.perm[i] = i
	}
	if l.cfg.Shuffle {
		r := rng{seedOf(tagPerm, l.cfg.Seed, uint64(epoch), 0)}
		for i := len(l.perm) - 1; i > 0; i-- {
			j := r.intn(i + 1)
			l.perm[i], l.perm[j] = l.perm[j], l.perm[i]
		}
	}
	if l.cfg.Workers <= 0 || l.nb == 0 {
		return
	}
	r := &run{done: make(chan struct{}), results: make([]chan *Batch, l.nb), tokens: make(chan struct{}, l.depth)}
	for i := range r.results {
		r.results[i] = make(chan *Batch, 1)
	}
	jobs := make(chan int)
	r.wg.Add(1 + l.cfg.Workers)
	go func() {
		defer r.wg.Done()
		defer close(jobs)
		for k := range l.nb {
			select {
			case r.tokens <- struct{}{}:
			case <-r.done:
				return
			}
			select {
			case jobs <- k:
			case <-r.done:
				return
			}
		}
	}()
	for range l.cfg.Workers {
		go func() {
			defer r.wg.Done()
			var ws workspace
			defer ws.release()
			for k := range jobs {
				b := l.get()
				b.err = l.fill(b, k, epoch, &ws)
				r.results[k] <- b
			}
		}()
	}
	l.run = r
}

// Next returns the next batch of the epoch in order, or false when the epoch
// is exhausted (or was never started, or the loader is closed, or a sample
// could not be made: see Err). The batch belongs to the caller until passed
// to Release.
func (l *Loader) Next() (*Batch, bool) {
	if !l.active || l.next >= l.nb {
		return nil, false
	}
	k := l.next
	l.next++
	var b *Batch
	if l.run == nil {
		b = l.get()
		b.err = l.fill(b, k, l.epoch, &l.ws)
	} else {
		b = <-l.run.results[k]
		<-l.run.tokens
	}
	if b.err != nil {
		l.err, b.err = b.err, nil
		l.active = false
		l.Release(b)
		return nil, false
	}
	return b, true
}

// Err is the error that ended the current epoch early, or nil.
func (l *Loader) Err() error { return l.err }

// Release hands a batch's buffers back for reuse by later batches; b must not
// be used afterwards. Batches not released are simply garbage collected, so
// forgetting to release costs allocations, never a deadlock.
func (l *Loader) Release(b *Batch) {
	if b == nil || b.owner != l || !atomic.CompareAndSwapUint32(&b.pooled, 0, 1) {
		return
	}
	select {
	case l.free <- b:
	default:
	}
}

// Close stops background work and drops pooled buffers. The loader may be
// started again afterwards.
func (l *Loader) Close() {
	l.stop()
	l.ws.release()
	for {
		select {
		case <-l.free:
		default:
			return
		}
	}
}

// stop ends the current epoch's goroutines and reclaims batches they had
// produced but Next had not returned.
func (l *Loader) stop() {
	l.active = false
	r := l.run
	if r == nil {
		return
	}
	l.run = nil
	close(r.done)
	r.wg.Wait()
	for _, ch := range r.results {
		select {
		case b := <-ch:
			l.Release(b)
		default:
		}
	}
}

func (l *Loader) get() *Batch {
	select {
	case b := <-l.free:
		atomic.StoreUint32(&b.pooled, 0)
		return b
	default:
	}
	return &Batch{
		X:     tensor.New(l.bs, l.c, l.h, l.w),
		Y:     make([]int32, l.bs),
		Index: make([]int, l.bs),
		owner: l,
	}
}

// fill writes batch k of the given epoch into b; ws is the calling
// goroutine's decoding state.
func (l *Loader) fill(b *Batch, k, epoch int, ws *workspace) error {
	start := k * l.bs
	n := min(start+l.bs, l.n) - start
	b.X.Data = b.X.Data[:n*l.chw]
	if len(b.X.Shape) != 4 {
		b.X.Shape = make([]int, 4)
	}
	b.X.Shape[0], b.X.Shape[1], b.X.Shape[2], b.X.Shape[3] = n, l.c, l.h, l.w
	b.Y, b.Index = b.Y[:n], b.Index[:n]
	aug := l.cfg.Augment
	if l.folder != nil {
		for i := range n {
			p := start + i
			idx := l.perm[p]
			b.Index[i] = idx
			b.Y[i] = l.folder.Labels[idx]
			r := rng{seedOf(tagAug, l.cfg.Seed, uint64(epoch), uint64(p))}
			if err := l.folder.sample(b.X.Data[i*l.chw:(i+1)*l.chw], idx, aug, &r, l.lut, ws); err != nil {
				return err
			}
		}
		return nil
	}
	ds := l.ds
	for i := range n {
		p := start + i
		idx := l.perm[p]
		b.Index[i] = idx
		b.Y[i] = ds.Labels[idx]
		var dy, dx int
		var flip bool
		if aug.Pad > 0 || aug.Flip {
			dy, dx, flip = augParams(l.cfg.Seed, epoch, p, aug)
		}
		l.render(b.X.Data[i*l.chw:(i+1)*l.chw], ds.Image(idx), dy, dx, flip)
	}
	return nil
}

// augParams draws the crop shift (dy, dx) in [-Pad, Pad] (the crop offset
// into the padded image minus Pad) and the flip for the sample at position
// pos of an epoch.
func augParams(seed uint64, epoch, pos int, aug Augment) (dy, dx int, flip bool) {
	r := rng{seedOf(tagAug, seed, uint64(epoch), uint64(pos))}
	if aug.Pad > 0 {
		dy = r.intn(2*aug.Pad+1) - aug.Pad
		dx = r.intn(2*aug.Pad+1) - aug.Pad
	}
	if aug.Flip {
		flip = r.next()>>63 == 1
	}
	return dy, dx, flip
}

// render normalises one image into dst, cropped with shift (dy, dx) from its
// zero-padded version and then optionally mirrored, so that
// dst(c, y, x) = src(c, y+dy, x'+dx) with x' = x, or W-1-x when flipped, and
// zero bytes outside the source. Padding is zero before normalisation, as in
// torchvision, so it maps to lut[0].
func (l *Loader) render(dst []float32, src []uint8, dy, dx int, flip bool) {
	H, W := l.ds.H, l.ds.W
	lo, hi := max(0, -dx), min(W, W-dx)
	if flip {
		lo, hi = max(0, dx), min(W, W+dx)
	}
	// Shifts wider than the image leave whole rows as padding.
	lo = min(lo, W)
	hi = max(hi, lo)
	for c := range l.ds.C {
		lut := l.lut[c*256 : (c+1)*256]
		zero := lut[0]
		for y := range H {
			o := dst[(c*H+y)*W : (c*H+y+1)*W]
			sy := y + dy
			if sy < 0 || sy >= H {
				for x := range o {
					o[x] = zero
				}
				continue
			}
			row := src[(c*H+sy)*W : (c*H+sy+1)*W]
			for x := 0; x < lo; x++ {
				o[x] = zero
			}
			if flip {
				for x := lo; x < hi; x++ {
					o[x] = lut[row[W-1-x+dx]]
				}
			} else {
				for x := lo; x < hi; x++ {
					o[x] = lut[row[x+dx]]
				}
			}
			for x := hi; x < W; x++ {
				o[x] = zero
			}
		}
	}
}
