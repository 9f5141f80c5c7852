package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Log tees every line to the console and to log_seed_<seed>.txt, as the
// reference's print_log does.
//
// The file is opened for appending rather than written through atomicfile:
// a resumed run continues the same log, and each line reaches the file as
// soon as it is printed, so a crash loses nothing already shown.
type Log struct {
	mu   sync.Mutex
	out  io.Writer
	f    *os.File
	path string
	err  error // first write error, reported by Close
}

// OpenLog opens (creating or appending to) dir/log_seed_<seed>.txt; lines are
// also written to out, typically os.Stdout.
func OpenLog(dir string, seed int64, out io.Writer) (*Log, error) {
	path := filepath.Join(dir, fmt.Sprintf("log_seed_%d.txt", seed))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &Log{out: out, f: f, path: path}, nil
}

// Path is the log file's path.
func (l *Log) Path() string { return l.path }

// Printf formats a message and writes it to both sinks, adding a final
// newline if it lacks one.
func (l *Log) Printf(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	l.Write([]byte(s))
}

// Write writes p to both sinks, so a Log can stand wherever an io.Writer is
// expected. A failure of either is remembered for Close rather than returned,
// because a full disk must not stop training.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeOut(p)
	l.writeFile(p)
	return len(p), nil
}

func (l *Log) writeOut(p []byte) {
	if l.out == nil {
		return
	}
	if _, err := l.out.Write(p); err != nil && l.err == nil {
		l.err = fmt.Errorf("write console: %w", err)
	}
}

func (l *Log) writeFile(p []byte) {
	if l.f == nil {
		return
	}
	if _, err := l.f.Write(p); err != nil && l.err == nil {
		l.err = fmt.Errorf("write %s: %w", l.path, err)
	}
}

// fileOnly writes p to the file alone, for lines the console shows as a
// progress bar instead.
func (l *Log) fileOnly(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeFile(p)
}

// Close syncs and closes the file and returns the first error of any write.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return l.err
	}
	serr := l.f.Sync()
	cerr := l.f.Close()
	l.f = nil
	switch {
	case l.err != nil:
		return l.err
	case serr != nil:
		return fmt.Errorf("sync %s: %w", l.path, serr)
	case cerr != nil:
		return fmt.Errorf("close %s: %w", l.path, cerr)
	}
	return nil
}

// Progress starts an epoch's progress display on this log: a bar on the
// console when it is a terminal (with the reference's lines still going to
// the file every printFreq steps), otherwise those lines on both.
func (l *Log) Progress(epoch, total, printFreq int) *Progress {
	if isTerminal(l.out) {
		p := newBar(l.out, epoch, total, printFreq)
		p.lines = writerFunc(func(b []byte) (int, error) { l.fileOnly(b); return len(b), nil })
		return p
	}
	return newPlain(l, epoch, total, printFreq)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// Detailf writes a line to the log file only: per-layer details that would
// drown the console.
func (l *Log) Detailf(format string, a ...any) {
	l.fileOnly([]byte(fmt.Sprintf(format, a...) + "\n"))
}
