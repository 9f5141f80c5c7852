//go:build unix

package data

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used, so that benchmarks can
// report throughput per CPU-second, which other work on a busy machine
// disturbs far less than wall-clock time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
