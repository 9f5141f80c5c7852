package data

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tnn-go/tnn/internal/atomicfile"
)

type resource struct {
	file, md5 string
}

// source lists a dataset's files and the base URLs to try, in order.
type source struct {
	mirrors []string
	files   []resource
}

// sources carries the official locations and checksums, as listed by
// torchvision's MNIST, FashionMNIST, CIFAR10 and CIFAR100 classes. It is a
// variable so tests can point it at a local server.
var sources = map[string]source{
	"mnist": {
		mirrors: []string{"https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"},
		files: []resource{
			{"train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
			{"train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"},
			{"t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"},
			{"t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"},
		},
	},
	"fashion-mnist": {
		mirrors: []string{"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"},
		files: []resource{
			{"train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
			{"train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"},
			{"t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"},
			{"t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"},
		},
	},
	"cifar10": {
		mirrors: []string{"https://www.cs.toronto.edu/~kriz/"},
		files:   []resource{{"cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"}},
	},
	"cifar100": {
		mirrors: []string{"https://www.cs.toronto.edu/~kriz/"},
		files:   []resource{{"cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"}},
	},
}

// httpClient bounds connection set-up and the wait for response headers but
// not the whole transfer, which for CIFAR may legitimately take minutes.
var httpClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}()

// stallTimeout is how long a transfer may go without receiving a byte before
// it is abandoned (and the next mirror tried). A variable for tests.
var stallTimeout = time.Minute

// Download fetches the official files of a dataset into dir/name (the
// layout Load searches), verifying each against its published MD5. Files
// already present with the right checksum are kept. Each file is written
// atomically, so a failed or mismatching transfer leaves nothing behind. When
// a file cannot be fetched from any mirror, the error names every missing
// file, its URLs and the folder to put it in by hand. progress, if not nil,
// receives human-readable status lines. The embedded sample needs nothing.
func Download(name, dir string, progress io.Writer) error {
	if name == "fashion-mnist-sample" {
		return nil
	}
	src, ok := sources[name]
	if !ok {
		return unknown(name)
	}
	if progress == nil {
		progress = io.Discard
	}
	dest := filepath.Join(dir, name)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("%w: %s: cannot create %s: %v", ErrDownload, name, dest, err)
	}
	var missing []string
	var last error
	for _, r := range src.files {
		p := filepath.Join(dest, r.file)
		if sum, err := md5File(p); err == nil && sum == r.md5 {
			fmt.Fprintf(progress, "%s: present, checksum ok\n", p)
			continue
		}
		var urls []string
		done := false
		for _, m := range src.mirrors {
			u := m + r.file
			urls = append(urls, u)
			err := fetch(u, p, r.md5, progress)
			if err == nil {
				done = true
				break
			}
			fmt.Fprintf(progress, "%s: %v\n", u, err)
			last = err
		}
		if !done {
			missing = append(missing, fmt.Sprintf("%s from %s (md5 %s)", r.file, strings.Join(urls, " or "), r.md5))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: fetch %s by hand and place it in %s; last error: %w",
			ErrDownload, name, strings.Join(missing, "; "), dest, last)
	}
	return nil
}

func md5File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fetch downloads url to path through a temporary file that is renamed into
// place only when the transfer completed and the checksum matched.
func fetch(url, path, want string, progress io.Writer) error {
	fmt.Fprintf(progress, "fetching %s\n", url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stalled := &atomic.Bool{}
	watchdog := time.AfterFunc(stallTimeout, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		if stalled.Load() {
			return fmt.Errorf("GET %s: no response for %v", url, stallTimeout)
		}
		return err // already names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		h := md5.New()
		pr := &progressReader{r: resp.Body, total: resp.ContentLength, name: filepath.Base(path), out: progress,
			onData: func() { watchdog.Reset(stallTimeout) }}
		n, err := io.Copy(io.MultiWriter(w, h), pr)
		if err != nil {
			if stalled.Load() {
				return fmt.Errorf("GET %s: transfer stalled: no data for %v after %d bytes", url, stallTimeout, n)
			}
			return fmt.Errorf("GET %s: %w", url, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("%w: %s: md5 %s, want %s (%d bytes)", ErrChecksum, url, got, want, n)
		}
		fmt.Fprintf(progress, "%s: %d bytes, checksum ok\n", path, n)
		return nil
	})
}

// progressReader reports every tenth of a transfer of known length and
// calls onData whenever bytes arrive.
type progressReader struct {
	r      io.Reader
	n      int64
	total  int64
	step   int64
	name   string
	out    io.Writer
	onData func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 && p.onData != nil {
		p.onData()
	}
	if p.total > 0 {
		if s := p.n * 10 / p.total; s > p.step && s < 10 {
			p.step = s
			fmt.Fprintf(p.out, "%s: %d%% (%d of %d bytes)\n", p.name, s*10, p.n, p.total)
		}
	}
	return n, err
}
