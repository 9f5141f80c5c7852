package report

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// barInterval bounds how often the bar is redrawn: formatting and terminal
// writes then cost nothing measurable per training step.
const barInterval = 100 * time.Millisecond

// Progress reports one epoch's steps as they complete. Create one per epoch
// with NewProgress or Log.Progress, call Update after every step and Finish
// at the end.
type Progress struct {
	epoch, total, freq int

	lines io.Writer // where the reference's periodic lines go; nil for none
	bar   *progressbar.ProgressBar

	start, last, drawn time.Time

	steps            int
	images           int64
	lossSum, top1Sum float64 // weighted by images, like the reference's AverageMeter
	timeVal, timeSum float64 // seconds per step
	lossVal, top1Val float64
	lastStep         int
	finished         bool
}

// NewProgress starts an epoch of total steps on out. If out is a terminal it
// shows a bar with img/s, loss and top-1; otherwise it prints the reference's
// line every printFreq steps (printFreq <= 0 means never).
func NewProgress(out io.Writer, epoch, total, printFreq int) *Progress {
	if isTerminal(out) {
		return newBar(out, epoch, total, printFreq)
	}
	return newPlain(out, epoch, total, printFreq)
}

func newPlain(lines io.Writer, epoch, total, freq int) *Progress {
	now := time.Now()
	return &Progress{epoch: epoch, total: total, freq: freq, lines: lines, start: now, last: now}
}

func newBar(out io.Writer, epoch, total, freq int) *Progress {
	p := newPlain(nil, epoch, total, freq)
	if total > 0 {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetDescription(fmt.Sprintf("Epoch %d", epoch)),
			progressbar.OptionSetTheme(progressbar.Theme{Saucer: "=", SaucerHead: ">", SaucerPadding: " ", BarStart: "[", BarEnd: "]"}),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
		)
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Update records finished step (0-based, as the reference counts), which
// processed images examples with mean loss and top-1 accuracy (percent).
func (p *Progress) Update(step, images int, loss, top1 float64) {
	now := time.Now()
	dt := now.Sub(p.last).Seconds()
	p.last = now
	p.steps++
	p.lastStep = step
	p.images += int64(images)
	p.timeVal, p.timeSum = dt, p.timeSum+dt
	p.lossVal, p.top1Val = loss, top1
	p.lossSum += loss * float64(images)
	p.top1Sum += top1 * float64(images)

	if p.lines != nil && p.freq > 0 && step%p.freq == 0 {
		fmt.Fprintf(p.lines, "  Epoch: [%03d][%03d/%03d]   Time %.3f (%.3f)   Loss %.4f (%.4f)   Prec@1 %.3f (%.3f)   %.1f img/s   [%s]\n",
			p.epoch, step, p.total, p.timeVal, p.timeSum/float64(p.steps),
			p.lossVal, p.Loss(), p.top1Val, p.Top1(), p.ImgPerS(), now.UTC().Format("2006-01-02 15:04:05"))
	}
	if p.bar != nil && (now.Sub(p.drawn) >= barInterval || step+1 >= p.total) {
		p.drawn = now
		p.bar.Describe(p.describe())
		p.bar.Set(min(step+1, p.total))
	}
}

func (p *Progress) describe() string {
	return fmt.Sprintf("Epoch %d  loss %.4f  top-1 %.2f%%  %.0f img/s", p.epoch, p.Loss(), p.Top1(), p.ImgPerS())
}

// Finish completes the display; calling it again does nothing.
func (p *Progress) Finish() {
	if p.finished {
		return
	}
	p.finished = true
	// A finished bar has already drawn its last state and moved to a new
	// line; drawing again would repeat it.
	if p.bar != nil && !p.bar.IsFinished() {
		p.bar.Describe(p.describe())
		// An epoch cut short keeps its true count rather than a full bar;
		// Exit ends the line through the completion hook.
		p.bar.Set(min(p.lastStep+1, p.total))
		p.bar.Exit()
	}
}

// Loss is the running mean loss over the epoch's examples so far.
func (p *Progress) Loss() float64 {
	if p.images == 0 {
		return 0
	}
	return p.lossSum / float64(p.images)
}

// Top1 is the running top-1 accuracy (percent) over the epoch's examples.
func (p *Progress) Top1() float64 {
	if p.images == 0 {
		return 0
	}
	return p.top1Sum / float64(p.images)
}

// ImgPerS is the throughput since the Progress was created.
func (p *Progress) ImgPerS() float64 {
	s := p.last.Sub(p.start).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(p.images) / s
}

// Seconds is the time from creation to the last Update.
func (p *Progress) Seconds() float64 { return p.last.Sub(p.start).Seconds() }
