package pth

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// container is an opened checkpoint: the unpickled object, whose tensors
// refer to storages, and where each storage's bytes are.
type container struct {
	format string
	obj    any
	// data returns a reader over the bytes of the storage with this key.
	data   func(key string) (io.Reader, int64, error)
	loaded map[string][]float32
}

// maxPickle bounds the object pickle. A state_dict's pickle is a few hundred
// bytes per tensor; 1 GiB is far beyond any real one and keeps a damaged
// length field from asking for more.
const maxPickle = 1 << 30

// unpickle decodes one pickle held in b. gopickle is not hardened against
// malformed input (odd item counts, empty LONG1), so its panics become
// ErrCorrupt here.
func unpickle(b []byte, persistent func(any) (any, error)) (obj any, err error) {
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("%w: malformed pickle (%v)", ErrCorrupt, r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(b))
	u.FindClass = findClass
	u.PersistentLoad = persistent
	obj, err = u.Load()
	if err != nil {
		var ue *unsupportedError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, ue.msg)
		}
		return nil, fmt.Errorf("%w: pickle: %v", ErrCorrupt, err)
	}
	return obj, nil
}

// openZip reads the zip container: <prefix>/data.pkl, <prefix>/data/<key>,
// <prefix>/version (and, from newer PyTorch, <prefix>/byteorder).
func openZip(r io.ReaderAt, size int64) (*container, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: zip archive unreadable (truncated?): %v", ErrCorrupt, err)
	}
	records := map[string]*zip.File{}
	prefix := ""
	for i, f := range zr.File {
		// Sizes in the directory are checked against the file before any
		// storage is allocated from them: stored records hold exactly their
		// data, deflated ones at most deflate's 1032:1.
		if f.CompressedSize64 > uint64(size) ||
			(f.Method == zip.Store && f.UncompressedSize64 != f.CompressedSize64) ||
			f.UncompressedSize64/1032 > f.CompressedSize64 {
			return nil, fmt.Errorf("%w: zip record %s claims %d bytes from %d in a %d-byte file", ErrCorrupt, f.Name, f.UncompressedSize64, f.CompressedSize64, size)
		}
		if i == 0 {
			prefix, _, _ = strings.Cut(f.Name, "/")
		}
		if dir, rest, ok := strings.Cut(f.Name, "/"); ok && dir == prefix {
			records[rest] = f
		}
	}
	if _, ok := records["constants.pkl"]; ok {
		return nil, fmt.Errorf("%w: a TorchScript archive (torch.jit.save); save model.state_dict() with torch.save instead", ErrUnsupported)
	}
	pkl, ok := records["data.pkl"]
	if !ok {
		return nil, fmt.Errorf("%w: a zip archive without data.pkl", ErrNotPth)
	}
	if bo, ok := records["byteorder"]; ok {
		b, err := readRecord(bo, 16)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("%w: byteorder %q", ErrUnsupported, s)
		}
	}
	if pkl.UncompressedSize64 > maxPickle {
		return nil, fmt.Errorf("%w: data.pkl claims %d bytes", ErrCorrupt, pkl.UncompressedSize64)
	}
	b, err := readRecord(pkl, int64(pkl.UncompressedSize64))
	if err != nil {
		return nil, err
	}
	if _, err := pickleLen(bytes.NewReader(b), int64(len(b))); err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	c := &container{format: "zip", loaded: map[string][]float32{}}
	storages := map[string]*storageRef{}
	persistent := func(pid any) (any, error) {
		t, ok := pid.(*types.Tuple)
		if !ok || t.Len() < 5 {
			return nil, fmt.Errorf("persistent id %s is not ('storage', type, key, location, numel)", describe(pid))
		}
		s, err := newStorageRef(t, storages)
		if err != nil {
			return nil, err
		}
		f, ok := records["data/"+s.key]
		if !ok {
			return nil, fmt.Errorf("storage %q has no record data/%s", s.key, s.key)
		}
		if need := s.numel * int64(s.dtype.size); int64(f.UncompressedSize64) < need || need/int64(s.dtype.size) != s.numel {
			return nil, fmt.Errorf("storage %q needs %d×%d bytes, its record has %d (truncated?)", s.key, s.numel, s.dtype.size, f.UncompressedSize64)
		}
		return s, nil
	}
	if c.obj, err = unpickle(b, persistent); err != nil {
		return nil, err
	}
	c.data = func(key string) (io.Reader, int64, error) {
		f := records["data/"+key]
		rc, err := f.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: data/%s: %v", ErrCorrupt, key, err)
		}
		return rc, int64(f.UncompressedSize64), nil
	}
	return c, nil
}

func readRecord(f *zip.File, n int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, n))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.Name, err)
	}
	return b, nil
}

// openLegacy reads the stream torch.save wrote before PyTorch 1.6 (and with
// _use_new_zipfile_serialization=False): five pickles, then the storages.
func openLegacy(r io.ReaderAt, size int64) (*container, error) {
	at := int64(0)
	next := func(what string, persistent func(any) (any, error)) (any, error) {
		n, err := pickleLen(bufio.NewReader(io.NewSectionReader(r, at, size-at)), size-at)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, at); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
		}
		at += n
		obj, err := unpickle(b, persistent)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return obj, nil
	}
	magic, err := next("magic number", nil)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != "1950a86a20f9469cfc6c" {
		return nil, fmt.Errorf("%w: wrong magic number", ErrNotPth)
	}
	proto, err := next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if p, ok := proto.(int); !ok || p != legacyProtocolVersion {
		return nil, fmt.Errorf("%w: legacy protocol version %v, want %d", ErrUnsupported, proto, legacyProtocolVersion)
	}
	sys, err := next("system info", nil)
	if err != nil {
		return nil, err
	}
	if d, ok := asDict(sys); ok {
		for _, e := range d {
			if e.key == "little_endian" && e.value == false {
				return nil, fmt.Errorf("%w: saved on a big-endian machine", ErrUnsupported)
			}
		}
	}
	c := &container{format: "legacy", loaded: map[string][]float32{}}
	storages := map[string]*storageRef{}
	persistent := func(pid any) (any, error) {
		t, ok := pid.(*types.Tuple)
		if !ok || t.Len() < 1 {
			return nil, fmt.Errorf("persistent id %s is not a tuple", describe(pid))
		}
		switch t.Get(0) {
		case "module": // the source of a pickled nn.Module class
			return opaqueClass{name: "nn.Module class"}, nil
		case "storage":
		default:
			return nil, fmt.Errorf("persistent id of kind %v", t.Get(0))
		}
		if t.Len() < 6 {
			return nil, fmt.Errorf("persistent id %s is not ('storage', type, key, location, numel, view)", describe(pid))
		}
		s, err := newStorageRef(t, storages)
		if err != nil {
			return nil, err
		}
		switch v := t.Get(5).(type) {
		case nil:
			return s, nil
		case *types.Tuple:
			// An old storage view (view_key, offset, numel), in elements of
			// the root storage.
			if v.Len() != 3 {
				return nil, fmt.Errorf("storage view %s", describe(v))
			}
			off, ok1 := v.Get(1).(int)
			n, ok2 := v.Get(2).(int)
			if !ok1 || !ok2 || off < 0 || n < 0 || int64(off)+int64(n) > s.numel {
				return nil, fmt.Errorf("storage view %s outside its %d-element storage", describe(v), s.numel)
			}
			view := *s
			view.base, view.numel = int64(off), int64(n)
			return &view, nil
		default:
			return nil, fmt.Errorf("storage view metadata %s", describe(v))
		}
	}
	if c.obj, err = next("object", persistent); err != nil {
		return nil, err
	}
	keysObj, err := next("storage keys", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("%w: storage key list is %s", ErrCorrupt, describe(keysObj))
	}
	// Each storage: int64 element count, then its bytes, in key-list order.
	offsets := map[string]int64{}
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%w: storage key %s", ErrCorrupt, describe(k))
		}
		s, ok := storages[key]
		if !ok {
			return nil, fmt.Errorf("%w: storage %q is listed but never used", ErrCorrupt, key)
		}
		var hdr [8]byte
		if _, err := r.ReadAt(hdr[:], at); err != nil {
			return nil, fmt.Errorf("%w: truncated before storage %q at byte %d of %d", ErrCorrupt, key, at, size)
		}
		n := int64(binary.LittleEndian.Uint64(hdr[:]))
		if n != s.rootNumel {
			return nil, fmt.Errorf("%w: storage %q holds %d elements, the pickle says %d", ErrCorrupt, key, n, s.rootNumel)
		}
		at += 8
		offsets[key] = at
		end := at + n*int64(s.dtype.size)
		if n < 0 || end > size || end < at {
			return nil, fmt.Errorf("%w: truncated: storage %q needs bytes [%d, %d) of a %d-byte file", ErrCorrupt, key, at, end, size)
		}
		at = end
	}
	for key := range storages {
		if _, ok := offsets[key]; !ok {
			return nil, fmt.Errorf("%w: storage %q has no data", ErrCorrupt, key)
		}
	}
	c.data = func(key string) (io.Reader, int64, error) {
		s := storages[key]
		return io.NewSectionReader(r, offsets[key], s.rootNumel*int64(s.dtype.size)), s.rootNumel * int64(s.dtype.size), nil
	}
	return c, nil
}

// newStorageRef checks ('storage', class, key, location, numel, ...) and
// returns the storage, shared by every reference to the same key.
func newStorageRef(t *types.Tuple, storages map[string]*storageRef) (*storageRef, error) {
	if t.Get(0) != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v", t.Get(0))
	}
	cls, ok := t.Get(1).(storageClass)
	if !ok {
		if o, isOpaque := t.Get(1).(opaqueClass); isOpaque {
			return nil, &unsupportedError{fmt.Sprintf("storage type %s", o.name)}
		}
		return nil, fmt.Errorf("storage type %s", describe(t.Get(1)))
	}
	key, ok1 := t.Get(2).(string)
	_, ok2 := t.Get(3).(string)
	numel, ok3 := t.Get(4).(int)
	if !ok1 || !ok2 || !ok3 || numel < 0 {
		return nil, fmt.Errorf("storage id %s", describe(t))
	}
	if s, ok := storages[key]; ok {
		if s.dtype != cls.dtype {
			return nil, fmt.Errorf("storage %q is used as %s and as %s", key, s.dtype.name, cls.dtype.name)
		}
		if s.rootNumel != int64(numel) {
			return nil, fmt.Errorf("storage %q has %d and %d elements", key, s.rootNumel, numel)
		}
		return s, nil
	}
	s := &storageRef{key: key, dtype: cls.dtype, numel: int64(numel), rootNumel: int64(numel)}
	storages[key] = s
	return s, nil
}

// pickleLen returns the length of the pickle at the start of r (up to and
// including STOP), walking the opcodes without building anything, so that
// the legacy stream can be split and no length field is trusted beyond the
// bytes that exist.
func pickleLen(r io.Reader, limit int64) (int64, error) {
	br := &countReader{r: r}
	bad := func(why string, a ...any) error {
		return fmt.Errorf("%w: pickle at byte %d: %s", ErrCorrupt, br.n, fmt.Sprintf(why, a...))
	}
	skip := func(n int64) error {
		if n < 0 || n > limit-br.n {
			return bad("a length of %d runs past the end of the file", n)
		}
		_, err := io.CopyN(io.Discard, br, n)
		if err != nil {
			return bad("truncated")
		}
		return nil
	}
	uint := func(n int) (int64, error) {
		var b [8]byte
		if _, err := io.ReadFull(br, b[:n]); err != nil {
			return 0, bad("truncated")
		}
		v := binary.LittleEndian.Uint64(b[:])
		if v > 1<<62 {
			return -1, nil
		}
		return int64(v), nil
	}
	line := func() error {
		for {
			var b [1]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return bad("truncated line")
			}
			if b[0] == '\n' {
				return nil
			}
		}
	}
	for {
		var op [1]byte
		if _, err := io.ReadFull(br, op[:]); err != nil {
			return 0, bad("ends without STOP")
		}
		switch op[0] {
		case '.': // STOP
			return br.n, nil
		case '(', '0', '1', '2', 'N', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u', 'Q',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
		case 'F', 'I', 'L', 'S', 'V', 'P', 'g', 'p':
			if err := line(); err != nil {
				return 0, err
			}
		case 'c', 'i': // GLOBAL, INST: module and name lines
			if err := line(); err != nil {
				return 0, err
			}
			if err := line(); err != nil {
				return 0, err
			}
		case 'K', 'h', 'q', 0x80, 0x82:
			if err := skip(1); err != nil {
				return 0, err
			}
		case 'M', 0x83:
			if err := skip(2); err != nil {
				return 0, err
			}
		case 'J', 'j', 'r', 0x84:
			if err := skip(4); err != nil {
				return 0, err
			}
		case 'G':
			if err := skip(8); err != nil {
				return 0, err
			}
		case 0x95: // FRAME: the length announces what follows; opcodes go on inside
			n, err := uint(8)
			if err != nil {
				return 0, err
			}
			if n < 0 || n > limit-br.n {
				return 0, bad("a frame of %d bytes runs past the end of the file", n)
			}
		case 'U', 'C', 0x8c, 0x8a: // 1-byte length
			n, err := uint(1)
			if err != nil {
				return 0, err
			}
			if err := skip(n); err != nil {
				return 0, err
			}
		case 'T', 'X', 'B', 0x8b: // 4-byte length
			n, err := uint(4)
			if err != nil {
				return 0, err
			}
			if err := skip(n); err != nil {
				return 0, err
			}
		case 0x8d, 0x8e, 0x96: // 8-byte length
			n, err := uint(8)
			if err != nil {
				return 0, err
			}
			if err := skip(n); err != nil {
				return 0, err
			}
		default:
			return 0, bad("unknown opcode 0x%02x", op[0])
		}
		if br.n > maxPickle {
			return 0, bad("longer than %d bytes", maxPickle)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
