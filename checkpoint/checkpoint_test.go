package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tnn-go/tnn/tensor"
)

func named(name string, data []float32, shape ...int) tensor.Named {
	t, err := tensor.From(data, shape...)
	if err != nil {
		panic(err)
	}
	return tensor.Named{Name: name, T: t}
}

func sample() *Checkpoint {
	return &Checkpoint{
		Model: []tensor.Named{
			named("conv_1_3x3.weight", []float32{1, -2, 3.5, float32(math.Inf(1)), float32(math.Copysign(0, -1)), 1e-30}, 2, 1, 3, 1),
			named("bn_1.weight", []float32{1, 1}, 2),
			named("bn_1.bias", []float32{0, 0.5}, 2),
			named("bn_1.running_mean", []float32{0.1, 0.2}, 2),
			named("bn_1.running_var", []float32{1.1, 1.2}, 2),
			named("bn_1.num_batches_tracked", []float32{391}, []int{}...),
			named("alpha", []float32{0.75}, []int{}...),
			named("empty", nil, 0, 3),
			named("classifier.weight", []float32{1, 2, 3}, 1, 3),
		},
		Optim: []tensor.Named{
			named("conv_1_3x3.weight.momentum_buffer", []float32{6, 5, 4, 3, 2, 1}, 2, 1, 3, 1),
			named("classifier.weight.exp_avg", []float32{-1, -2, -3}, 1, 3),
		},
		Info: json.RawMessage(`{"epoch": 3, "args": {"lr": 0.1}, "history": [{"epoch": 1}]}`),
	}
}

func encode(t testing.TB, c *Checkpoint) []byte {
	t.Helper()
	l, err := plan(c)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := l.write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func decode(b []byte) (*Checkpoint, error) {
	return load("mem.safetensors", bytes.NewReader(b), int64(len(b)))
}

func sameTensors(t *testing.T, what string, got, want []tensor.Named) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name {
			t.Fatalf("%s[%d]: name %q, want %q", what, i, g.Name, w.Name)
		}
		if !tensor.SameShape(g.T.Shape, w.T.Shape) || len(g.T.Shape) != len(w.T.Shape) {
			t.Fatalf("%s %q: shape %v, want %v", what, w.Name, g.T.Shape, w.T.Shape)
		}
		if len(g.T.Data) != len(w.T.Data) {
			t.Fatalf("%s %q: %d values, want %d", what, w.Name, len(g.T.Data), len(w.T.Data))
		}
		for j := range w.T.Data {
			if math.Float32bits(g.T.Data[j]) != math.Float32bits(w.T.Data[j]) {
				t.Fatalf("%s %q[%d] = %v, want %v", what, w.Name, j, g.T.Data[j], w.T.Data[j])
			}
		}
	}
}

// rawHeader returns the parsed JSON header of a safetensors file.
func rawHeader(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		c    *Checkpoint
	}{
		{"full", sample()},
		{"no optim, no info", &Checkpoint{Model: sample().Model}},
		{"empty", &Checkpoint{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
			if err := Save(path, tc.c); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			sameTensors(t, "model", got.Model, tc.c.Model)
			sameTensors(t, "optim", got.Optim, tc.c.Optim)
			if tc.c.Info == nil {
				if got.Info != nil {
					t.Fatalf("Info = %s, want nil", got.Info)
				}
				return
			}
			var a, b any
			json.Unmarshal(tc.c.Info, &a)
			if err := json.Unmarshal(got.Info, &b); err != nil {
				t.Fatal(err)
			}
			if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
				t.Fatalf("Info = %s, want %s", jb, ja)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLayout checks what PyTorch users depend on: names, dtypes, metadata and
// alignment of the bytes on disk.
func TestLayout(t *testing.T) {
	b := encode(t, sample())
	h := rawHeader(t, b)
	var meta map[string]string
	if err := json.Unmarshal(h["__metadata__"], &meta); err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "tnn-checkpoint" || meta["version"] != "1" || !json.Valid([]byte(meta["tnn.info"])) {
		t.Fatalf("metadata %v", meta)
	}
	type info struct {
		DType       string   `json:"dtype"`
		Shape       []int    `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	want := map[string]string{
		"bn_1.num_batches_tracked": "I64",
		"alpha":                    "F32",
		"optimizer_state.conv_1_3x3.weight.momentum_buffer": "F32",
	}
	for name, dt := range want {
		var in info
		if err := json.Unmarshal(h[name], &in); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if in.DType != dt {
			t.Errorf("%s: dtype %s, want %s", name, in.DType, dt)
		}
		size := map[string]int64{"I64": 8, "F32": 4}[dt]
		if (8+int64(binary.LittleEndian.Uint64(b))+in.DataOffsets[0])%size != 0 {
			t.Errorf("%s: misaligned at data offset %d", name, in.DataOffsets[0])
		}
	}
	var nbt info
	json.Unmarshal(h["bn_1.num_batches_tracked"], &nbt)
	if len(nbt.Shape) != 0 {
		t.Errorf("num_batches_tracked shape %v, want []", nbt.Shape)
	}
	base := 8 + int64(binary.LittleEndian.Uint64(b))
	if v := int64(binary.LittleEndian.Uint64(b[base+nbt.DataOffsets[0]:])); v != 391 {
		t.Errorf("num_batches_tracked stored as %d", v)
	}
	if len(h) != 1+len(sample().Model)+len(sample().Optim) {
		t.Errorf("%d header entries", len(h))
	}
}

// TestHandWritten decodes a file assembled byte by byte from the
// safetensors specification, as another writer would produce it.
func TestHandWritten(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},` +
		`"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},` +
		`"n":{"dtype":"I64","shape":[],"data_offsets":[16,24]},` +
		`"i":{"dtype":"I32","shape":[1,1],"data_offsets":[24,28]},` +
		`"h":{"dtype":"F16","shape":[2],"data_offsets":[28,32]},` +
		`"b":{"dtype":"BF16","shape":[1],"data_offsets":[32,34]},` +
		`"optimizer_state.w.momentum_buffer":{"dtype":"BF16","shape":[1],"data_offsets":[34,36]}}`
	var f []byte
	f = append(f, byte(len(header)), byte(len(header)>>8), 0, 0, 0, 0, 0, 0)
	f = append(f, header...)
	f = append(f,
		0x00, 0x00, 0xc0, 0x3f, // F32 1.5
		0x00, 0x00, 0x00, 0xc0, // F32 -2
		0, 0, 0, 0, 0, 0, 0xd0, 0x3f, // F64 0.25
		3, 0, 0, 0, 0, 0, 0, 0, // I64 3
		0xf9, 0xff, 0xff, 0xff, // I32 -7
		0x00, 0x38, // F16 0.5
		0x01, 0x00, // F16 smallest subnormal 2^-24
		0x80, 0xbf, // BF16 -1
		0x40, 0x40, // BF16 3
	)
	c, err := decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Info != nil {
		t.Errorf("plain safetensors gave Info %s", c.Info)
	}
	sameTensors(t, "model", c.Model, []tensor.Named{
		named("w", []float32{1.5, -2}, 2),
		named("d", []float32{0.25}, 1),
		named("n", []float32{3}, []int{}...),
		named("i", []float32{-7}, 1, 1),
		named("h", []float32{0.5, float32(math.Ldexp(1, -24))}, 2),
		named("b", []float32{-1}, 1),
	})
	sameTensors(t, "optim", c.Optim, []tensor.Named{named("w.momentum_buffer", []float32{3}, 1)})
}

func TestHalfToFloat(t *testing.T) {
	for h, want := range map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0400: float32(math.Ldexp(1, -14)),
		0x03ff: float32(math.Ldexp(1023, -24)), 0x7c00: float32(math.Inf(1)), 0xfc00: float32(math.Inf(-1)),
	} {
		if got := halfToFloat(h); got != want {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", h, got, want)
		}
	}
	if got := halfToFloat(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("halfToFloat(NaN) = %v", got)
	}
	if got := halfToFloat(0x8000); math.Float32bits(got) != 0x80000000 {
		t.Errorf("halfToFloat(-0) = %v", got)
	}
}

// TestTruncated cuts a valid file at every byte: each prefix must fail
// cleanly, as must a file with a trailing byte.
func TestTruncated(t *testing.T) {
	c := sample()
	c.Info = json.RawMessage(`{"epoch":1}`)
	b := encode(t, c)
	for k := range len(b) {
		_, err := decode(b[:k])
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotCheckpoint) {
			t.Fatalf("prefix of %d/%d bytes: err = %v", k, len(b), err)
		}
	}
	if _, err := decode(append(b[:len(b):len(b)], 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

// file builds a safetensors file from a header and a data buffer.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestBadFiles(t *testing.T) {
	t4 := func(dt, shape, offs string) string {
		return `{"a":{"dtype":"` + dt + `","shape":` + shape + `,"data_offsets":` + offs + `}}`
	}
	huge := binary.LittleEndian.AppendUint64(nil, 1<<40)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty file", nil, ErrNotCheckpoint},
		{"zip file", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00pytorch model"), ErrNotCheckpoint},
		{"text", []byte("hello world, this is text"), ErrNotCheckpoint},
		{"header length beyond limit", append(huge, '{', '}'), ErrNotCheckpoint},
		{"header not an object", file(`["a"]`, nil), ErrNotCheckpoint},
		{"header length beyond file", append(binary.LittleEndian.AppendUint64(nil, 1000), "{}"...), ErrCorrupt},
		{"bad json", file(`{"a":`, nil), ErrCorrupt},
		{"trailing json", file(`{}{}`, nil), ErrCorrupt},
		{"bad utf8", file("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", make([]byte, 4)), ErrCorrupt},
		{"duplicate name", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrCorrupt},
		{"unknown dtype", file(t4("F33", "[1]", "[0,4]"), make([]byte, 4)), ErrCorrupt},
		{"missing field", file(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), ErrCorrupt},
		{"unknown field", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), ErrCorrupt},
		{"negative dim", file(t4("F32", "[-1]", "[0,4]"), make([]byte, 4)), ErrCorrupt},
		{"fractional dim", file(t4("F32", "[1.5]", "[0,4]"), make([]byte, 4)), ErrCorrupt},
		{"size mismatch", file(t4("F32", "[2]", "[0,4]"), make([]byte, 4)), ErrCorrupt},
		{"offsets reversed", file(t4("F32", "[0]", "[4,0]"), make([]byte, 4)), ErrCorrupt},
		{"offsets outside", file(t4("F32", "[2]", "[0,8]"), make([]byte, 4)), ErrCorrupt},
		{"three offsets", file(t4("F32", "[1]", "[0,4,4]"), make([]byte, 4)), ErrCorrupt},
		{"shape overflow", file(t4("F32", "[4294967296,4294967296,4294967296]", "[0,4]"), make([]byte, 4)), ErrCorrupt},
		{"lying huge tensor", file(t4("F32", "[268435456]", "[0,1073741824]"), make([]byte, 16)), ErrCorrupt},
		{"gap", file(t4("F32", "[1]", "[4,8]"), make([]byte, 8)), ErrCorrupt},
		{"unindexed tail", file(t4("F32", "[1]", "[0,4]"), make([]byte, 8)), ErrCorrupt},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrCorrupt},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, nil), ErrCorrupt},
		{"info not json", file(`{"__metadata__":{"tnn.info":"{"}}`, nil), ErrCorrupt},
		{"newer version", file(`{"__metadata__":{"format":"tnn-checkpoint","version":"2"}}`, nil), ErrUnsupported},
		{"fp8", file(t4("F8_E4M3", "[1]", "[0,1]"), make([]byte, 1)), ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if msg := err.Error(); !strings.Contains(msg, "mem.safetensors") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q should be one line naming the file", msg)
			}
		})
	}
}

// TestLyingHeaderAllocates checks that a header claiming a gigabyte tensor in
// a tiny file is refused before any tensor memory is allocated.
func TestLyingHeaderAllocates(t *testing.T) {
	b := file(`{"a":{"dtype":"F32","shape":[268435456],"data_offsets":[0,1073741824]}}`, make([]byte, 1<<10))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := decode(b)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("no error")
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte file", d, len(b))
	}
}

func TestLoadMessages(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notes.txt")
	os.WriteFile(p, []byte("just some notes, not tensors\n"), 0o644)
	_, err := Load(p)
	if !errors.Is(err, ErrNotCheckpoint) || !strings.HasPrefix(err.Error(), p+" is not a tnn checkpoint (safetensors)") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrNotCheckpoint) {
		t.Fatalf("directory: err = %v", err)
	}
}

func TestSaveInvalid(t *testing.T) {
	dir := t.TempDir()
	bad := []*Checkpoint{
		nil,
		{Model: []tensor.Named{{Name: "", T: tensor.New(1)}}},
		{Model: []tensor.Named{{Name: "a", T: nil}}},
		{Model: []tensor.Named{{Name: "a", T: &tensor.Tensor{Shape: []int{2}, Data: []float32{1}}}}},
		{Model: []tensor.Named{{Name: "a", T: &tensor.Tensor{Shape: []int{-1}, Data: nil}}}},
		{Model: []tensor.Named{{Name: "a", T: tensor.New(1)}, {Name: "a", T: tensor.New(1)}}},
		{Model: []tensor.Named{{Name: "optimizer_state.x", T: tensor.New(1)}}},
		{Model: []tensor.Named{{Name: "__metadata__", T: tensor.New(1)}}},
		{Model: []tensor.Named{{Name: "bad\xff", T: tensor.New(1)}}},
		{Model: []tensor.Named{named("bn.num_batches_tracked", []float32{1.5})}},
		{Model: []tensor.Named{named("bn.num_batches_tracked", []float32{float32(math.NaN())})}},
		{Model: []tensor.Named{named("bn.num_batches_tracked", []float32{float32(math.Inf(1))})}},
		{Optim: []tensor.Named{{Name: "w.m", T: tensor.New(1)}, {Name: "w.m", T: tensor.New(1)}}},
		{Info: json.RawMessage(`{"epoch":`)},
	}
	for i, c := range bad {
		p := filepath.Join(dir, "c.safetensors")
		if err := Save(p, c); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), p) {
			t.Errorf("case %d: err = %v", i, err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("case %d: file written despite the error", i)
		}
	}
}

type failAfter struct {
	w io.Writer
	n int
}

var errDisk = errors.New("disk on fire")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, errDisk
	}
	f.n -= len(p)
	return f.w.Write(p)
}

// TestSaveFailsMidway checks crash safety: a save that dies halfway through
// leaves the previous checkpoint readable and no temporary files behind.
func TestSaveFailsMidway(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "checkpoint.safetensors")
	old := sample()
	if err := Save(p, old); err != nil {
		t.Fatal(err)
	}
	next := sample()
	next.Model[0].T.Data[0] = 42
	next.Info = json.RawMessage(`{"epoch":4}`)
	size := len(encode(t, next))
	for _, cut := range []int{0, 7, 100, size - 1} {
		err := saveWith(p, next, func(w io.Writer) io.Writer { return &failAfter{w: w, n: cut} })
		if !errors.Is(err, errDisk) {
			t.Fatalf("cut %d: err = %v", cut, err)
		}
		got, err := Load(p)
		if err != nil {
			t.Fatalf("cut %d: old checkpoint unreadable: %v", cut, err)
		}
		sameTensors(t, "model", got.Model, old.Model)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the checkpoint", len(ents))
	}
	if err := Save(p, next); err != nil {
		t.Fatal(err)
	}
	if got, _ := Load(p); got.Model[0].T.Data[0] != 42 {
		t.Fatal("successful save did not replace the file")
	}
}

// FuzzLoad feeds arbitrary bytes to the decoder: it must never panic, must
// classify every failure, and whatever it accepts must survive a re-save.
func FuzzLoad(f *testing.F) {
	f.Add(encode(f, sample()))
	f.Add(file(`{}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotCheckpoint) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		l, err := plan(c)
		if err != nil {
			return // e.g. a fractional count under a num_batches_tracked name
		}
		var out bytes.Buffer
		if err := l.write(&out); err != nil {
			t.Fatal(err)
		}
		c2, err := decode(out.Bytes())
		if err != nil {
			t.Fatalf("re-saved file does not load: %v", err)
		}
		sameTensors(t, "model", c2.Model, c.Model)
		sameTensors(t, "optim", c2.Optim, c.Optim)
	})
}
