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

// minChunk is the smallest initial buffer readExact uses.
const minChunk = 64 << 10

// maybeGunzip wraps r in a gzip reader when it starts with the gzip magic and
// returns the upper bound on the bytes the resulting stream can hold and a
// plausible size to allocate up front.
func maybeGunzip(r io.Reader, size int64, name string) (stream io.Reader, limit, hint int64, err error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: %s: bad gzip header: %v", ErrCorrupt, name, err)
		}
		// Image data compresses about 2:1; 8:1 covers real files in one
		// allocation while a lying header only gets a modest first buffer.
		return zr, size*maxDeflateRatio + 1024, 8 * size, nil
	}
	return br, size, size, nil
}

// readExact reads exactly n bytes and then requires end of stream, so both
// truncation and trailing garbage are reported; reading to EOF also makes a
// gzip reader verify its CRC. The buffer starts at hint bytes and doubles as
// data arrives, so a claimed size n only costs memory once the data is there.
func readExact(r io.Reader, n, hint int64, name string) ([]byte, error) {
	buf := make([]byte, 0, min(n, max(hint, minChunk)))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grow := min(n, 2*int64(cap(buf)))
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
