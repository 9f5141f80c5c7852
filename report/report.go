// Package report writes what a training run leaves behind and shows while it
// runs: accuracy.txt, curve.png, summary.json, the per-seed log, and the
// within-epoch progress display.
//
// Every file except the log is rewritten whole and atomically after each
// epoch, so a run killed at any moment leaves complete files; the log is
// appended instead, so that a resumed run continues the same one.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tnn-go/tnn/internal/atomicfile"
)

// ErrNoData reports a curve requested for an empty history.
var ErrNoData = errors.New("no epochs to report")

// Epoch is one row of a run's history. Accuracies are percentages.
type Epoch struct {
	Epoch     int     `json:"epoch"`
	LR        float64 `json:"lr"`
	TrainLoss float64 `json:"train_loss"`
	TrainTop1 float64 `json:"train_top1"`
	TestLoss  float64 `json:"test_loss"`
	TestTop1  float64 `json:"test_top1"`
	TestTop5  float64 `json:"test_top5"`
	Seconds   float64 `json:"seconds"`
	ImgPerS   float64 `json:"img_per_s"`
}

// num is a float64 that encodes NaN and ±Inf as JSON null, because a
// diverged run (NaN loss) must still be able to write its summary;
// encoding/json refuses non-finite numbers outright.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = num(f)
	return nil
}

// epochJSON carries Epoch's tags; keep the two in step.
type epochJSON struct {
	Epoch     int `json:"epoch"`
	LR        num `json:"lr"`
	TrainLoss num `json:"train_loss"`
	TrainTop1 num `json:"train_top1"`
	TestLoss  num `json:"test_loss"`
	TestTop1  num `json:"test_top1"`
	TestTop5  num `json:"test_top5"`
	Seconds   num `json:"seconds"`
	ImgPerS   num `json:"img_per_s"`
}

// MarshalJSON writes non-finite values as null.
func (e Epoch) MarshalJSON() ([]byte, error) {
	return json.Marshal(epochJSON{e.Epoch, num(e.LR), num(e.TrainLoss), num(e.TrainTop1),
		num(e.TestLoss), num(e.TestTop1), num(e.TestTop5), num(e.Seconds), num(e.ImgPerS)})
}

// UnmarshalJSON reads null as NaN, the inverse of MarshalJSON.
func (e *Epoch) UnmarshalJSON(b []byte) error {
	var j epochJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Epoch{j.Epoch, float64(j.LR), float64(j.TrainLoss), float64(j.TrainTop1),
		float64(j.TestLoss), float64(j.TestTop1), float64(j.TestTop5), float64(j.Seconds), float64(j.ImgPerS)}
	return nil
}

// WriteAccuracy rewrites path (accuracy.txt) with the reference's layout: a
// header "epochs train test", then "<epoch> <train top-1> <test top-1>" per
// epoch.
func WriteAccuracy(path string, h []Epoch) error {
	var b bytes.Buffer
	b.WriteString("epochs train test\n")
	for _, e := range h {
		fmt.Fprintf(&b, "%d %.4f %.4f\n", e.Epoch, e.TrainTop1, e.TestTop1)
	}
	return atomicfile.WriteBytes(path, b.Bytes(), 0o644)
}

// WriteJSON atomically writes v as indented JSON (for summary.json).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	})
}
