// Package pth reads and writes PyTorch checkpoint files (torch.save output:
// .pth, .pth.tar, .pt) in pure Go, and fetches torchvision's pretrained
// weights.
//
// # Reading
//
// Both containers torch.save has used are read: the zip archive of
// PyTorch ≥ 1.6 (archive/data.pkl plus one raw little-endian record per
// storage) and the legacy stream of earlier versions (pickled magic number,
// protocol version and system info, the pickled object, the pickled list of
// storage keys, then each storage as an int64 element count and its bytes;
// torchvision's pretrained ResNet files are of this kind). Tensors come back as
// float32 whatever their dtype (float16, bfloat16, float64 and the integer
// types are converted), laid out contiguously: a tensor saved as a view
// (transposed, sliced, expanded) is gathered through its storage offset and
// strides.
//
// The pickle is decoded by github.com/nlpodyssey/gopickle's unpickler; the
// containers, storages and tensor views are handled here because that
// module's own pytorch package reads every storage eagerly (optimizer state
// included), panics on legacy storage views, and does not bound sizes by
// the file. Here every length is checked against the file before memory is
// allocated, only the tensors of the state_dict are materialised, and
// classes the reader does not know (numpy arrays, a training recorder,
// argparse namespaces) decode to opaque placeholders instead of failing.
//
// A file may hold a state_dict directly or a dict with one under
// "state_dict" (the seed's main.py saves {'epoch', 'arch', 'state_dict',
// 'recorder', 'optimizer'}); DataParallel's "module." prefix is removed.
//
// # Writing
//
// Save writes a state_dict in the zip container of torch 1.13 (pickle
// protocol 2, persistent ids for storages, torch._utils._rebuild_tensor_v2
// in a collections.OrderedDict, 64-byte aligned stored records), which
// torch.load reads and model.load_state_dict accepts.
package pth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/tnn-go/tnn/tensor"
)

var (
	// ErrNotPth reports a file that is neither of torch.save's containers.
	ErrNotPth = errors.New("not a PyTorch checkpoint")
	// ErrCorrupt reports a PyTorch file whose container, pickle or storage
	// data is damaged or truncated.
	ErrCorrupt = errors.New("corrupt PyTorch checkpoint")
	// ErrUnsupported reports a well-formed PyTorch file this reader cannot use:
	// TorchScript archives, big-endian data, complex or quantized tensors, the
	// pre-2017 tar container.
	ErrUnsupported = errors.New("unsupported PyTorch checkpoint")
	// ErrNoStateDict reports a file that holds no state_dict (for instance
	// a whole pickled nn.Module, or an optimizer state alone).
	ErrNoStateDict = errors.New("no state_dict in PyTorch checkpoint")
	// ErrInvalid reports a state_dict that Save cannot store faithfully.
	ErrInvalid = errors.New("invalid state_dict")
)

// File is what a PyTorch checkpoint holds that tnn can use.
type File struct {
	// StateDict holds the tensors in the file's order, as float32, with the
	// DataParallel prefix removed.
	StateDict []tensor.Named
	// Key is the top-level key the state_dict was found under ("" when the
	// file is a state_dict itself).
	Key string
	// Prefix is the prefix removed from every name ("module." or "").
	Prefix string
	// Skipped lists what was not loaded: the other top-level keys (epoch,
	// arch, recorder, optimizer, ...) and state_dict entries that are not
	// tensors.
	Skipped []string
	// Epoch is the top-level "epoch" entry, or -1.
	Epoch int
	// Arch is the top-level "arch" entry, or "".
	Arch string
	// Format is "zip" (torch ≥ 1.6) or "legacy".
	Format string
	// Dtypes counts the tensors of the state_dict by their stored dtype
	// ("float32", "float16", "int64", ...), before conversion to float32.
	Dtypes map[string]int
}

// Load reads a PyTorch checkpoint file. Errors name path and wrap ErrNotPth,
// ErrCorrupt, ErrUnsupported or ErrNoStateDict.
func Load(path string) (*File, error) {
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
		return nil, fmt.Errorf("%s is %w: not a regular file", path, ErrNotPth)
	}
	file, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return file, nil
}

// Detect reports whether the file at path starts like a torch.save file
// (either container), so callers can choose between this package and
// package checkpoint without relying on the file name.
func Detect(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512) // the tar container's magic is at byte 257
	n, _ := io.ReadFull(f, head)
	return sniff(head[:n]) != ""
}

// legacyMagic is the pickled 0x1950a86a20f9469cfc6c (LONG1, 10 bytes) that
// opens a legacy torch.save stream.
var legacyMagic = []byte{0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

const legacyProtocolVersion = 1001

// sniff returns "zip", "legacy", "tar" or "" from a file's first bytes.
func sniff(head []byte) string {
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return "zip"
	}
	if len(head) >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 {
		rest := head[2:]
		if len(rest) >= 9 && rest[0] == 0x95 { // FRAME (protocol 4+)
			rest = rest[9:]
		}
		if bytes.HasPrefix(rest, legacyMagic) {
			return "legacy"
		}
	}
	// A safetensors file has '{' at byte 8, where a tar header has its file name.
	if len(head) >= 262 && string(head[257:262]) == "ustar" && head[8] != '{' {
		return "tar"
	}
	return ""
}

// Read parses a PyTorch checkpoint of size bytes from r.
func Read(r io.ReaderAt, size int64) (*File, error) {
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	head = head[:n]
	var c *container
	switch sniff(head) {
	case "zip":
		c, err = openZip(r, size)
	case "legacy":
		c, err = openLegacy(r, size)
	case "tar":
		return nil, fmt.Errorf("%w: PyTorch's pre-2017 tar container; load and re-save it with torch.save in any PyTorch ≥ 0.4", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: neither torch.save's zip archive nor its legacy pickle stream", ErrNotPth)
	}
	if err != nil {
		return nil, err
	}
	return c.file()
}

// file picks the state_dict out of the unpickled object and materialises it.
func (c *container) file() (*File, error) {
	f := &File{Epoch: -1, Format: c.format, Dtypes: map[string]int{}}
	top, ok := asDict(c.obj)
	if !ok {
		return nil, fmt.Errorf("%w: the file holds %s; save model.state_dict() instead", ErrNoStateDict, describe(c.obj))
	}
	var sd []dictEntry
	if isStateDict(top) {
		sd = top
	} else {
		for _, key := range []string{"state_dict", "model_state_dict", "model", "net"} {
			for _, e := range top {
				if e.key != key {
					continue
				}
				if d, ok := asDict(e.value); ok && isStateDict(d) {
					sd, f.Key = d, key
				}
			}
			if f.Key != "" {
				break
			}
		}
		if f.Key == "" {
			var what []string
			for _, e := range top {
				what = append(what, fmt.Sprintf("%s (%s)", e.key, describe(e.value)))
			}
			return nil, fmt.Errorf("%w: top-level keys %s; none is a dict of tensors", ErrNoStateDict, strings.Join(what, ", "))
		}
		for _, e := range top {
			switch e.key {
			case f.Key:
			case "epoch":
				if v, ok := e.value.(int); ok {
					f.Epoch = v
				}
				f.Skipped = append(f.Skipped, e.key)
			case "arch":
				if v, ok := e.value.(string); ok {
					f.Arch = v
				}
				f.Skipped = append(f.Skipped, e.key)
			default:
				f.Skipped = append(f.Skipped, e.key)
			}
		}
	}
	f.Prefix = "module."
	for _, e := range sd {
		if _, isT := e.value.(*tensorRef); isT && !strings.HasPrefix(e.key, f.Prefix) {
			f.Prefix = ""
			break
		}
	}
	seen := map[string]bool{}
	for _, e := range sd {
		t, isT := e.value.(*tensorRef)
		if !isT {
			f.Skipped = append(f.Skipped, e.key)
			continue
		}
		name := strings.TrimPrefix(e.key, f.Prefix)
		if seen[name] {
			return nil, fmt.Errorf("%w: tensor %q appears twice", ErrCorrupt, name)
		}
		seen[name] = true
		v, err := c.materialize(t)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", e.key, err)
		}
		f.StateDict = append(f.StateDict, tensor.Named{Name: name, T: v})
		f.Dtypes[t.storage.dtype.name]++
	}
	return f, nil
}

// DtypeSummary renders Dtypes as "float16 ×120, int64 ×20", sorted.
func (f *File) DtypeSummary() string {
	var parts []string
	for k, n := range f.Dtypes {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
