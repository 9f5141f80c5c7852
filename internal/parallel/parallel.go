// Package parallel splits loops over the engine's worker count.
//
// The engine parallelises coarse work (images of a batch, channels) rather
// than inner loops. Chunks run on a pool of long-lived goroutines, so a call
// allocates nothing: the training step runs hundreds of For calls, and a
// fresh goroutine plus an escaping closure per call would be garbage the
// collector has to chase every step. Callers that want zero allocations pass
// a func value that does not need allocating per call (a method value or
// closure bound once and kept, or a plain function).
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

// pool runs the chunks 1..w-1 of one For at a time; chunk 0 runs on the
// caller. Its goroutines live for the rest of the process, blocked on a
// channel receive when idle, so they cost nothing between calls.
type pool struct {
	busy    sync.Mutex // held for a whole For; TryLock fails for nested or concurrent calls
	started int        // goroutines started so far
	chunks  chan int   // chunk indices of the current call
	done    sync.WaitGroup

	// The current call; written before the chunks are sent, so the channel
	// orders them before the workers' reads.
	fn   func(lo, hi, worker int)
	n, w int
}

var shared = pool{chunks: make(chan int, 64)}

func (p *pool) work() {
	for i := range p.chunks {
		lo, hi := i*p.n/p.w, (i+1)*p.n/p.w
		p.fn(lo, hi, i)
		p.done.Done()
	}
}

// For runs fn(lo, hi, worker) over a partition of [0, n) into at most
// Threads() contiguous chunks. Worker ids are 0..Threads()-1 and distinct
// among concurrent calls of one For, so callers can index per-worker scratch;
// chunk i always has id i. The partition depends only on n and Threads(),
// which keeps reductions deterministic for a fixed thread count.
//
// For may be called from inside fn or from several goroutines at once; such
// calls, which the pool cannot serve, start goroutines of their own.
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
	p := &shared
	if w-1 > cap(p.chunks) || !p.busy.TryLock() {
		spawn(n, w, fn)
		return
	}
	for p.started < w-1 {
		go p.work()
		p.started++
	}
	p.fn, p.n, p.w = fn, n, w
	p.done.Add(w - 1)
	for i := 1; i < w; i++ {
		p.chunks <- i
	}
	// Deferred so that a panic in chunk 0 still waits for the other chunks
	// before the pool is handed to the next call.
	defer p.release()
	fn(0, n/w, 0)
}

func (p *pool) release() {
	p.done.Wait()
	p.fn = nil // drop the reference so the pool does not keep the caller's data alive
	p.busy.Unlock()
}

// spawn is the pool-less For: one goroutine per chunk past the first.
func spawn(n, w int, fn func(lo, hi, worker int)) {
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
