// Package parallel splits loops over the engine's worker count.
//
// The engine parallelises coarse work (images of a batch, channels) rather
// than inner loops, so one call spawns at most Threads() goroutines and the
// per-call overhead stays far below a layer's cost.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

func init() { threads.Store(int32(runtime.NumCPU())) }

// SetThreads sets the worker count; n <= 0 means all CPUs.
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	threads.Store(int32(n))
}

// Threads returns the worker count.
func Threads() int { return int(threads.Load()) }

// For runs fn(lo, hi, worker) over a partition of [0, n) into at most
// Threads() contiguous chunks. Worker ids are 0..Threads()-1 and distinct
// among concurrent calls of one For, so callers can index per-worker scratch.
// The partition depends only on n and Threads(), which keeps reductions
// deterministic for a fixed thread count.
func For(n int, fn func(lo, hi, worker int)) {
	w := Threads()
	if w > n {
		w = n
	}
	if w <= 1 {
		if n > 0 {
			fn(0, n, 0)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for i := 1; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		go func(lo, hi, i int) {
			defer wg.Done()
			fn(lo, hi, i)
		}(lo, hi, i)
	}
	fn(0, n/w, 0)
	wg.Wait()
}
