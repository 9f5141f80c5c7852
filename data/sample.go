package data

import (
	"bytes"
	"embed"
	"fmt"
)

//go:generate go run ./internal/mksample -src /usr/share/datasets/fashion-mnist -out sample

// sampleFS holds the first 6000 training and 1000 test records of
// Fashion-MNIST (MIT licence, see sample/LICENSE), so the CLI can train and
// the tests can run on real images without any download.
//
//go:embed sample/*.gz
var sampleFS embed.FS

const (
	sampleTrain = 6000
	sampleTest  = 1000
)

func loadSample(spec DatasetSpec, train bool) (*Dataset, error) {
	prefix := "sample/t10k"
	if train {
		prefix = "sample/train"
	}
	img, lbl := prefix+"-images-idx3-ubyte.gz", prefix+"-labels-idx1-ubyte.gz"
	var dims [2][]int
	var payload [2][]uint8
	for i, p := range []string{img, lbl} {
		b, err := sampleFS.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: embedded %s: %v", ErrNotFound, p, err)
		}
		if dims[i], payload[i], err = decodeIDX(bytes.NewReader(b), int64(len(b)), "embedded "+p); err != nil {
			return nil, err
		}
	}
	return idxDataset(spec, "embedded "+img, dims[0], payload[0], "embedded "+lbl, dims[1], payload[1])
}
