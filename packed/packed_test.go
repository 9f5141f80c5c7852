package packed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tnn-go/tnn/models"
)

// tinyModel is a two-layer network small enough for fuzz seeds:
// ternary conv 1→2 3×3, BatchNorm, ReLU, global pool, ternary linear 2→3.
func tinyModel(t testing.TB, p Packing, tex int) *Model {
	t.Helper()
	s := &models.Spec{Arch: "tiny", InC: 1, H: 4, W: 4, Classes: 3, Nodes: []models.Node{
		{Name: "conv", Op: models.OpConv2d, Inputs: []int{models.Input}, InC: 1, OutC: 2, Kernel: 3, Stride: 1, Padding: 1, Ternary: true},
		{Name: "bn", Op: models.OpBatchNorm2d, Inputs: []int{0}, OutC: 2},
		{Name: "relu", Op: models.OpReLU, Inputs: []int{1}},
		{Name: "pool", Op: models.OpGlobalAvgPool, Inputs: []int{2}},
		{Name: "fc", Op: models.OpLinear, Inputs: []int{3}, InC: 2, OutC: 3, Bias: true, Ternary: true},
	}}
	net, err := models.Build(s, models.Options{TEx: tex})
	if err != nil {
		t.Fatal(err)
	}
	net.Init(1)
	m, err := FromNet(net, Options{Packing: p, TEx: tex, TFactor: 0.05, Dataset: "test",
		Norm: Norm{Mean: []float32{0.5}, Std: []float32{0.5}}, ClassNames: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	for _, p := range []Packing{Bits, Dense} {
		for _, tex := range []int{1, 2} {
			m := tinyModel(t, p, tex)
			b, err := Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Read(b)
			if err != nil {
				t.Fatalf("%s tex=%d: %v", p, tex, err)
			}
			if got.Size != int64(len(b)) || got.HeaderBytes != m.HeaderBytes {
				t.Errorf("size %d header %d, want %d %d", got.Size, got.HeaderBytes, len(b), m.HeaderBytes)
			}
			if !reflect.DeepEqual(got.Meta, m.Meta) || !reflect.DeepEqual(got.Layers, m.Layers) {
				t.Errorf("%s tex=%d: model changed in the round trip", p, tex)
			}
			b2, _ := Encode(got)
			if !bytes.Equal(b, b2) {
				t.Errorf("%s tex=%d: re-encoding differs", p, tex)
			}
		}
	}
}

func TestWriteFile(t *testing.T) {
	m := tinyModel(t, Dense, 1)
	path := filepath.Join(t.TempDir(), "m.tnn")
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if got.Size != fi.Size() || m.Size != fi.Size() {
		t.Errorf("Size %d/%d, file has %d bytes", got.Size, m.Size, fi.Size())
	}
}

// TestCorrupt: every truncation and many random byte flips give an error.
func TestCorrupt(t *testing.T) {
	b, err := Encode(tinyModel(t, Bits, 1))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := Read(b[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 500; i++ {
		c := bytes.Clone(b)
		c[r.IntN(len(c))] ^= byte(1 + r.IntN(255))
		if _, err := Read(c); err == nil {
			t.Fatalf("flip %d: no error", i)
		}
	}
	if _, err := Read([]byte("PK\x03\x04 not a model")); !errors.Is(err, ErrNotPacked) {
		t.Errorf("zip file: %v, want ErrNotPacked", err)
	}
	v := bytes.Clone(b)
	binary.LittleEndian.PutUint16(v[8:], 2)
	if _, err := Read(v); !errors.Is(err, ErrUnsupported) {
		t.Errorf("version 2: %v, want ErrUnsupported", err)
	}
}

// reseal recomputes the checksum so a test can reach the checks behind it.
func reseal(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	return b
}

// TestCorruptBehindChecksum: damage with a valid checksum is still caught.
func TestCorruptBehindChecksum(t *testing.T) {
	b, err := Encode(tinyModel(t, Bits, 1))
	if err != nil {
		t.Fatal(err)
	}
	huge := bytes.Clone(b)
	binary.LittleEndian.PutUint32(huge[16:], 1<<31)
	bigZ := bytes.Clone(b)
	binary.LittleEndian.PutUint32(bigZ[12:], 1<<30)
	short := append(bytes.Clone(b[:len(b)-5]), 0, 0, 0, 0)
	long := append(bytes.Clone(b[:len(b)-4]), 0, 0, 0, 0, 0)
	badCode := bytes.Clone(b)
	// The last payload bytes are the linear layer's codes, scales or bias;
	// the conv's codes sit right after its α and threshold.
	m, _ := Read(b)
	off := int(m.HeaderBytes) - 4 + 8
	badCode[off] = 0xff
	for name, c := range map[string][]byte{"huge meta": huge, "meta past end": bigZ, "short payload": short, "long payload": long, "code 3": badCode} {
		if _, err := Read(reseal(c)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, p := range []Packing{Bits, Dense} {
		for _, tex := range []int{1, 2} {
			b, err := Encode(tinyModel(f, p, tex))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Read(b)
		if err == nil {
			if _, err := Encode(m); err != nil {
				t.Fatalf("a file that reads does not encode: %v", err)
			}
		}
		// Past the checksum too, where random bytes otherwise never get.
		if len(b) >= fixedHead+4 && string(b[:len(Magic)]) == Magic {
			if m, err := decode(b); err == nil {
				if _, err := Encode(m); err != nil {
					t.Fatalf("a file that decodes does not encode: %v", err)
				}
			}
		}
	})
}

// TestSummarySize: the summary's layer bytes plus header equal the file.
func TestSummarySize(t *testing.T) {
	for _, p := range []Packing{Bits, Dense} {
		m := tinyModel(t, p, 2)
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := Read(b)
		s, err := Summarize(got)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, r := range s.Rows {
			sum += r.Bytes
		}
		if s.FileBytes != int64(len(b)) || sum+s.HeaderBytes != int64(len(b)) {
			t.Errorf("%s: file %d bytes, summary %d = %d layers + %d header", p, len(b), s.FileBytes, sum, s.HeaderBytes)
		}
		e, err := Estimate(m.Spec, 2, p)
		if err != nil {
			t.Fatal(err)
		}
		if e.FileBytes-e.HeaderBytes != sum {
			t.Errorf("%s: estimate %d layer bytes, file has %d", p, e.FileBytes-e.HeaderBytes, sum)
		}
		// conv 18 + bn 4 + fc 6 + 3 biases.
		if s.FloatParams != 31 {
			t.Errorf("float params %d, want 31", s.FloatParams)
		}
		var out bytes.Buffer
		if err := s.Write(&out); err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + out.String())
	}
}

func TestValidate(t *testing.T) {
	m := tinyModel(t, Dense, 1)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m.Layers[0].Codes = m.Layers[0].Codes[:1]
	if err := m.Validate(); err == nil {
		t.Error("short codes accepted")
	}
	m = tinyModel(t, Bits, 1)
	m.Layers[1].Bias = nil
	if err := m.Validate(); err == nil {
		t.Error("missing bias accepted")
	}
}
