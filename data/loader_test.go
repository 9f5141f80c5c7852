package data

import (
	"math"
	"runtime"
	"slices"
	"testing"
	"time"
)

// epochData is everything a loader produced in one epoch.
type epochData struct {
	x     []float32
	y     []int32
	idx   []int
	sizes []int
}

func drain(t *testing.T, l *Loader, epoch int) epochData {
	t.Helper()
	l.Start(epoch)
	var e epochData
	for {
		b, ok := l.Next()
		if !ok {
			break
		}
		if len(b.X.Shape) != 4 || b.X.Shape[0] != len(b.Y) || len(b.Index) != len(b.Y) || len(b.X.Data) != len(b.Y)*l.chw {
			t.Fatalf("inconsistent batch: shape %v, %d labels, %d indices, %d values", b.X.Shape, len(b.Y), len(b.Index), len(b.X.Data))
		}
		e.x = append(e.x, b.X.Data...)
		e.y = append(e.y, b.Y...)
		e.idx = append(e.idx, b.Index...)
		e.sizes = append(e.sizes, len(b.Y))
		l.Release(b)
	}
	return e
}

func equalEpochs(a, b epochData) bool {
	return slices.Equal(a.x, b.x) && slices.Equal(a.y, b.y) && slices.Equal(a.idx, b.idx) && slices.Equal(a.sizes, b.sizes)
}

func toyDataset(n, c, h, w int) *Dataset {
	ds := &Dataset{Name: "toy", N: n, C: c, H: h, W: w, Classes: 10, Pixels: pattern(n*c*h*w, 42), Labels: make([]int32, n)}
	for i := range ds.Labels {
		ds.Labels[i] = int32(i % 10)
	}
	return ds
}

func TestLoaderDeterminism(t *testing.T) {
	ds := toyDataset(103, 3, 8, 8)
	spec, _ := Spec("cifar10")
	cfg := LoaderConfig{BatchSize: 10, Shuffle: true, Augment: Augment{Pad: 2, Flip: true}, Norm: spec.Norm, Seed: 7}
	var ref epochData
	for _, workers := range []int{0, 1, 4} {
		cfg.Workers = workers
		for run := range 2 {
			l := NewLoader(ds, cfg)
			if l.Len() != 11 {
				t.Fatalf("Len = %d, want 11", l.Len())
			}
			e := drain(t, l, 3)
			l.Close()
			if workers == 0 && run == 0 {
				ref = e
				continue
			}
			if !equalEpochs(e, ref) {
				t.Fatalf("workers=%d run=%d differs from the synchronous run", workers, run)
			}
		}
	}
	if ref.sizes[10] != 3 || len(ref.y) != 103 {
		t.Errorf("batch sizes %v", ref.sizes)
	}
	perm := slices.Clone(ref.idx)
	slices.Sort(perm)
	for i, v := range perm {
		if v != i {
			t.Fatalf("epoch is not a permutation: sorted[%d] = %d", i, v)
		}
	}
	for i, v := range ref.idx {
		if ref.y[i] != ds.Labels[v] {
			t.Fatalf("label of position %d does not match dataset index %d", i, v)
		}
	}

	// Other epochs give another order and other augmentation; an epoch
	// started fresh (as after --resume) equals the same epoch reached by
	// running through earlier ones.
	cfg.Workers = 2
	l := NewLoader(ds, cfg)
	defer l.Close()
	e2 := drain(t, l, 2)
	e3 := drain(t, l, 3)
	if !equalEpochs(e3, ref) {
		t.Error("epoch 3 after epoch 2 differs from a fresh epoch 3")
	}
	if slices.Equal(e2.idx, e3.idx) {
		t.Error("epochs 2 and 3 have the same order")
	}
	if other := drain(t, NewLoader(ds, LoaderConfig{BatchSize: 10, Shuffle: true, Seed: 8}), 3); slices.Equal(other.idx, ref.idx) {
		t.Error("seeds 7 and 8 give the same order")
	}

	// Same order, different augmentation: epochs must differ in pixels too.
	cfg.Shuffle = false
	a := drain(t, NewLoader(ds, cfg), 0)
	b := drain(t, NewLoader(ds, cfg), 1)
	if !slices.Equal(a.idx, b.idx) || slices.Equal(a.x, b.x) {
		t.Error("unshuffled epochs should share order but not augmentation")
	}
}

func TestLoaderDropLastAndEmpty(t *testing.T) {
	ds := toyDataset(25, 1, 2, 2)
	l := NewLoader(ds, LoaderConfig{BatchSize: 10, DropLast: true, Workers: 3})
	e := drain(t, l, 0)
	if l.Len() != 2 || !slices.Equal(e.sizes, []int{10, 10}) || !slices.Equal(e.idx, seq(20)) {
		t.Errorf("DropLast: Len %d, sizes %v", l.Len(), e.sizes)
	}
	l.Close()
	l = NewLoader(ds, LoaderConfig{BatchSize: 100, DropLast: true, Workers: 2})
	if e := drain(t, l, 0); l.Len() != 0 || len(e.sizes) != 0 {
		t.Errorf("batch larger than dataset with DropLast: %d batches", len(e.sizes))
	}
	if _, ok := NewLoader(ds, LoaderConfig{}).Next(); ok {
		t.Error("Next before Start returned a batch")
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestNormalisation(t *testing.T) {
	cases := []struct {
		name      string
		mean, std [3]float64 // 0..255 scale as in method.md
	}{
		{"cifar10", [3]float64{125.3, 123.0, 113.9}, [3]float64{63.0, 62.1, 66.7}},
		{"cifar100", [3]float64{129.3, 124.1, 112.4}, [3]float64{68.2, 65.4, 70.4}},
	}
	for _, c := range cases {
		sp, err := Spec(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if sp.TrainAugment != (Augment{Pad: 4, Flip: true}) || sp.C != 3 || sp.H != 32 {
			t.Errorf("%s: spec %+v", c.name, sp)
		}
		ds := &Dataset{N: 1, C: 3, H: 1, W: 2, Pixels: []uint8{0, 255, 0, 255, 0, 255}, Labels: []int32{0}}
		l := NewLoader(ds, LoaderConfig{BatchSize: 1, Norm: sp.Norm})
		l.Start(0)
		b, _ := l.Next()
		for ch := range 3 {
			for x, v := range []float64{0, 255} {
				want := (v - c.mean[ch]) / c.std[ch]
				if got := float64(b.X.Data[ch*2+x]); math.Abs(got-want) > 1e-5 {
					t.Errorf("%s channel %d pixel %v: %v, want %v", c.name, ch, v, got, want)
				}
			}
		}
	}
	for _, name := range []string{"mnist", "fashion-mnist", "fashion-mnist-sample"} {
		sp, _ := Spec(name)
		if sp.TrainAugment != (Augment{Pad: 2, Flip: true}) || sp.C != 1 || sp.H != 28 {
			t.Errorf("%s: spec %+v", name, sp)
		}
	}
	if sp, _ := Spec("mnist"); sp.Norm.Mean[0] != 0.5 || sp.Norm.Std[0] != 0.5 {
		t.Errorf("MNIST norm %+v", sp.Norm)
	}
	if sp, _ := Spec("fashion-mnist"); sp.Norm.Mean[0] != 0.2860406 || sp.Norm.Std[0] != 0.3530242 {
		t.Errorf("Fashion-MNIST norm %+v", sp.Norm)
	}
	// No Norm: plain x/255.
	ds := &Dataset{N: 1, C: 1, H: 1, W: 1, Pixels: []uint8{51}, Labels: []int32{0}}
	l := NewLoader(ds, LoaderConfig{})
	l.Start(0)
	if b, _ := l.Next(); b.X.Data[0] != float32(51)/255 {
		t.Errorf("identity norm gave %v", b.X.Data[0])
	}
}

// TestRender checks crop and flip on a 4×4 image with values 1..16 that can
// be verified by hand.
func TestRender(t *testing.T) {
	ds := &Dataset{N: 1, C: 1, H: 4, W: 4, Labels: []int32{0}}
	for i := range 16 {
		ds.Pixels = append(ds.Pixels, uint8(i+1))
	}
	l := NewLoader(ds, LoaderConfig{})
	cases := []struct {
		dy, dx int
		flip   bool
		want   [16]float32
	}{
		{0, 0, false, [16]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{0, 0, true, [16]float32{4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13}},
		// Crop offset (0, 2) in the image padded by 1: shifted down one row,
		// left by one column.
		{-1, 1, false, [16]float32{0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0, 10, 11, 12, 0}},
		// The same crop, then mirrored.
		{-1, 1, true, [16]float32{0, 0, 0, 0, 0, 4, 3, 2, 0, 8, 7, 6, 0, 12, 11, 10}},
		{1, -1, true, [16]float32{7, 6, 5, 0, 11, 10, 9, 0, 15, 14, 13, 0, 0, 0, 0, 0}},
		{2, -2, false, [16]float32{0, 0, 9, 10, 0, 0, 13, 14, 0, 0, 0, 0, 0, 0, 0, 0}},
		{0, 9, true, [16]float32{}},
		{0, -9, false, [16]float32{}},
	}
	for _, c := range cases {
		got := make([]float32, 16)
		l.render(got, ds.Pixels, c.dy, c.dx, c.flip)
		for i := range got {
			got[i] *= 255
			got[i] = float32(math.Round(float64(got[i])))
		}
		if !slices.Equal(got, c.want[:]) {
			t.Errorf("dy=%d dx=%d flip=%v:\n got %v\nwant %v", c.dy, c.dx, c.flip, got, c.want)
		}
	}
}

// TestAugmentDraws checks that the loader applies the drawn parameters and
// that they cover the full range uniformly enough.
func TestAugmentDraws(t *testing.T) {
	const pad = 2
	ds := toyDataset(2000, 1, 5, 5)
	aug := Augment{Pad: pad, Flip: true}
	l := NewLoader(ds, LoaderConfig{BatchSize: 64, Augment: aug, Seed: 3, Workers: 2})
	e := drain(t, l, 4)
	l.Close()
	var dys, dxs [2*pad + 1]int
	flips := 0
	want := make([]float32, 25)
	for p := range ds.N {
		dy, dx, flip := augParams(3, 4, p, aug)
		dys[dy+pad]++
		dxs[dx+pad]++
		if flip {
			flips++
		}
		l.render(want, ds.Image(e.idx[p]), dy, dx, flip)
		if !slices.Equal(e.x[p*25:(p+1)*25], want) {
			t.Fatalf("sample at position %d is not its drawn augmentation", p)
		}
	}
	for i := range dys {
		if dys[i] < 300 || dxs[i] < 300 {
			t.Errorf("offset %d drawn %d/%d times of 2000", i-pad, dys[i], dxs[i])
		}
	}
	if flips < 900 || flips > 1100 {
		t.Errorf("%d flips of 2000", flips)
	}
}

func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left running, started with %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoaderStopMidEpoch(t *testing.T) {
	base := runtime.NumGoroutine()
	ds := toyDataset(500, 3, 8, 8)
	cfg := LoaderConfig{BatchSize: 7, Shuffle: true, Augment: Augment{Pad: 1, Flip: true}, Seed: 1, Workers: 4}
	l := NewLoader(ds, cfg)
	want := drain(t, l, 1)

	// Abandon epoch 0 after one batch, keep one batch unreleased, and start
	// epoch 1: it must be complete and unaffected.
	l.Start(0)
	held, _ := l.Next()
	l.Start(1)
	if got := drain(t, l, 1); !equalEpochs(got, want) {
		t.Error("epoch 1 after an abandoned epoch differs")
	}
	l.Release(held)
	l.Release(held) // a second release must be ignored

	// Close mid-epoch, then reuse.
	l.Start(2)
	l.Next()
	l.Close()
	if _, ok := l.Next(); ok {
		t.Error("Next after Close returned a batch")
	}
	waitGoroutines(t, base)
	if got := drain(t, l, 1); !equalEpochs(got, want) {
		t.Error("epoch 1 after Close and restart differs")
	}
	l.Close()

	// A consumer that never releases gets fresh buffers instead of a deadlock.
	l = NewLoader(ds, cfg)
	l.Start(0)
	n := 0
	for {
		if _, ok := l.Next(); !ok {
			break
		}
		n++
	}
	if n != l.Len() {
		t.Errorf("got %d of %d batches without releasing", n, l.Len())
	}
	l.Close()
	waitGoroutines(t, base)
}

// Released buffers are reused: after warm-up, an epoch allocates nothing
// per batch.
func TestLoaderReuse(t *testing.T) {
	ds := toyDataset(640, 3, 32, 32)
	for _, workers := range []int{0, 3} {
		l := NewLoader(ds, LoaderConfig{BatchSize: 32, Shuffle: true, Augment: Augment{Pad: 4, Flip: true}, Workers: workers})
		run := func() {
			l.Start(0)
			for {
				b, ok := l.Next()
				if !ok {
					break
				}
				l.Release(b)
			}
		}
		run()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		run()
		runtime.ReadMemStats(&after)
		// One batch is 393 kB; 20 batches without reuse would be 7.8 MB.
		if d := after.TotalAlloc - before.TotalAlloc; d > 400<<10 {
			t.Errorf("workers=%d: an epoch of 20 batches allocated %d bytes", workers, d)
		}
		l.Close()
	}
}

func BenchmarkLoaderCIFAR(b *testing.B) {
	ds := toyDataset(50000, 3, 32, 32)
	sp, _ := Spec("cifar10")
	for _, workers := range []int{0, 2} {
		b.Run(map[int]string{0: "sync", 2: "workers2"}[workers], func(b *testing.B) {
			l := NewLoader(ds, LoaderConfig{BatchSize: 128, Shuffle: true, Augment: sp.TrainAugment, Norm: sp.Norm, Workers: workers})
			defer l.Close()
			b.SetBytes(128 * 3 * 32 * 32)
			l.Start(0)
			for range b.N {
				bt, ok := l.Next()
				if !ok {
					l.Start(1)
					bt, _ = l.Next()
				}
				l.Release(bt)
			}
		})
	}
}
