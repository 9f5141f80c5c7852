// Package checkpoint stores a training checkpoint as one safetensors file, so
// that the same file resumes a tnn run and loads into PyTorch.
//
// # Layout
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON header, then one byte buffer that the header's tensors tile exactly
// (no gaps, no overlaps). The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// buffer) and may hold "__metadata__", a string-to-string map.
//
// A tnn checkpoint uses it as follows:
//
//   - Model tensors are stored under their PyTorch state_dict names, in
//     state_dict order in the header. Names ending in "num_batches_tracked"
//     are I64 as PyTorch has them; everything else is F32 (shape [] scalars
//     are allowed).
//   - Optimizer buffers are stored under OptimPrefix + "<param>.<buffer>"
//     (e.g. "optimizer_state.conv_1_3x3.weight.momentum_buffer"); Save
//     refuses model names with that prefix, so the two never clash.
//   - __metadata__ holds "format": "tnn-checkpoint", "version": "1" and
//     "tnn.info": the trainer's JSON (epoch, arguments, history, optimizer
//     hyper-parameters), which this package stores but does not interpret.
//   - I64 tensors come first in the buffer and the header is space-padded to a
//     multiple of 8 bytes, so every tensor is aligned for its dtype: PyTorch's
//     loader views the bytes as the dtype in place and refuses misaligned ones.
//
// In PyTorch:
//
//	from safetensors.torch import load_file
//	sd = {k: v for k, v in load_file("checkpoint.safetensors").items() if not k.startswith("optimizer_state.")}
//	model.load_state_dict(sd)
//
// Load also reads plain safetensors files (for instance weights saved by
// safetensors.torch.save_file), converting F32, F16, BF16, F64, I64, I32 and the
// smaller integer types to float32; such a file has a nil Info.
//
// The codec is written here rather than taken from
// github.com/nlpodyssey/safetensors because that package serializes from a
// map, which loses state_dict order, decodes from a whole-file []byte, and
// validates only contiguity; reading tensor by tensor from an io.ReaderAt keeps
// memory at the size of the float32 result.
package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tnn-go/tnn/internal/atomicfile"
	"github.com/tnn-go/tnn/tensor"
)

// OptimPrefix starts the name of every optimizer tensor in the file; it is
// stripped again by Load. PyTorch users drop these entries before
// load_state_dict.
const OptimPrefix = "optimizer_state."

const (
	formatKey   = "format"
	formatValue = "tnn-checkpoint"
	versionKey  = "version"
	version     = "1"
	infoKey     = "tnn.info"
	metadataKey = "__metadata__"

	// maxHeader is the bound the safetensors reference implementation uses;
	// a larger length field means the file is not safetensors at all.
	maxHeader = 100_000_000
)

var (
	// ErrNotCheckpoint reports a file that is not safetensors at all.
	ErrNotCheckpoint = errors.New("not a tnn checkpoint (safetensors)")
	// ErrCorrupt reports a safetensors file whose header or data is damaged.
	ErrCorrupt = errors.New("corrupt checkpoint")
	// ErrUnsupported reports a well-formed file this version cannot read
	// (a newer format version, or a dtype such as F8_E4M3).
	ErrUnsupported = errors.New("unsupported checkpoint")
	// ErrInvalid reports a Checkpoint that Save cannot store faithfully.
	ErrInvalid = errors.New("invalid checkpoint content")
)

// Checkpoint is what a training run needs to resume.
type Checkpoint struct {
	// Model holds the model's tensors in state_dict order.
	Model []tensor.Named
	// Optim holds optimizer buffers named "<param name>.<buffer>"; may be empty.
	Optim []tensor.Named
	// Info is the trainer's own JSON state; nil when the file has none.
	Info json.RawMessage
}

// Save atomically writes c to path: a crash or error leaves any previous file
// at path untouched.
func Save(path string, c *Checkpoint) error {
	return saveWith(path, c, nil)
}

// saveWith lets tests interpose on the output stream to fail a save midway.
func saveWith(path string, c *Checkpoint, wrap func(io.Writer) io.Writer) error {
	p, err := plan(c)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if wrap != nil {
			w = wrap(w)
		}
		if err := p.write(w); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}

// record is one tensor as laid out in the file.
type record struct {
	name       string
	t          *tensor.Tensor
	dt         string
	begin, end int64
}

type layout struct {
	header  []byte
	records []record  // header order: Model then Optim, as given
	data    []*record // buffer order: I64 first so both dtypes stay aligned
}

// plan validates c fully before a byte is written, so a bad checkpoint never
// replaces a good file.
func plan(c *Checkpoint) (*layout, error) {
	if c == nil {
		return nil, errors.New("nil checkpoint")
	}
	l := &layout{records: make([]record, 0, len(c.Model)+len(c.Optim))}
	seen := make(map[string]bool, cap(l.records))
	add := func(name string, t *tensor.Tensor, optim bool) error {
		short := name
		if optim {
			name = OptimPrefix + name
		}
		switch {
		case short == "":
			return errors.New("empty tensor name")
		case !utf8.ValidString(name):
			return fmt.Errorf("tensor name %q is not valid UTF-8", name)
		case name == metadataKey:
			return fmt.Errorf("tensor name %q is reserved", name)
		case !optim && strings.HasPrefix(name, OptimPrefix):
			return fmt.Errorf("model tensor %q uses the reserved prefix %q", name, OptimPrefix)
		case seen[name]:
			return fmt.Errorf("duplicate tensor name %q", name)
		case t == nil:
			return fmt.Errorf("tensor %q is nil", name)
		}
		seen[name] = true
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("tensor %q has negative shape %v", name, t.Shape)
			}
		}
		if n := tensor.Numel(t.Shape); n != len(t.Data) {
			return fmt.Errorf("tensor %q has %d values for shape %v", name, len(t.Data), t.Shape)
		}
		dt := "F32"
		if strings.HasSuffix(name, "num_batches_tracked") {
			dt = "I64"
			for _, v := range t.Data {
				// float32 exactly represents every integer up to 2^24, so a
				// fractional or non-finite count means the caller stored
				// something else under a counter's name.
				if f := float64(v); f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
					return fmt.Errorf("tensor %q holds %v, not an integer count", name, v)
				}
			}
		}
		l.records = append(l.records, record{name: name, t: t, dt: dt})
		return nil
	}
	for _, nt := range c.Model {
		if err := add(nt.Name, nt.T, false); err != nil {
			return nil, err
		}
	}
	for _, nt := range c.Optim {
		if err := add(nt.Name, nt.T, true); err != nil {
			return nil, err
		}
	}

	var off int64
	for _, want := range []string{"I64", "F32"} {
		for i := range l.records {
			r := &l.records[i]
			if r.dt != want {
				continue
			}
			r.begin = off
			off += int64(len(r.t.Data)) * int64(dtypes[r.dt].size)
			r.end = off
			l.data = append(l.data, r)
		}
	}

	meta := map[string]string{formatKey: formatValue, versionKey: version}
	if len(c.Info) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, c.Info); err != nil {
			return nil, fmt.Errorf("info is not valid JSON: %v", err)
		}
		meta[infoKey] = b.String()
	}

	var h bytes.Buffer
	h.WriteString("{")
	writeString(&h, metadataKey)
	h.WriteString(":{")
	for i, k := range slices.Sorted(maps.Keys(meta)) {
		if i > 0 {
			h.WriteString(",")
		}
		writeString(&h, k)
		h.WriteString(":")
		writeString(&h, meta[k])
	}
	h.WriteString("}")
	for _, r := range l.records {
		h.WriteString(",")
		writeString(&h, r.name)
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":[`, r.dt)
		for i, d := range r.t.Shape {
			if i > 0 {
				h.WriteString(",")
			}
			fmt.Fprintf(&h, "%d", d)
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, r.begin, r.end)
	}
	h.WriteString("}")
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	l.header = h.Bytes()
	return l, nil
}

// writeString appends s as a JSON string; s is known to be valid UTF-8.
func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // cannot fail for a string
	b.Write(enc)
}

func (l *layout) write(w io.Writer) error {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(l.header)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(l.header); err != nil {
		return err
	}
	buf := make([]byte, 0, 64<<10)
	for _, r := range l.data {
		for _, v := range r.t.Data {
			if len(buf)+8 > cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
			if r.dt == "I64" {
				buf = binary.LittleEndian.AppendUint64(buf, uint64(int64(v)))
			} else {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			}
		}
	}
	_, err := w.Write(buf)
	return err
}

// Load reads a checkpoint written by Save, or any safetensors file. It
// validates the whole header before allocating tensor memory, and allocates
// no more than the file's size justifies.
func Load(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %w: not a regular file", path, ErrNotCheckpoint)
	}
	return load(path, f, st.Size())
}
