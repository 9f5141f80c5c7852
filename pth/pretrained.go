package pth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tnn-go/tnn/internal/atomicfile"
)

var (
	// ErrNoPretrained reports an architecture torchvision publishes no
	// weights for.
	ErrNoPretrained = errors.New("no pretrained weights")
	// ErrDownload reports weights that could not be fetched.
	ErrDownload = errors.New("download failed")
	// ErrChecksum reports a download whose SHA-256 does not start with the
	// hash in its file name.
	ErrChecksum = errors.New("checksum mismatch")
)

// pretrainedFiles are the torchvision ImageNet weights the seed starts from
// (its model_urls; method.md §4): the original ResNet releases, top-1
// 69.76 / 73.31 / 76.13 / 77.37 %. The name carries the first hex digits of
// the file's SHA-256, as torch.hub checks it. A variable so that tests can
// serve their own.
var pretrainedFiles = map[string]string{
	"resnet18":  "resnet18-5c106cde.pth",
	"resnet34":  "resnet34-333f7ec4.pth",
	"resnet50":  "resnet50-19c8e357.pth",
	"resnet101": "resnet101-5d3b4d8f.pth",
}

// baseURL is where torchvision publishes them.
var baseURL = "https://download.pytorch.org/models/"

var httpClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}()

// archFamily matches package models' ImageNet ResNets and their ternary
// variants, which use torchvision's names and so take its weights as they are.
var archFamily = regexp.MustCompile(`^(resnet(?:18|34|50|101))(?:b_|$)`)

// PretrainedFile returns the file name and URL of torchvision's weights for
// arch (resnet18 … resnet101 and their seed variants such as
// resnet18b_fq_lq_tern_tex_4).
func PretrainedFile(arch string) (name, url string, err error) {
	m := archFamily.FindStringSubmatch(arch)
	if m != nil {
		if f, ok := pretrainedFiles[m[1]]; ok {
			return f, baseURL + f, nil
		}
	}
	var have []string
	for k := range pretrainedFiles {
		have = append(have, k)
	}
	sort.Strings(have)
	why := ""
	if strings.Contains(arch, "alexnet") {
		why = " (the seed's AlexNet has BatchNorm and 96-256-384-384-256 channels; torchvision's alexnet-owt-4df8aa71.pth, 64-192-384-256-256 without BatchNorm, does not fit it)"
	}
	return "", "", fmt.Errorf("%w for %s%s: torchvision's are for %s and their variants (resnet18b_fq_lq_tex1, resnet50b_ff_lf_tex1, …)",
		ErrNoPretrained, arch, why, strings.Join(have, ", "))
}

// CacheDir is where downloaded weights are kept: $TNN_HOME/checkpoints when
// TNN_HOME is set, else tnn/checkpoints in the user cache folder
// (~/.cache/tnn/checkpoints on Linux, ~/Library/Caches/tnn/checkpoints on
// macOS, %LocalAppData%\tnn\checkpoints on Windows).
func CacheDir() (string, error) {
	if h := os.Getenv("TNN_HOME"); h != "" {
		return filepath.Join(h, "checkpoints"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no user cache folder (%v); set TNN_HOME", ErrDownload, err)
	}
	return filepath.Join(d, "tnn", "checkpoints"), nil
}

// torchHubDir is where torch.hub keeps the same files, so weights a local
// PyTorch already fetched are used without a download.
func torchHubDir() string {
	if h := os.Getenv("TORCH_HOME"); h != "" {
		return filepath.Join(h, "hub", "checkpoints")
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "torch", "hub", "checkpoints")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "torch", "hub", "checkpoints")
	}
	return ""
}

var hashInName = regexp.MustCompile(`-([a-f0-9]+)\.`)

// Pretrained returns the path of torchvision's weights for arch: from
// CacheDir, or torch.hub's cache, or downloaded into CacheDir. Every file
// used is checked against the SHA-256 prefix in its name. When the download
// fails, the error says in one line which file to fetch from where and where
// to put it. progress, if not nil, receives status lines.
func Pretrained(arch string, progress io.Writer) (string, error) {
	name, url, err := PretrainedFile(arch)
	if err != nil {
		return "", err
	}
	if progress == nil {
		progress = io.Discard
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	dest := filepath.Join(dir, name)
	want := ""
	if m := hashInName.FindStringSubmatch(name); m != nil {
		want = m[1]
	}
	candidates := []string{dest}
	if hub := torchHubDir(); hub != "" {
		candidates = append(candidates, filepath.Join(hub, name))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		got, err := sha256File(p)
		if err == nil && strings.HasPrefix(got, want) {
			fmt.Fprintf(progress, "pretrained weights: %s (sha256 %s… ok)\n", p, want)
			return p, nil
		}
		fmt.Fprintf(progress, "pretrained weights: %s does not match sha256 %s…; fetching it again\n", p, want)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%w: cannot create %s (%v); set TNN_HOME to a writable folder", ErrDownload, dir, err)
	}
	if err := fetch(url, dest, want, progress); err != nil {
		return "", fmt.Errorf("%w: %s from %s (%w); download it by hand and place it at %s, or set TNN_HOME",
			ErrDownload, name, url, err, dest)
	}
	return dest, nil
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fetch downloads url to path through a temporary file that is renamed into
// place only when the transfer completed and the hash prefix matched.
func fetch(url, path, wantPrefix string, progress io.Writer) error {
	fmt.Fprintf(progress, "fetching %s\n", url)
	resp, err := httpClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		h := sha256.New()
		pr := &progressReader{r: resp.Body, total: resp.ContentLength, name: filepath.Base(path), out: progress}
		n, err := io.Copy(io.MultiWriter(w, h), pr)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); !strings.HasPrefix(got, wantPrefix) {
			return fmt.Errorf("%w: sha256 %s does not start with %s (%d bytes)", ErrChecksum, got, wantPrefix, n)
		}
		fmt.Fprintf(progress, "%s: %d bytes, sha256 %s… ok\n", path, n, wantPrefix)
		return nil
	})
}

// progressReader reports every tenth of a transfer of known length.
type progressReader struct {
	r     io.Reader
	n     int64
	total int64
	step  int64
	name  string
	out   io.Writer
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.total > 0 {
		if s := p.n * 10 / p.total; s > p.step && s < 10 {
			p.step = s
			fmt.Fprintf(p.out, "%s: %d%% (%d of %d bytes)\n", p.name, s*10, p.n, p.total)
		}
	}
	return n, err
}
