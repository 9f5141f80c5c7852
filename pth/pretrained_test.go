package pth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// servePretrained points the resnet18 entry at a local server that serves
// body under name, and isolates both caches in temporary folders.
func servePretrained(t *testing.T, name string, body []byte) (*atomic.Int32, string, string) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/models/"+name {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	oldFile, oldBase := pretrainedFiles["resnet18"], baseURL
	pretrainedFiles["resnet18"], baseURL = name, srv.URL+"/models/"
	t.Cleanup(func() { pretrainedFiles["resnet18"], baseURL = oldFile, oldBase })
	home, torch := t.TempDir(), t.TempDir()
	t.Setenv("TNN_HOME", home)
	t.Setenv("TORCH_HOME", torch)
	return &hits, filepath.Join(home, "checkpoints", name), filepath.Join(torch, "hub", "checkpoints", name)
}

func hashedName(b []byte) string {
	s := sha256.Sum256(b)
	return "resnet18-" + hex.EncodeToString(s[:])[:8] + ".pth"
}

func TestPretrainedDownloadAndCache(t *testing.T) {
	body := fixture(t, "resnet18.pth")
	name := hashedName(body)
	hits, cached, hub := servePretrained(t, name, body)

	var log bytes.Buffer
	p, err := Pretrained("resnet18b_fq_lq_tern_tex_4", &log)
	if err != nil {
		t.Fatal(err)
	}
	if p != cached || hits.Load() != 1 {
		t.Fatalf("path %s after %d requests, want %s after 1", p, hits.Load(), cached)
	}
	if f, err := Load(p); err != nil || len(f.StateDict) != 122 {
		t.Fatalf("downloaded file: %v", err)
	}
	if !strings.Contains(log.String(), "ok") {
		t.Errorf("log: %s", log.String())
	}

	// Cached: no request.
	if p, err := Pretrained("resnet18", nil); err != nil || p != cached || hits.Load() != 1 {
		t.Fatalf("second call: %s, %v, %d requests", p, err, hits.Load())
	}

	// A damaged cache is fetched again.
	os.WriteFile(cached, body[:1000], 0o644)
	if p, err := Pretrained("resnet18", nil); err != nil || p != cached || hits.Load() != 2 {
		t.Fatalf("after damage: %s, %v, %d requests", p, err, hits.Load())
	}
	if got, _ := os.ReadFile(cached); !bytes.Equal(got, body) {
		t.Fatal("the re-downloaded file differs")
	}

	// torch.hub's copy is used as it is.
	os.Remove(cached)
	os.MkdirAll(filepath.Dir(hub), 0o755)
	os.WriteFile(hub, body, 0o644)
	if p, err := Pretrained("resnet18", nil); err != nil || p != hub || hits.Load() != 2 {
		t.Fatalf("torch.hub copy: %s, %v, %d requests", p, err, hits.Load())
	}
}

func TestPretrainedChecksum(t *testing.T) {
	body := fixture(t, "formats.pth")
	hits, cached, _ := servePretrained(t, "resnet18-00000000.pth", body)
	_, err := Pretrained("resnet18", nil)
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrDownload) || hits.Load() != 1 {
		t.Fatalf("%v after %d requests", err, hits.Load())
	}
	if _, err := os.Stat(cached); err == nil {
		t.Fatal("a file that failed its checksum was kept")
	}
	if entries, _ := os.ReadDir(filepath.Dir(cached)); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestPretrainedOffline: the error says in one line what to fetch, from
// where, and where to put it.
func TestPretrainedOffline(t *testing.T) {
	_, cached, _ := servePretrained(t, "resnet18-12345678.pth", nil)
	baseURL = "http://127.0.0.1:1/models/" // nothing listens on port 1
	_, err := Pretrained("resnet18", nil)
	msg := err.Error()
	if !errors.Is(err, ErrDownload) || strings.Contains(msg, "\n") ||
		!strings.Contains(msg, "resnet18-12345678.pth from http://127.0.0.1:1/models/resnet18-12345678.pth") ||
		!strings.Contains(msg, "place it at "+cached) {
		t.Fatalf("%q", msg)
	}
}

func TestPretrainedFile(t *testing.T) {
	for arch, want := range map[string]string{
		"resnet18": "https://download.pytorch.org/models/resnet18-5c106cde.pth", "resnet18b_fq_lq_tex1": "https://download.pytorch.org/models/resnet18-5c106cde.pth",
		"resnet34b_ff_lf_tex1": "https://download.pytorch.org/models/resnet34-333f7ec4.pth", "resnet50": "https://download.pytorch.org/models/resnet50-19c8e357.pth",
		"resnet101b_fq_lq_tex1": "https://download.pytorch.org/models/resnet101-5d3b4d8f.pth",
	} {
		if _, url, err := PretrainedFile(arch); err != nil || url != want {
			t.Errorf("%s: %s %v, want %s", arch, url, err, want)
		}
	}
	for _, arch := range []string{"tern_resnet20", "resnet20", "alexnet_vanilla", "resnet180"} {
		if _, _, err := PretrainedFile(arch); !errors.Is(err, ErrNoPretrained) {
			t.Errorf("%s: %v", arch, err)
		}
	}
	if _, _, err := PretrainedFile("tern_alexnet_fq_lq"); !strings.Contains(err.Error(), "BatchNorm") {
		t.Errorf("alexnet: %v", err)
	}
}
