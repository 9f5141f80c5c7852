package infer

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// team runs the phases of one image's layers on several goroutines, for
// batches smaller than the thread count (a single image above all). A
// phase lasts microseconds, less than waking a parked goroutine takes, so
// the members spin between phases; but on a machine busy with other
// processes a spinning thread only takes processor time from the one it
// waits for, so after a while a waiter parks instead.
//
// A phase is cut into more chunks than members, and whoever is running
// claims the next one: a member that the operating system has descheduled
// (or that sleeps) claims nothing and so delays nothing, the caller does
// its share. A team lives for one Forward call.
type team struct {
	n     int
	state atomic.Uint64 // phase<<32 | next chunk; the phase's high bit means stop
	done  atomic.Int64  // chunks finished in the current phase
	phase uint64        // the caller's copy of the current phase
	// Per phase parity: the chunk count (atomic, as a late member may read
	// it while the caller sets the phase after next) and the function,
	// run on a chunk and the runner's member index.
	chunks [2]atomic.Int64
	fns    [2]func(chunk, member int)
	max    []float32   // per chunk: largest magnitude of its share
	spread [][]float32 // per member: padInt8's scratch

	mu       sync.Mutex
	wake     *sync.Cond   // a new phase for sleeping members, or the phase's end for the caller
	sleeping atomic.Int32 // members parked on wake
	waiting  atomic.Bool  // the caller is parked on wake
}

// spinLimit is how many polls (some tens of microseconds) a waiter spins
// before it parks.
const spinLimit = 1 << 14

// maxChunks bounds the chunks of a phase.
const maxChunks = 64

const stopBit = 1 << 63

func newTeam(n, spreadLen int) *team {
	t := &team{n: n, max: make([]float32, maxChunks), spread: make([][]float32, n)}
	t.wake = sync.NewCond(&t.mu)
	for m := range t.spread {
		t.spread[m] = make([]float32, spreadLen)
	}
	for m := 1; m < n; m++ {
		go t.member(m)
	}
	return t
}

// split is how many chunks to cut n items into: a few per member.
func (t *team) split(n int) int { return max(1, min(n, 4*t.n, maxChunks)) }

// do runs fn(0, ·) … fn(chunks-1, ·), on the caller and whichever members
// are running, and returns when all are done.
func (t *team) do(chunks int, fn func(chunk, member int)) {
	t.phase++
	p := t.phase
	t.chunks[p%2].Store(int64(chunks))
	t.fns[p%2] = fn
	t.done.Store(0)
	t.state.Store(p << 32) // publishes the fields above
	if t.sleeping.Load() > 0 {
		t.mu.Lock()
		t.wake.Broadcast()
		t.mu.Unlock()
	}
	t.work(p, 0)
	for spins := 0; t.done.Load() < int64(chunks); spins++ {
		if spins < spinLimit {
			if spins%64 == 63 {
				runtime.Gosched()
			}
			continue
		}
		// A member holding a chunk is not running: give way.
		t.mu.Lock()
		t.waiting.Store(true)
		for t.done.Load() < int64(chunks) {
			t.wake.Wait()
		}
		t.waiting.Store(false)
		t.mu.Unlock()
	}
}

// work claims and runs chunks of phase p while there are any; member is
// the runner's index (for its scratch).
func (t *team) work(p uint64, member int) {
	for {
		s := t.state.Load()
		if s>>32 != p || int64(s&0xffffffff) >= t.chunks[p%2].Load() {
			return
		}
		if t.state.CompareAndSwap(s, s+1) {
			// Phase p cannot end, nor fns[p%2] change, before this chunk is done.
			t.fns[p%2](int(s&0xffffffff), member)
			if t.done.Add(1) == t.chunks[p%2].Load() && t.waiting.Load() {
				t.mu.Lock()
				t.wake.Broadcast()
				t.mu.Unlock()
			}
		}
	}
}

// stop ends the members' loops; it is called after the last do.
func (t *team) stop() {
	t.state.Store(stopBit)
	t.mu.Lock()
	t.wake.Broadcast()
	t.mu.Unlock()
}

func (t *team) member(m int) {
	for spins := 0; ; spins++ {
		s := t.state.Load()
		if s&stopBit != 0 {
			return
		}
		if p := s >> 32; p != 0 && int64(s&0xffffffff) < t.chunks[p%2].Load() {
			t.work(p, m)
			spins = 0
			continue
		}
		if spins < spinLimit {
			if spins%64 == 63 {
				runtime.Gosched()
			}
			continue
		}
		// Park until the state changes; sleeping is raised before the
		// state is read again, so a new phase either is seen here or
		// finds sleeping > 0 and wakes us.
		t.mu.Lock()
		t.sleeping.Add(1)
		for t.state.Load() == s {
			t.wake.Wait()
		}
		t.sleeping.Add(-1)
		t.mu.Unlock()
		spins = 0
	}
}

// part is chunk c's share [lo, hi) of n items cut into k chunks.
func part(c, k, n int) (lo, hi int) {
	return c * n / k, (c + 1) * n / k
}
