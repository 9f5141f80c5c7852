package parallel

import (
	"sync"
	"sync/atomic"
	"testing"
)

// check runs For and verifies that the chunks tile [0, n) in order, that
// chunk i has worker id i, and that the partition is the documented one.
func check(t *testing.T, n, threads int) {
	t.Helper()
	SetThreads(threads)
	w := min(threads, n)
	var mu sync.Mutex
	got := map[int][2]int{}
	For(n, func(lo, hi, worker int) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[worker]; dup {
			t.Errorf("n=%d threads=%d: worker id %d used twice", n, threads, worker)
		}
		got[worker] = [2]int{lo, hi}
	})
	if n <= 0 {
		if len(got) != 0 {
			t.Errorf("n=%d: fn called %d times", n, len(got))
		}
		return
	}
	if len(got) != max(w, 1) {
		t.Fatalf("n=%d threads=%d: %d chunks, want %d", n, threads, len(got), max(w, 1))
	}
	for i := 0; i < max(w, 1); i++ {
		want := [2]int{i * n / max(w, 1), (i + 1) * n / max(w, 1)}
		if got[i] != want {
			t.Errorf("n=%d threads=%d: chunk %d = %v, want %v", n, threads, i, got[i], want)
		}
	}
}

func TestForPartition(t *testing.T) {
	defer SetThreads(Threads())
	for _, threads := range []int{1, 2, 3, 4, 7, 16} {
		for _, n := range []int{0, 1, 2, 3, 5, 16, 17, 128, 1001} {
			check(t, n, threads)
		}
	}
}

func TestForNestedAndConcurrent(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(4)
	var total atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 50; rep++ {
				For(8, func(lo, hi, _ int) {
					for i := lo; i < hi; i++ {
						// A nested call cannot use the busy pool and must still finish.
						For(10, func(lo, hi, _ int) { total.Add(int64(hi - lo)) })
					}
				})
			}
		}()
	}
	wg.Wait()
	if want := int64(4 * 50 * 8 * 10); total.Load() != want {
		t.Fatalf("visited %d items, want %d", total.Load(), want)
	}
}

func TestForPanicInCallerChunkKeepsPool(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic was swallowed")
			}
		}()
		For(2, func(lo, hi, w int) {
			if w == 0 {
				panic("boom")
			}
		})
	}()
	// The pool must be free again: a plain call allocates nothing.
	fn := func(lo, hi, w int) {}
	if a := testing.AllocsPerRun(100, func() { For(2, fn) }); a != 0 {
		t.Fatalf("For allocates %v times per call after a panic", a)
	}
}

func TestForDoesNotAllocate(t *testing.T) {
	defer SetThreads(Threads())
	var sink [16]int64
	fn := func(lo, hi, w int) { sink[w] += int64(hi - lo) }
	for _, threads := range []int{1, 2, 4, 8} {
		SetThreads(threads)
		For(100, fn) // starts the goroutines
		if a := testing.AllocsPerRun(200, func() { For(100, fn) }); a != 0 {
			t.Errorf("threads=%d: For allocates %v times per call", threads, a)
		}
	}
}

var benchSink [64]int64

func benchFor(b *testing.B, f func(int, func(lo, hi, w int))) {
	defer SetThreads(Threads())
	SetThreads(2)
	fn := func(lo, hi, w int) { benchSink[w*8] += int64(hi - lo) }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f(1000, fn)
	}
}

// BenchmarkForPool and BenchmarkForSpawn compare the pool with a goroutine
// per chunk, the cost of an empty For on 2 threads.
func BenchmarkForPool(b *testing.B) { benchFor(b, For) }
func BenchmarkForSpawn(b *testing.B) {
	benchFor(b, func(n int, fn func(lo, hi, w int)) { spawn(n, min(Threads(), n), fn) })
}
