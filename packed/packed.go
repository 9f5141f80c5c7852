// Package packed stores a trained ternary network for deployment: the
// architecture, the weights as packed trits (or base-(2k+1) digits for
// residual expansion layers), BatchNorm folded into a per-output-channel
// scale and bias of the preceding convolution or linear layer, the input
// normalisation and the class names, in one checksummed file.
//
// # Layout (version 1, all integers little-endian)
//
//	offset  size  field
//	0       8     magic "TNNPACK\x00"
//	8       2     version (1)
//	10      2     reserved, 0
//	12      4     M: length of the compressed metadata
//	16      4     R: length of the metadata once inflated (at most 16 MiB)
//	20      M     metadata: DEFLATE (RFC 1951) of a JSON Meta
//	20+M    P     payload: per layer (see Layout), in order; a ternary layer
//	              stores α_1..α_k and th_1..th_k (float32), its packed levels,
//	              then OutC float32 scales if it folds a BatchNorm; a
//	              full-precision layer OutC×InC·K·K float32 weights (BatchNorm
//	              scale folded in); then, if the layer has a bias or folds a
//	              BatchNorm, OutC float32 biases
//	end-4   4     CRC-32 (IEEE) of every byte before it
//
// The metadata is inflated with a fixed preset dictionary (meta_dict_v1.json).
// The payload has no offsets and the file no layer table: which nodes are
// layers, which BatchNorm each folds and every section's length follow from
// the Spec, and the sections' sum must equal P exactly. See FORMAT.md.
//
// A ternary layer with t_ex = k stores, per weight, the signed level
// L ∈ [-k, k]: the number of the k nested thresholds |W| reaches, with W's
// sign. Its effective weight is sign(L)·(α_1 + … + α_|L|), so the output of
// channel c is scale_c · Σ_m (α_1+…+α_m)·S_m + bias_c, where S_m sums the
// inputs at level +m and subtracts those at level -m.
package packed

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/tnn-go/tnn/internal/atomicfile"
	"github.com/tnn-go/tnn/models"
)

var (
	// ErrNotPacked reports a file that does not start with the magic.
	ErrNotPacked = errors.New("not a tnn packed model")
	// ErrCorrupt reports a damaged or truncated packed file.
	ErrCorrupt = errors.New("corrupt packed model")
	// ErrUnsupported reports a newer version or a network this format cannot hold.
	ErrUnsupported = errors.New("unsupported packed model")
	// ErrInvalid reports a Model or option that cannot be written.
	ErrInvalid = errors.New("invalid packed model")
)

// Magic starts every packed file.
const Magic = "TNNPACK\x00"

// Version is the format version this package writes and reads.
const Version = 1

const (
	fixedHead = 20
	maxMeta   = 16 << 20
	// maxElems bounds a node's output elements per image and a layer's
	// weights, so that a crafted Spec cannot make a reader or runtime
	// allocate without limit.
	maxElems = 1 << 28
	maxNodes = 1 << 16
)

// Norm is the per-channel input normalisation, applied as (x/255 - Mean)/Std.
type Norm struct {
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// Meta is the JSON metadata block.
type Meta struct {
	Spec       *models.Spec `json:"spec"`
	Dataset    string       `json:"dataset,omitempty"`
	Norm       Norm         `json:"norm"`
	ClassNames []string     `json:"class_names,omitempty"`
	TFactor    float64      `json:"tfactor"`
	TEx        int          `json:"tex"`
	Packing    Packing      `json:"packing"`
}

// Layer is one convolution or linear node and its data. Which nodes are
// layers, which BatchNorm each folds and whether it has a bias all follow
// from the Spec (see Layout), so the file does not store them.
type Layer struct {
	Node int
	// BN is the index of the BatchNorm node folded into this layer, or -1.
	BN int
	// Ternary layers store levels; the others float32 weights.
	Ternary bool
	// HasBias is set when the layer has a bias or folds a BatchNorm.
	HasBias bool
	// Alpha and Threshold hold α_i and th_i of the t_ex terms.
	Alpha, Threshold []float32
	// Codes holds the packed levels of a ternary layer (OutC × InC·K·K, row-major).
	Codes []byte
	// Weight holds a full-precision layer's weight with the BatchNorm scale folded in.
	Weight []float32
	// Scale is the folded BatchNorm scale of a ternary layer (nil without
	// BatchNorm, meaning 1); α is not in it.
	Scale []float32
	Bias  []float32
}

// Model is a whole packed file in memory.
type Model struct {
	Meta
	Layers []Layer
	// Size is the file's length when read, or as written.
	Size int64
	// HeaderBytes is everything but the payload: fixed header, metadata and checksum.
	HeaderBytes int64
}

// Codec returns the codec of the model's ternary layers.
func (m *Model) Codec() (*Codec, error) { return NewCodec(m.Packing, m.TEx) }

// Write encodes m.
func Write(w io.Writer, m *Model) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// WriteFile writes m to path atomically.
func WriteFile(path string, m *Model) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b, 0o644)
}

// Encode returns the file bytes of m and sets m.Size and m.HeaderBytes.
func Encode(m *Model) ([]byte, error) {
	sizes, err := plan(&m.Meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(sizes) != len(m.Layers) {
		return nil, fmt.Errorf("%w: %d layers, the spec has %d", ErrInvalid, len(m.Layers), len(sizes))
	}
	codec, err := m.Codec()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(&m.Meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var z bytes.Buffer
	fw, _ := flate.NewWriterDict(&z, flate.BestCompression, metaDict)
	fw.Write(js)
	fw.Close()
	var out bytes.Buffer
	out.WriteString(Magic)
	var head [12]byte
	binary.LittleEndian.PutUint16(head[0:], Version)
	binary.LittleEndian.PutUint32(head[4:], uint32(z.Len()))
	binary.LittleEndian.PutUint32(head[8:], uint32(len(js)))
	out.Write(head[:])
	out.Write(z.Bytes())
	for i, l := range m.Layers {
		s := sizes[i]
		if l.Node != s.Node || l.BN != s.BN || l.Ternary != s.Ternary || l.HasBias != s.HasBias {
			return nil, fmt.Errorf("%w: layer %d does not match the spec's layout", ErrInvalid, i)
		}
		if l.Ternary {
			if len(l.Alpha) != m.TEx || len(l.Threshold) != m.TEx || len(l.Codes) != codec.Len(s.weights) {
				return nil, fmt.Errorf("%w: layer %d has %d alphas, %d thresholds and %d code bytes, want %d, %d and %d",
					ErrInvalid, i, len(l.Alpha), len(l.Threshold), len(l.Codes), m.TEx, m.TEx, codec.Len(s.weights))
			}
			putFloats(&out, l.Alpha)
			putFloats(&out, l.Threshold)
			out.Write(l.Codes)
			if (l.BN >= 0) != (l.Scale != nil) || (l.Scale != nil && len(l.Scale) != s.outC) {
				return nil, fmt.Errorf("%w: layer %d has %d scales", ErrInvalid, i, len(l.Scale))
			}
			putFloats(&out, l.Scale)
		} else {
			if len(l.Weight) != s.weights {
				return nil, fmt.Errorf("%w: layer %d has %d weights, want %d", ErrInvalid, i, len(l.Weight), s.weights)
			}
			putFloats(&out, l.Weight)
		}
		if (l.Bias != nil) != l.HasBias || (l.HasBias && len(l.Bias) != s.outC) {
			return nil, fmt.Errorf("%w: layer %d has %d biases", ErrInvalid, i, len(l.Bias))
		}
		putFloats(&out, l.Bias)
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc32.ChecksumIEEE(out.Bytes()))
	out.Write(sum[:])
	m.Size = int64(out.Len())
	m.HeaderBytes = int64(fixedHead + z.Len() + 4)
	return out.Bytes(), nil
}

func putFloats(w *bytes.Buffer, xs []float32) {
	var b [4]byte
	for _, x := range xs {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		w.Write(b[:])
	}
}

// ReadFile reads and validates a packed file.
func ReadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m, err := Read(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Read decodes and validates a whole packed file. Every length is checked
// against len(b) before anything is allocated, so a damaged file gives an
// error, never a panic or an outsized allocation.
func Read(b []byte) (*Model, error) {
	if len(b) < len(Magic) || string(b[:len(Magic)]) != Magic {
		return nil, ErrNotPacked
	}
	if len(b) < fixedHead+4 {
		return nil, fmt.Errorf("%w: truncated header (%d bytes)", ErrCorrupt, len(b))
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != Version {
		return nil, fmt.Errorf("%w: version %d (this tnn reads %d)", ErrUnsupported, v, Version)
	}
	body := b[:len(b)-4]
	if got, want := crc32.ChecksumIEEE(body), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or damaged file)", ErrCorrupt)
	}
	return decode(b)
}

// decode parses a file whose checksum has been verified (or, in the fuzz
// test, deliberately not).
func decode(b []byte) (*Model, error) {
	body := b[:len(b)-4]
	zlen := uint64(binary.LittleEndian.Uint32(b[12:]))
	rawLen := uint64(binary.LittleEndian.Uint32(b[16:]))
	if zlen > uint64(len(body)-fixedHead) {
		return nil, fmt.Errorf("%w: metadata length %d exceeds the file", ErrCorrupt, zlen)
	}
	if rawLen > maxMeta {
		return nil, fmt.Errorf("%w: metadata length %d over the %d limit", ErrCorrupt, rawLen, maxMeta)
	}
	// Deflate expands at most 1032:1, which bounds what a short file can claim.
	if rawLen > 1032*zlen+16 {
		return nil, fmt.Errorf("%w: metadata length %d impossible for %d compressed bytes", ErrCorrupt, rawLen, zlen)
	}
	jb := bytes.NewBuffer(make([]byte, 0, rawLen))
	zr := flate.NewReaderDict(bytes.NewReader(body[fixedHead:fixedHead+zlen]), metaDict)
	if n, err := io.Copy(jb, io.LimitReader(zr, int64(rawLen)+1)); err != nil || uint64(n) != rawLen {
		return nil, fmt.Errorf("%w: metadata does not inflate to %d bytes", ErrCorrupt, rawLen)
	}
	m := &Model{Size: int64(len(b)), HeaderBytes: int64(fixedHead + zlen + 4)}
	dec := json.NewDecoder(jb)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m.Meta); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	sizes, err := plan(&m.Meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	codec, err := m.Codec()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	payload := body[fixedHead+zlen:]
	var need uint64
	for _, s := range sizes {
		need += s.bytes(codec, m.TEx)
	}
	if need != uint64(len(payload)) {
		return nil, fmt.Errorf("%w: payload is %d bytes, the layers need %d", ErrCorrupt, len(payload), need)
	}
	m.Layers = make([]Layer, len(sizes))
	p := payload
	take := func(n int) []byte { r := p[:n]; p = p[n:]; return r }
	for i, s := range sizes {
		l := &m.Layers[i]
		*l = s.Layer
		if l.Ternary {
			l.Alpha = getFloats(take(4 * m.TEx))
			l.Threshold = getFloats(take(4 * m.TEx))
			l.Codes = take(codec.Len(s.weights))
			if err := codec.Check(l.Codes, s.weights); err != nil {
				return nil, fmt.Errorf("layer %s: %w", m.Spec.Nodes[l.Node].Name, err)
			}
			if l.BN >= 0 {
				l.Scale = getFloats(take(4 * s.outC))
			}
		} else {
			l.Weight = getFloats(take(4 * s.weights))
		}
		if l.HasBias {
			l.Bias = getFloats(take(4 * s.outC))
		}
	}
	return m, nil
}

func getFloats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// layerSize is a layer's layout and sizes, before its data is known.
type layerSize struct {
	Layer
	weights, outC int
}

// bytes is the layer's share of the payload.
func (s layerSize) bytes(c *Codec, tex int) uint64 {
	var n uint64
	if s.Ternary {
		n = 8*uint64(tex) + uint64(c.Len(s.weights))
		if s.BN >= 0 {
			n += 4 * uint64(s.outC)
		}
	} else {
		n = 4 * uint64(s.weights)
	}
	if s.HasBias {
		n += 4 * uint64(s.outC)
	}
	return n
}

// Layout lists the layers a Spec's packed file holds: every conv2d and
// linear node in order; a BatchNorm whose input is such a node, and the
// node's only consumer, is folded into it. Any other BatchNorm is an error.
func Layout(s *models.Spec) ([]Layer, error) {
	consumers := make([]int, len(s.Nodes))
	for _, n := range s.Nodes {
		for _, j := range n.Inputs {
			if j >= 0 && j < len(s.Nodes) {
				consumers[j]++
			}
		}
	}
	idx := make([]int, len(s.Nodes))
	var out []Layer
	for i, n := range s.Nodes {
		idx[i] = -1
		switch n.Op {
		case models.OpConv2d, models.OpLinear:
			idx[i] = len(out)
			out = append(out, Layer{Node: i, BN: -1, Ternary: n.Ternary, HasBias: n.Bias})
		case models.OpBatchNorm1d, models.OpBatchNorm2d:
			src := -1
			if len(n.Inputs) == 1 {
				src = n.Inputs[0]
			}
			if src < 0 || src >= i || idx[src] < 0 || consumers[src] != 1 {
				return nil, fmt.Errorf("%w: BatchNorm %s does not alone follow a conv or linear layer", ErrUnsupported, n.Name)
			}
			out[idx[src]].BN = i
			out[idx[src]].HasBias = true
		}
	}
	return out, nil
}

// plan validates the metadata and its Spec and returns each layer's sizes.
func plan(m *Meta) ([]layerSize, error) {
	s := m.Spec
	if s == nil {
		return nil, errors.New("no spec")
	}
	if len(s.Nodes) == 0 || len(s.Nodes) > maxNodes {
		return nil, fmt.Errorf("spec has %d nodes", len(s.Nodes))
	}
	for _, d := range []int{s.InC, s.H, s.W, s.Classes} {
		if d <= 0 || d > maxElems {
			return nil, fmt.Errorf("spec input %dx%dx%d, %d classes out of range", s.InC, s.H, s.W, s.Classes)
		}
	}
	if uint64(s.InC)*uint64(s.H)*uint64(s.W) > maxElems {
		return nil, errors.New("input too large")
	}
	for _, n := range s.Nodes {
		for _, v := range []int{n.InC, n.OutC, n.Kernel, n.Stride, n.Padding} {
			if v < 0 || v > maxElems {
				return nil, fmt.Errorf("node %s has a field out of range", n.Name)
			}
		}
		switch n.Op {
		case models.OpConv2d, models.OpMaxPool2d, models.OpAvgPool2d:
			if n.Stride < 1 || n.Kernel < 1 {
				return nil, fmt.Errorf("node %s has stride %d, kernel %d", n.Name, n.Stride, n.Kernel)
			}
		case models.OpShortcutA:
			if n.Stride < 1 {
				return nil, fmt.Errorf("node %s has stride %d", n.Name, n.Stride)
			}
		}
		if n.Kernel > 64 || n.Padding > 64 || n.Stride > 64 {
			return nil, fmt.Errorf("node %s has kernel, stride or padding over 64", n.Name)
		}
	}
	shapes, err := s.Shapes()
	if err != nil {
		return nil, err
	}
	for i, sh := range shapes {
		n := uint64(1)
		for _, d := range sh {
			n *= uint64(d)
			if n > maxElems {
				return nil, fmt.Errorf("node %s output too large", s.Nodes[i].Name)
			}
		}
	}
	if len(m.Norm.Mean) != s.InC || len(m.Norm.Std) != s.InC {
		return nil, fmt.Errorf("normalisation has %d means and %d stds for %d channels", len(m.Norm.Mean), len(m.Norm.Std), s.InC)
	}
	for i, v := range m.Norm.Std {
		if !(v > 0) || math.IsInf(float64(v), 0) || math.IsNaN(float64(m.Norm.Mean[i])) {
			return nil, fmt.Errorf("normalisation mean %g std %g", m.Norm.Mean[i], v)
		}
	}
	if len(m.ClassNames) != 0 && len(m.ClassNames) != s.Classes {
		return nil, fmt.Errorf("%d class names for %d classes", len(m.ClassNames), s.Classes)
	}
	if _, err := NewCodec(m.Packing, m.TEx); err != nil {
		return nil, err
	}
	layers, err := Layout(s)
	if err != nil {
		return nil, err
	}
	sizes := make([]layerSize, len(layers))
	for i, l := range layers {
		n := s.Nodes[l.Node]
		k := uint64(n.Kernel)
		if n.Op == models.OpLinear {
			k = 1
		}
		w := uint64(n.OutC) * uint64(n.InC) * k * k
		if w > maxElems {
			return nil, fmt.Errorf("layer %s has too many weights", n.Name)
		}
		sizes[i] = layerSize{Layer: l, weights: int(w), outC: n.OutC}
	}
	return sizes, nil
}

// Validate checks that m's layers fit its Spec and that the packed codes
// are in range, as Read does for a file; infer.New relies on it.
func (m *Model) Validate() error {
	sizes, err := plan(&m.Meta)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	codec, err := m.Codec()
	if err != nil {
		return err
	}
	if len(sizes) != len(m.Layers) {
		return fmt.Errorf("%w: %d layers, the spec has %d", ErrInvalid, len(m.Layers), len(sizes))
	}
	for i, s := range sizes {
		l := m.Layers[i]
		name := m.Spec.Nodes[s.Node].Name
		ok := l.Node == s.Node && l.BN == s.BN && l.Ternary == s.Ternary && l.HasBias == s.HasBias &&
			(l.Bias != nil) == l.HasBias && (!l.HasBias || len(l.Bias) == s.outC)
		if l.Ternary {
			ok = ok && len(l.Alpha) == m.TEx && len(l.Threshold) == m.TEx && (l.Scale != nil) == (l.BN >= 0) &&
				(l.Scale == nil || len(l.Scale) == s.outC)
			if ok {
				if err := codec.Check(l.Codes, s.weights); err != nil {
					return fmt.Errorf("layer %s: %w", name, err)
				}
			}
		} else {
			ok = ok && len(l.Weight) == s.weights
		}
		if !ok {
			return fmt.Errorf("%w: layer %s does not match its spec", ErrInvalid, name)
		}
	}
	return nil
}
