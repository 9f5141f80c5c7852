package checkpoint

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tnn-go/tnn/tensor"
)

// dtype describes how one safetensors element type converts to float32.
type dtype struct {
	size int
	// decode fills dst from len(dst)*size little-endian bytes of src.
	decode func(dst []float32, src []byte)
}

var dtypes = map[string]dtype{
	"F32": {4, func(d []float32, s []byte) {
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(s[4*i:]))
		}
	}},
	"F64": {8, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[8*i:])))
		}
	}},
	"F16": {2, func(d []float32, s []byte) {
		for i := range d {
			d[i] = halfToFloat(binary.LittleEndian.Uint16(s[2*i:]))
		}
	}},
	"BF16": {2, func(d []float32, s []byte) {
		for i := range d {
			d[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[2*i:])) << 16)
		}
	}},
	"I64": {8, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int64(binary.LittleEndian.Uint64(s[8*i:])))
		}
	}},
	"I32": {4, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int32(binary.LittleEndian.Uint32(s[4*i:])))
		}
	}},
	"U64": {8, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(binary.LittleEndian.Uint64(s[8*i:]))
		}
	}},
	"U32": {4, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(binary.LittleEndian.Uint32(s[4*i:]))
		}
	}},
	"I16": {2, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int16(binary.LittleEndian.Uint16(s[2*i:])))
		}
	}},
	"U16": {2, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(binary.LittleEndian.Uint16(s[2*i:]))
		}
	}},
	"I8": {1, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int8(s[i]))
		}
	}},
	"U8": {1, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(s[i])
		}
	}},
	"BOOL": {1, func(d []float32, s []byte) {
		for i := range d {
			if s[i] != 0 {
				d[i] = 1
			} else {
				d[i] = 0
			}
		}
	}},
}

// knownUnreadable are dtypes of the safetensors spec that tnn does not
// convert; they are reported as unsupported rather than as damage.
var knownUnreadable = map[string]bool{"F8_E4M3": true, "F8_E5M2": true, "F8_E8M0": true, "F4": true, "F6_E2M3": true, "F6_E3M2": true, "C64": true}

// unsupportedError marks a header problem that is a limitation of this
// reader, not damage to the file.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return e.msg }

// halfToFloat converts IEEE 754 binary16 bits to float32 exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN; keep NaN payload bits
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: mant * 2^-24 is exact in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// entry is one validated header record.
type entry struct {
	name       string
	dt         string
	shape      []int
	numel      int64
	begin, end int64
}

// rawInfo mirrors a header record; pointers tell a missing field from an
// empty one.
type rawInfo struct {
	DType       *string   `json:"dtype"`
	Shape       *[]uint64 `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

// load decodes a checkpoint of size bytes from r; name only labels errors.
func load(name string, r io.ReaderAt, size int64) (*Checkpoint, error) {
	notCkpt := func(why string, a ...any) error {
		return fmt.Errorf("%s is %w: %s", name, ErrNotCheckpoint, fmt.Sprintf(why, a...))
	}
	corrupt := func(why string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, name, fmt.Sprintf(why, a...))
	}
	readErr := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corrupt("file ends early")
		}
		return fmt.Errorf("read %s: %w", name, err)
	}

	if size < 8 {
		return nil, notCkpt("%d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [9]byte
	n9, err := r.ReadAt(lenBuf[:min(9, size)], 0)
	if int64(n9) < min(9, size) {
		return nil, readErr(err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:8])
	// The header is a JSON object, so a file whose length field is absurd or
	// whose ninth byte is not '{' is some other format, not a damaged one.
	if hlen < 2 || hlen > maxHeader {
		return nil, notCkpt("header length %d out of range", hlen)
	}
	if size > 8 && lenBuf[8] != '{' {
		return nil, notCkpt("header does not start with '{'")
	}
	if hlen > uint64(size-8) {
		return nil, corrupt("header length %d exceeds the %d bytes after it (truncated?)", hlen, size-8)
	}
	hdr := make([]byte, hlen)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, readErr(err)
	}
	base := 8 + int64(hlen)
	bufLen := size - base

	meta, entries, err := parseHeader(hdr, bufLen)
	var unsup *unsupportedError
	if errors.As(err, &unsup) {
		return nil, fmt.Errorf("%w: %s: %s", ErrUnsupported, name, unsup.msg)
	}
	if err != nil {
		return nil, corrupt("%v", err)
	}

	c := &Checkpoint{}
	if meta[formatKey] == formatValue && meta[versionKey] != version {
		return nil, fmt.Errorf("%w: %s: format version %q (this build reads %q)", ErrUnsupported, name, meta[versionKey], version)
	}
	if s, ok := meta[infoKey]; ok {
		if !json.Valid([]byte(s)) {
			return nil, corrupt("metadata %q is not valid JSON", infoKey)
		}
		c.Info = json.RawMessage(s)
	}
	// Reading through a reused chunk keeps peak memory at the float32 result
	// plus 1 MiB, whatever the file claims.
	chunk := make([]byte, min(1<<20, bufLen))
	for _, e := range entries {
		dt := dtypes[e.dt]
		t := &tensor.Tensor{Shape: e.shape, Data: make([]float32, e.numel)}
		per := max(len(chunk)/dt.size, 1)
		for done := 0; done < len(t.Data); done += per {
			k := min(per, len(t.Data)-done)
			b := chunk[:k*dt.size]
			if _, err := r.ReadAt(b, base+e.begin+int64(done*dt.size)); err != nil {
				return nil, readErr(err)
			}
			dt.decode(t.Data[done:done+k], b)
		}
		if rest, ok := strings.CutPrefix(e.name, OptimPrefix); ok {
			c.Optim = append(c.Optim, tensor.Named{Name: rest, T: t})
		} else {
			c.Model = append(c.Model, tensor.Named{Name: e.name, T: t})
		}
	}
	return c, nil
}

// parseHeader decodes and validates the JSON header against a data buffer of
// bufLen bytes, returning the tensors in header order.
func parseHeader(hdr []byte, bufLen int64) (map[string]string, []entry, error) {
	// encoding/json silently replaces invalid UTF-8, which would rename
	// tensors; the spec requires UTF-8.
	if !utf8.Valid(hdr) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("header is not a JSON object")
	}
	var (
		meta    map[string]string
		entries []entry
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, errors.New("header JSON: key is not a string")
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("header names %q twice", name)
		}
		seen[name] = true
		if name == metadataKey {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, fmt.Errorf("__metadata__ is not a map of strings: %v", err)
			}
			continue
		}
		var ri rawInfo
		if err := dec.Decode(&ri); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		e, err := checkEntry(name, ri, bufLen)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, errors.New("header JSON object is not closed")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("header has data after the JSON object")
	}

	// The spec requires the tensors to tile the buffer exactly; that rules out
	// overlapping tensors and hidden bytes at once.
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ea, eb := &entries[a], &entries[b]
		if ea.begin != eb.begin {
			return cmp.Compare(ea.begin, eb.begin)
		}
		return cmp.Compare(ea.end, eb.end)
	})
	var at int64
	for _, i := range order {
		e := &entries[i]
		if e.begin != at {
			if e.begin < at {
				return nil, nil, fmt.Errorf("tensor %q overlaps another tensor", e.name)
			}
			return nil, nil, fmt.Errorf("gap in the data buffer before tensor %q at offset %d", e.name, at)
		}
		at = e.end
	}
	if at != bufLen {
		return nil, nil, fmt.Errorf("tensors cover %d bytes of a %d-byte data buffer", at, bufLen)
	}
	return meta, entries, nil
}

// checkEntry validates one header record without trusting any of its numbers.
func checkEntry(name string, ri rawInfo, bufLen int64) (entry, error) {
	if ri.DType == nil || ri.Shape == nil || ri.DataOffsets == nil {
		return entry{}, fmt.Errorf("tensor %q lacks dtype, shape or data_offsets", name)
	}
	e := entry{name: name, dt: *ri.DType}
	size := 0
	if dt, ok := dtypes[e.dt]; ok {
		size = dt.size
	} else if knownUnreadable[e.dt] {
		return entry{}, &unsupportedError{fmt.Sprintf("tensor %q has dtype %s, which tnn cannot convert to float32", name, e.dt)}
	} else {
		return entry{}, fmt.Errorf("tensor %q has unknown dtype %q", name, e.dt)
	}
	e.shape = make([]int, len(*ri.Shape))
	numel := uint64(1)
	overflow := false
	for i, d := range *ri.Shape {
		if d > math.MaxInt32*uint64(math.MaxInt32) {
			return entry{}, fmt.Errorf("tensor %q has dimension %d", name, d)
		}
		e.shape[i] = int(d)
		hi, lo := bits.Mul64(numel, d)
		overflow = overflow || hi != 0
		numel = lo
	}
	if overflow {
		if slices.Contains(*ri.Shape, 0) {
			numel = 0
		} else {
			return entry{}, fmt.Errorf("tensor %q: shape %v is too large", name, *ri.Shape)
		}
	}
	offs := *ri.DataOffsets
	if len(offs) != 2 {
		return entry{}, fmt.Errorf("tensor %q: data_offsets has %d numbers, want 2", name, len(offs))
	}
	if offs[0] > offs[1] || offs[1] > uint64(bufLen) {
		return entry{}, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d-byte data buffer", name, offs[0], offs[1], bufLen)
	}
	hi, nbytes := bits.Mul64(numel, uint64(size))
	if hi != 0 || nbytes != offs[1]-offs[0] {
		return entry{}, fmt.Errorf("tensor %q: shape %v of %s needs a different size than data_offsets [%d, %d]", name, *ri.Shape, e.dt, offs[0], offs[1])
	}
	e.numel = int64(numel)
	e.begin, e.end = int64(offs[0]), int64(offs[1])
	return e, nil
}
