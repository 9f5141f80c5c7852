package pth

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"

	"github.com/tnn-go/tnn/tensor"
)

// dtype is a storage element type as torch names its storage class.
type dtype struct {
	name string
	size int
	// decode converts little-endian elements to float32.
	decode func(dst []float32, src []byte)
}

var (
	float32Type = &dtype{"float32", 4, func(d []float32, s []byte) {
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(s[4*i:]))
		}
	}}
	int64Type = &dtype{"int64", 8, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int64(binary.LittleEndian.Uint64(s[8*i:])))
		}
	}}
)

// storageClasses are the torch.*Storage globals a pickle names, with the
// element types tnn converts to float32.
var storageClasses = map[string]*dtype{
	"FloatStorage": float32Type,
	"LongStorage":  int64Type,
	"HalfStorage": {"float16", 2, func(d []float32, s []byte) {
		for i := range d {
			d[i] = halfToFloat(binary.LittleEndian.Uint16(s[2*i:]))
		}
	}},
	"BFloat16Storage": {"bfloat16", 2, func(d []float32, s []byte) {
		for i := range d {
			d[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[2*i:])) << 16)
		}
	}},
	"DoubleStorage": {"float64", 8, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[8*i:])))
		}
	}},
	"IntStorage": {"int32", 4, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int32(binary.LittleEndian.Uint32(s[4*i:])))
		}
	}},
	"ShortStorage": {"int16", 2, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int16(binary.LittleEndian.Uint16(s[2*i:])))
		}
	}},
	"CharStorage": {"int8", 1, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(int8(s[i]))
		}
	}},
	"ByteStorage": {"uint8", 1, func(d []float32, s []byte) {
		for i := range d {
			d[i] = float32(s[i])
		}
	}},
	"BoolStorage": {"bool", 1, func(d []float32, s []byte) {
		for i := range d {
			d[i] = 0
			if s[i] != 0 {
				d[i] = 1
			}
		}
	}},
}

// halfToFloat converts IEEE 754 binary16 bits to float32 exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	f := float32(mant) * (1.0 / (1 << 24)) // subnormal: exact in float32
	if sign != 0 {
		f = -f
	}
	return f
}

// storageClass is a torch.<Type>Storage global.
type storageClass struct{ dtype *dtype }

// storageRef is a storage named by a persistent id; for a legacy view,
// base and numel select part of the root storage.
type storageRef struct {
	key       string
	dtype     *dtype
	base      int64
	numel     int64
	rootNumel int64
}

// tensorRef is a rebuilt tensor: a view of a storage.
type tensorRef struct {
	storage *storageRef
	offset  int
	size    []int
	stride  []int
}

// unsupportedError marks a class or storage the file uses that tnn cannot
// convert, as opposed to damage.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return e.msg }

// rebuildTensor is torch._utils._rebuild_tensor (storage, offset, size,
// stride), as torch ≤ 0.3 pickled tensors (torchvision's pretrained ResNet
// files), and _rebuild_tensor_v2, which adds requires_grad, backward hooks
// and (later) metadata.
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor with %d arguments", len(args))
	}
	s, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor of %s", describe(args[0]))
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor with storage offset %s", describe(args[1]))
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor size: %v", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor stride: %v", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor with size %v and stride %v", size, stride)
	}
	return &tensorRef{storage: s, offset: off, size: size, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// hooks): an nn.Parameter is its data here.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter without arguments")
	}
	return args[0], nil
}

// rebuildFromType is torch._tensor._rebuild_from_type_v2(func, type, args,
// state), used for tensor subclasses: the tensor is func(*args).
type rebuildFromType struct{}

func (rebuildFromType) Call(args ...any) (any, error) {
	if len(args) < 3 {
		return nil, fmt.Errorf("_rebuild_from_type_v2 with %d arguments", len(args))
	}
	f, ok1 := args[0].(types.Callable)
	a, ok2 := args[2].(*types.Tuple)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("_rebuild_from_type_v2 of %s", describe(args[0]))
	}
	return f.Call(*a...)
}

func intTuple(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%s is not a tuple", describe(v))
	}
	out := make([]int, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok || n < 0 {
			return nil, fmt.Errorf("%s is not a tuple of non-negative ints", describe(v))
		}
		out[i] = n
	}
	return out, nil
}

// opaqueClass stands for any class the reader has no use for (numpy arrays,
// the seed's RecorderMeter, argparse.Namespace, nn.Module subclasses): it
// can be called, instantiated and given state, and remembers its name so
// errors can say what the file held.
type opaqueClass struct{ name string }

func (c opaqueClass) Call(args ...any) (any, error) { return &opaqueObject{class: c.name}, nil }
func (c opaqueClass) PyNew(args ...any) (any, error) {
	return &opaqueObject{class: c.name}, nil
}

type opaqueObject struct{ class string }

func (*opaqueObject) PySetState(any) error            { return nil }
func (*opaqueObject) PyDictSet(any, any) error        { return nil }
func (*opaqueObject) PySetAttr(string, any) error     { return nil }
func (*opaqueObject) Set(any, any)                    {}
func (o *opaqueObject) Call(args ...any) (any, error) { return &opaqueObject{class: o.class}, nil }

// unsupportedStorage lists torch storage classes tnn recognises but cannot
// convert to float32.
var unsupportedStorage = map[string]bool{
	"ComplexFloatStorage": true, "ComplexDoubleStorage": true, "QInt8Storage": true, "QUInt8Storage": true,
	"QInt32Storage": true, "QUInt4x2Storage": true, "QUInt2x4Storage": true,
}

func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	case "torch._tensor._rebuild_from_type_v2":
		return rebuildFromType{}, nil
	}
	if module == "torch" {
		if d, ok := storageClasses[name]; ok {
			return storageClass{d}, nil
		}
		if unsupportedStorage[name] {
			return nil, &unsupportedError{fmt.Sprintf("tensors of torch.%s", name)}
		}
	}
	if module == "torch._utils" && (name == "_rebuild_qtensor" || name == "_rebuild_sparse_tensor" || name == "_rebuild_sparse_csr_tensor") {
		return nil, &unsupportedError{fmt.Sprintf("%s tensors (torch._utils.%s)", name[len("_rebuild_"):], name)}
	}
	return opaqueClass{name: module + "." + name}, nil
}

// dictEntry is one key/value pair of a pickled dict with a string key.
type dictEntry struct {
	key   string
	value any
}

// asDict returns the entries of a dict or OrderedDict with string keys, in order.
func asDict(v any) ([]dictEntry, bool) {
	var out []dictEntry
	switch d := v.(type) {
	case *types.Dict:
		for _, e := range *d {
			k, ok := e.Key.(string)
			if !ok {
				return nil, false
			}
			out = append(out, dictEntry{k, e.Value})
		}
	case *types.OrderedDict:
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			k, ok := e.Key.(string)
			if !ok {
				return nil, false
			}
			out = append(out, dictEntry{k, e.Value})
		}
	default:
		return nil, false
	}
	return out, true
}

// isStateDict accepts a dict whose values are mostly tensors: a state_dict
// holds nothing else, but a hand-made one may carry a few extras.
func isStateDict(d []dictEntry) bool {
	n := 0
	for _, e := range d {
		if _, ok := e.value.(*tensorRef); ok {
			n++
		}
	}
	return n > 0 && 2*n >= len(d)
}

// describe names a decoded value's type for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case *tensorRef:
		return "tensor"
	case *storageRef:
		return "storage"
	case *types.Dict:
		return fmt.Sprintf("dict of %d", v.Len())
	case *types.OrderedDict:
		return fmt.Sprintf("OrderedDict of %d", v.Len())
	case *types.List:
		return fmt.Sprintf("list of %d", v.Len())
	case *types.Tuple:
		return fmt.Sprintf("tuple of %d", v.Len())
	case *opaqueObject:
		return "a " + v.class + " object"
	case opaqueClass:
		return v.name
	}
	return fmt.Sprintf("%T", v)
}

// maxBroadcast bounds the elements of a tensor that has more elements than
// its storage (a stride-0 expand), which nothing else limits.
const maxBroadcast = 1 << 20

// materialize returns t as a contiguous float32 tensor.
func (c *container) materialize(t *tensorRef) (*tensor.Tensor, error) {
	s := t.storage
	numel := int64(1)
	last := int64(t.offset)
	for i, d := range t.size {
		if d > 0 && numel > math.MaxInt32*16/int64(d) {
			return nil, fmt.Errorf("%w: shape %v is too large", ErrCorrupt, t.size)
		}
		numel *= int64(d)
		if d > 0 {
			last += int64(d-1) * int64(t.stride[i])
		}
	}
	if numel == 0 {
		return tensor.New(t.size...), nil
	}
	if last >= s.numel {
		return nil, fmt.Errorf("%w: shape %v stride %v offset %d reaches element %d of a %d-element storage",
			ErrCorrupt, t.size, t.stride, t.offset, last, s.numel)
	}
	if numel > s.numel && numel > maxBroadcast {
		return nil, fmt.Errorf("%w: a broadcast tensor of shape %v", ErrUnsupported, t.size)
	}
	root, err := c.storage(s)
	if err != nil {
		return nil, err
	}
	src := root[s.base : s.base+s.numel]
	out := make([]float32, numel)
	if contiguous(t.size, t.stride) {
		copy(out, src[t.offset:])
	} else {
		gather(out, src, t.offset, t.size, t.stride)
	}
	return tensor.From(out, t.size...)
}

func contiguous(size, stride []int) bool {
	want := 1
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// gather copies a strided view into row-major order.
func gather(dst, src []float32, offset int, size, stride []int) {
	idx := make([]int, len(size))
	pos := offset
	for i := range dst {
		dst[i] = src[pos]
		for d := len(size) - 1; d >= 0; d-- {
			idx[d]++
			pos += stride[d]
			if idx[d] < size[d] {
				break
			}
			pos -= idx[d] * stride[d]
			idx[d] = 0
		}
	}
}

// storage reads and converts a root storage once.
func (c *container) storage(s *storageRef) ([]float32, error) {
	if v, ok := c.loaded[s.key]; ok {
		return v, nil
	}
	r, have, err := c.data(s.key)
	if err != nil {
		return nil, err
	}
	if rc, ok := r.(io.Closer); ok {
		defer rc.Close()
	}
	n := s.rootNumel
	es := int64(s.dtype.size)
	if have < n*es {
		return nil, fmt.Errorf("%w: storage %q has %d bytes, needs %d", ErrCorrupt, s.key, have, n*es)
	}
	out := make([]float32, n)
	const chunk = 1 << 16
	buf := make([]byte, chunk*es)
	for done := int64(0); done < n; {
		k := min(chunk, n-done)
		if _, err := io.ReadFull(r, buf[:k*es]); err != nil {
			return nil, fmt.Errorf("%w: storage %q: %v", ErrCorrupt, s.key, err)
		}
		s.dtype.decode(out[done:done+k], buf[:k*es])
		done += k
	}
	// Reading to the end makes archive/zip verify the record's CRC-32.
	if _, err := io.Copy(io.Discard, io.LimitReader(r, have-n*es+1)); err != nil {
		return nil, fmt.Errorf("%w: storage %q: %v", ErrCorrupt, s.key, err)
	}
	c.loaded[s.key] = out
	return out, nil
}
