package data

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// fakeServer serves files by base name and counts requests.
func fakeServer(t *testing.T, files map[string][]byte) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, ok := files[filepath.Base(r.URL.Path)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// withSource swaps the download table entry for name during one test.
func withSource(t *testing.T, name string, s source) {
	old, had := sources[name]
	sources[name] = s
	t.Cleanup(func() {
		if had {
			sources[name] = old
		} else {
			delete(sources, name)
		}
	})
}

func TestDownloadMNIST(t *testing.T) {
	trImg, trLbl, trPix, _ := fakeMNIST(5, 1)
	teImg, teLbl, _, _ := fakeMNIST(2, 2)
	files := map[string][]byte{
		"train-images-idx3-ubyte.gz": gzipBytes(trImg), "train-labels-idx1-ubyte.gz": gzipBytes(trLbl),
		"t10k-images-idx3-ubyte.gz": gzipBytes(teImg), "t10k-labels-idx1-ubyte.gz": gzipBytes(teLbl),
	}
	good, goodHits := fakeServer(t, files)
	empty, emptyHits := fakeServer(t, nil)
	var res []resource
	for _, r := range sources["mnist"].files {
		res = append(res, resource{r.file, md5hex(files[r.file])})
	}
	// The first mirror answers 404 for everything, as a dead mirror would.
	withSource(t, "mnist", source{mirrors: []string{empty.URL + "/a/", good.URL + "/b/"}, files: res})

	dir := t.TempDir()
	var log bytes.Buffer
	if err := Download("mnist", dir, &log); err != nil {
		t.Fatal(err)
	}
	if emptyHits.Load() != 4 || goodHits.Load() != 4 {
		t.Errorf("requests: %d to the dead mirror, %d to the good one; want 4 each", emptyHits.Load(), goodHits.Load())
	}
	ds, err := Load("mnist", dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ds.Pixels, trPix) {
		t.Error("downloaded training pixels differ")
	}
	if !strings.Contains(log.String(), "checksum ok") {
		t.Errorf("progress log lacks checksum confirmation:\n%s", log.String())
	}
	// A second run finds everything in place and fetches nothing.
	if err := Download("mnist", dir, nil); err != nil {
		t.Fatal(err)
	}
	if goodHits.Load() != 4 {
		t.Errorf("second Download made %d more requests", goodHits.Load()-4)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "mnist"))
	if len(entries) != 4 {
		t.Errorf("download folder holds %d entries, want the 4 files", len(entries))
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	body := []byte("not the real archive")
	srv, _ := fakeServer(t, map[string][]byte{"cifar-10-binary.tar.gz": body})
	withSource(t, "cifar10", source{mirrors: []string{srv.URL + "/"},
		files: []resource{{"cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"}}})
	dir := t.TempDir()
	err := Download("cifar10", dir, nil)
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrDownload) {
		t.Fatalf("got %v, want ErrDownload wrapping ErrChecksum", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cifar10"))
	if len(entries) != 0 {
		t.Errorf("mismatching download left %d files behind", len(entries))
	}

	// With the right checksum the same bytes are accepted.
	withSource(t, "cifar10", source{mirrors: []string{srv.URL + "/"},
		files: []resource{{"cifar-10-binary.tar.gz", md5hex(body)}}})
	if err := Download("cifar10", dir, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cifar10", "cifar-10-binary.tar.gz")); !bytes.Equal(b, body) {
		t.Error("downloaded bytes differ")
	}
}

func TestDownloadOffline(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more: connection refused
	withSource(t, "fashion-mnist", source{mirrors: []string{base + "/m1/", base + "/m2/"}, files: sources["fashion-mnist"].files})
	dir := t.TempDir()
	err := Download("fashion-mnist", dir, nil)
	if !errors.Is(err, ErrDownload) {
		t.Fatalf("got %v, want ErrDownload", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, r := range sources["fashion-mnist"].files {
		for _, want := range []string{r.file, base + "/m1/" + r.file, base + "/m2/" + r.file} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q: %s", want, msg)
			}
		}
	}
	if !strings.Contains(msg, filepath.Join(dir, "fashion-mnist")) {
		t.Errorf("error does not name the destination folder: %s", msg)
	}
	if err := Download("fashion-mnist-sample", dir, nil); err != nil {
		t.Errorf("the embedded sample needs no download, got %v", err)
	}
}

// The shipped table must keep torchvision's checksums.
func TestDownloadTable(t *testing.T) {
	want := map[string]string{
		"mnist/train-images-idx3-ubyte.gz":        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
		"fashion-mnist/t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
		"cifar10/cifar-10-binary.tar.gz":          "c32a1d4ab5d03f1284b67883e8d87530",
		"cifar100/cifar-100-binary.tar.gz":        "03b5dce01913d631647c71ecec9e9cb8",
	}
	for k, sum := range want {
		name, file, _ := strings.Cut(k, "/")
		found := false
		for _, r := range sources[name].files {
			if r.file == file {
				found = r.md5 == sum
			}
		}
		if !found {
			t.Errorf("%s: md5 is not %s", k, sum)
		}
	}
	if m := sources["mnist"].mirrors; len(m) != 2 || !strings.HasPrefix(m[0], "https://ossci-datasets") {
		t.Errorf("MNIST mirrors %v", m)
	}
}

// A mirror that sends part of a file and then goes silent must be abandoned
// after stallTimeout, leave no partial file, and let the next mirror serve it.
func TestDownloadStall(t *testing.T) {
	payload := bytes.Repeat([]byte("cifar"), 1<<12)
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "20480")
		w.Write(payload[:1000])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the client gives up
	}))
	t.Cleanup(stuck.Close)
	good, _ := fakeServer(t, map[string][]byte{"cifar-10-binary.tar.gz": payload})
	old := stallTimeout
	stallTimeout = 200 * time.Millisecond
	t.Cleanup(func() { stallTimeout = old })

	withSource(t, "cifar10", source{mirrors: []string{stuck.URL + "/"}, files: []resource{{"cifar-10-binary.tar.gz", md5hex(payload)}}})
	dir := t.TempDir()
	start := time.Now()
	err := Download("cifar10", dir, nil)
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("got %v, want ErrDownload naming the stall", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v, want about %v", d, stallTimeout)
	}
	if _, err := os.Stat(filepath.Join(dir, "cifar10", "cifar-10-binary.tar.gz")); !os.IsNotExist(err) {
		t.Errorf("a partial file was left behind: %v", err)
	}

	withSource(t, "cifar10", source{mirrors: []string{stuck.URL + "/", good.URL + "/"}, files: []resource{{"cifar-10-binary.tar.gz", md5hex(payload)}}})
	if err := Download("cifar10", dir, nil); err != nil {
		t.Fatalf("second mirror should have served the file: %v", err)
	}
}
