package data

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// maxDeflateRatio bounds how many bytes a deflate stream can expand to per
// compressed byte (the format's limit is about 1032:1). Comparing a header's
// claimed size against it rejects lying headers before anything is allocated.
const maxDeflateRatio = 1032

// firstChunk caps the initial allocation when reading a payload whose size is
// only claimed, so memory grows with bytes actually read, not with the claim.
const firstChunk = 16 << 20

// maybeGunzip wraps r in a gzip reader when it starts with the gzip magic
// and returns the upper bound on the bytes the resulting stream can hold.
func maybeGunzip(r io.Reader, size int64, name string) (io.Reader, int64, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %s: bad gzip header: %v", ErrCorrupt, name, err)
		}
		return zr, size*maxDeflateRatio + 1024, nil
	}
	return br, size, nil
}

// readExact reads exactly n bytes and then requires end of stream, so both
// truncation and trailing garbage are reported; reading to EOF also makes a
// gzip reader verify its CRC. The buffer grows as data arrives.
func readExact(r io.Reader, n int64, name string) ([]byte, error) {
	buf := make([]byte, 0, min(n, firstChunk))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grow := min(n, max(2*int64(cap(buf)), firstChunk))
			nb := make([]byte, len(buf), grow)
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && int64(len(buf)) < n {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: %s: truncated: %d of %d bytes", ErrCorrupt, name, len(buf), n)
			}
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
	}
	var one [1]byte
	m, err := io.ReadFull(r, one[:])
	if m > 0 {
		return nil, fmt.Errorf("%w: %s: unexpected data after %d bytes", ErrCorrupt, name, n)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return buf, nil
}
