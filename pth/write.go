package pth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tnn-go/tnn/internal/atomicfile"
	"github.com/tnn-go/tnn/tensor"
)

// Save atomically writes sd to path as torch.save(state_dict) does in
// PyTorch 1.13: a crash or error leaves any previous file at path untouched.
func Save(path string, sd []tensor.Named) error {
	if err := validate(sd); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if err := write(w, sd); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}

// Write writes sd to w in torch.save's zip container. Tensors named
// "*.num_batches_tracked" are stored as int64, as BatchNorm has them;
// everything else as float32.
func Write(w io.Writer, sd []tensor.Named) error {
	if err := validate(sd); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return write(w, sd)
}

func isCount(name string) bool { return strings.HasSuffix(name, "num_batches_tracked") }

func validate(sd []tensor.Named) error {
	seen := map[string]bool{}
	for _, e := range sd {
		switch {
		case e.Name == "" || !utf8.ValidString(e.Name):
			return fmt.Errorf("tensor name %q is empty or not UTF-8", e.Name)
		case seen[e.Name]:
			return fmt.Errorf("tensor %q appears twice", e.Name)
		case e.T == nil:
			return fmt.Errorf("tensor %q is nil", e.Name)
		}
		seen[e.Name] = true
		n := 1
		for _, d := range e.T.Shape {
			if d < 0 {
				return fmt.Errorf("tensor %q has shape %v", e.Name, e.T.Shape)
			}
			n *= d
		}
		if n != len(e.T.Data) {
			return fmt.Errorf("tensor %q has %d values for shape %v", e.Name, len(e.T.Data), e.T.Shape)
		}
		if isCount(e.Name) {
			for _, v := range e.T.Data {
				if v != float32(math.Trunc(float64(v))) {
					return fmt.Errorf("tensor %q holds %v, not an integer count", e.Name, v)
				}
			}
		}
	}
	if len(sd)+3 > math.MaxUint16 {
		return fmt.Errorf("%d tensors: more than a zip archive without zip64 holds", len(sd))
	}
	return nil
}

// write lays out the archive torch.save produces: archive/data.pkl, one
// archive/data/<key> record per tensor, archive/byteorder and
// archive/version; records stored uncompressed with their data 64-byte
// aligned (torch pads with an extra field, "FB", of 'Z's).
func write(w io.Writer, sd []tensor.Named) error {
	z := &zipWriter{w: w}
	if err := z.add("archive/data.pkl", pickleStateDict(sd)); err != nil {
		return err
	}
	for i, e := range sd {
		if err := z.add("archive/data/"+strconv.Itoa(i), rawBytes(e)); err != nil {
			return err
		}
	}
	if err := z.add("archive/byteorder", []byte("little")); err != nil {
		return err
	}
	if err := z.add("archive/version", []byte("3\n")); err != nil {
		return err
	}
	return z.close()
}

func rawBytes(e tensor.Named) []byte {
	if isCount(e.Name) {
		b := make([]byte, 8*len(e.T.Data))
		for i, v := range e.T.Data {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(int64(v)))
		}
		return b
	}
	b := make([]byte, 4*len(e.T.Data))
	for i, v := range e.T.Data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// pickler emits the protocol-2 opcodes torch's pickle of a state_dict uses.
type pickler struct {
	b    bytes.Buffer
	memo map[string]int
}

func (p *pickler) global(module, name string) {
	key := module + "\n" + name
	if i, ok := p.memo[key]; ok {
		p.b.WriteByte('h') // BINGET
		p.b.WriteByte(byte(i))
		return
	}
	p.b.WriteString("c" + module + "\n" + name + "\n") // GLOBAL
	i := len(p.memo)
	p.memo[key] = i
	p.b.WriteByte('q') // BINPUT (fewer than 256 globals are ever used)
	p.b.WriteByte(byte(i))
}

func (p *pickler) str(s string) {
	p.b.WriteByte('X') // BINUNICODE
	binary.Write(&p.b, binary.LittleEndian, uint32(len(s)))
	p.b.WriteString(s)
}

func (p *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.b.Write([]byte{'K', byte(v)}) // BININT1
	case v >= 0 && v < 1<<16:
		p.b.WriteByte('M') // BININT2
		binary.Write(&p.b, binary.LittleEndian, uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.b.WriteByte('J') // BININT
		binary.Write(&p.b, binary.LittleEndian, int32(v))
	default:
		var le [8]byte
		binary.LittleEndian.PutUint64(le[:], uint64(v))
		n := 8
		for n > 1 && ((le[n-1] == 0 && le[n-2]&0x80 == 0) || (le[n-1] == 0xff && le[n-2]&0x80 != 0)) {
			n--
		}
		p.b.Write([]byte{0x8a, byte(n)}) // LONG1
		p.b.Write(le[:n])
	}
}

func (p *pickler) tuple(xs []int) {
	if len(xs) > 3 {
		p.b.WriteByte('(') // MARK
	}
	for _, x := range xs {
		p.int(int64(x))
	}
	switch len(xs) {
	case 0:
		p.b.WriteByte(')') // EMPTY_TUPLE
	case 1, 2, 3:
		p.b.WriteByte(0x84 + byte(len(xs))) // TUPLE1..TUPLE3
	default:
		p.b.WriteByte('t') // TUPLE
	}
}

// pickleStateDict is
//
//	OrderedDict([(name, torch._utils._rebuild_tensor_v2(
//	    persistent_load(('storage', torch.FloatStorage, key, 'cpu', numel)),
//	    0, size, stride, False, OrderedDict())), ...])
func pickleStateDict(sd []tensor.Named) []byte {
	p := &pickler{memo: map[string]int{}}
	p.b.Write([]byte{0x80, 2}) // PROTO 2
	p.global("collections", "OrderedDict")
	p.b.WriteString(")R") // EMPTY_TUPLE, REDUCE
	if len(sd) > 0 {
		p.b.WriteByte('(')
	}
	for i, e := range sd {
		p.str(e.Name)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.b.WriteString("((") // MARK (args), MARK (persistent id)
		p.str("storage")
		if isCount(e.Name) {
			p.global("torch", "LongStorage")
		} else {
			p.global("torch", "FloatStorage")
		}
		p.str(strconv.Itoa(i))
		p.str("cpu")
		p.int(int64(len(e.T.Data)))
		p.b.WriteString("tQ") // TUPLE, BINPERSID
		p.int(0)
		p.tuple(e.T.Shape)
		stride := make([]int, len(e.T.Shape))
		s := 1
		for d := len(stride) - 1; d >= 0; d-- {
			stride[d] = s
			s *= e.T.Shape[d]
		}
		p.tuple(stride)
		p.b.WriteByte(0x89) // NEWFALSE: requires_grad
		p.global("collections", "OrderedDict")
		p.b.WriteString(")RtR") // backward hooks, TUPLE (args), REDUCE
	}
	if len(sd) > 0 {
		p.b.WriteByte('u') // SETITEMS
	}
	p.b.WriteByte('.') // STOP
	return p.b.Bytes()
}

// zipWriter writes a stored (uncompressed) zip archive without data
// descriptors, each record's data aligned to 64 bytes as torch aligns it.
type zipWriter struct {
	w       io.Writer
	off     int64
	central bytes.Buffer
	n       int
	err     error
}

const (
	zipAlign   = 64
	zipVersion = 20   // 2.0
	zipDate    = 0x21 // 1980-01-01, the earliest date a zip can hold
)

func (z *zipWriter) put(b []byte) {
	if z.err != nil {
		return
	}
	_, z.err = z.w.Write(b)
	z.off += int64(len(b))
}

func (z *zipWriter) add(name string, data []byte) error {
	fixed := int64(30 + len(name) + 4)
	pad := (zipAlign - (z.off+fixed)%zipAlign) % zipAlign
	extra := make([]byte, 4+pad)
	copy(extra, "FB")
	binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
	for i := 4; i < len(extra); i++ {
		extra[i] = 'Z'
	}
	if z.off+fixed+pad+int64(len(data)) > math.MaxUint32 {
		return fmt.Errorf("%w: the archive would exceed 4 GiB, which needs zip64", ErrInvalid)
	}
	crc := crc32.ChecksumIEEE(data)
	var h [30]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], 0x04034b50)
	le.PutUint16(h[4:], zipVersion)
	le.PutUint16(h[12:], zipDate)
	le.PutUint32(h[14:], crc)
	le.PutUint32(h[18:], uint32(len(data)))
	le.PutUint32(h[22:], uint32(len(data)))
	le.PutUint16(h[26:], uint16(len(name)))
	le.PutUint16(h[28:], uint16(len(extra)))

	var c [46]byte
	le.PutUint32(c[0:], 0x02014b50)
	le.PutUint16(c[4:], zipVersion)
	le.PutUint16(c[6:], zipVersion)
	le.PutUint16(c[14:], zipDate)
	le.PutUint32(c[16:], crc)
	le.PutUint32(c[20:], uint32(len(data)))
	le.PutUint32(c[24:], uint32(len(data)))
	le.PutUint16(c[28:], uint16(len(name)))
	le.PutUint32(c[42:], uint32(z.off))
	z.central.Write(c[:])
	z.central.WriteString(name)
	z.n++

	z.put(h[:])
	z.put([]byte(name))
	z.put(extra)
	z.put(data)
	return z.err
}

func (z *zipWriter) close() error {
	cdOff := z.off
	cd := z.central.Bytes()
	z.put(cd)
	if cdOff+int64(len(cd)) > math.MaxUint32 {
		return fmt.Errorf("%w: the archive would exceed 4 GiB, which needs zip64", ErrInvalid)
	}
	var e [22]byte
	le := binary.LittleEndian
	le.PutUint32(e[0:], 0x06054b50)
	le.PutUint16(e[8:], uint16(z.n))
	le.PutUint16(e[10:], uint16(z.n))
	le.PutUint32(e[12:], uint32(len(cd)))
	le.PutUint32(e[16:], uint32(cdOff))
	z.put(e[:])
	return z.err
}
