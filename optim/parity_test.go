package optim

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/tnn-go/tnn/nn"
)

// fixture is testdata/torch_parity.json, written by make_fixtures.py.
type fixture struct {
	TorchVersion string                 `json:"torch_version"`
	CPU          string                 `json:"cpu_capability"`
	Shapes       map[string][]int       `json:"shapes"`
	Init         map[string][]float32   `json:"init"`
	Grads        []map[string][]float32 `json:"grads"`
	Cases        []struct {
		Name  string                 `json:"name"`
		Kind  string                 `json:"kind"`
		Hyper map[string]any         `json:"hyper"`
		After []map[string][]float32 `json:"after"`
	} `json:"cases"`
}

func loadFixture(t *testing.T) *fixture {
	t.Helper()
	raw, err := os.ReadFile("testdata/torch_parity.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// fixtureHyper maps torch's keyword arguments onto Hyper.
func fixtureHyper(t *testing.T, kw map[string]any) Hyper {
	t.Helper()
	var h Hyper
	for k, v := range kw {
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case bool:
			if k != "nesterov" {
				t.Fatalf("bool %s", k)
			}
			h.Nesterov = x
			continue
		default:
			t.Fatalf("hyper %s=%v", k, v)
		}
		switch k {
		case "lr":
			h.LR = f
		case "momentum":
			h.Momentum = f
		case "weight_decay":
			h.WeightDecay = f
		case "beta1":
			h.Beta1 = f
		case "beta2":
			h.Beta2 = f
		case "eps":
			h.Eps = f
		default:
			t.Fatalf("unknown hyper %s", k)
		}
	}
	return h
}

func sortedNames(m map[string][]int) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// runFixture replays one case and calls check after every step on every
// parameter and buffer the fixture records; the optimizer's State must name
// exactly the buffers torch's state holds.
func runFixture(t *testing.T, f *fixture, ci int, check func(step int, name string, got, want []float32)) {
	t.Helper()
	c := f.Cases[ci]
	names := sortedNames(f.Shapes)
	params := make([]*nn.Param, len(names))
	for i, n := range names {
		params[i] = nn.NewParam(n, f.Shapes[n]...)
		copy(params[i].Data.Data, f.Init[n])
	}
	opt, err := New(c.Kind, params, fixtureHyper(t, c.Hyper))
	if err != nil {
		t.Fatal(err)
	}
	for k, gs := range f.Grads {
		for i, n := range names {
			copy(params[i].Grad.Data, gs[n])
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		got := map[string][]float32{}
		for i, n := range names {
			got[n] = params[i].Data.Data
		}
		named, _ := opt.State()
		for _, nt := range named {
			got[nt.Name] = nt.T.Data
		}
		if len(got) != len(c.After[k]) {
			t.Errorf("step %d: tnn has %d tensors, torch %d", k+1, len(got), len(c.After[k]))
		}
		for _, n := range slices.Sorted(maps.Keys(c.After[k])) {
			g, ok := got[n]
			if !ok {
				t.Errorf("step %d: no %s in tnn", k+1, n)
				continue
			}
			check(k, n, g, c.After[k][n])
		}
	}
}

// TestTorchParity replays torch.optim.SGD and Adam from the fixture. The
// tolerance is the contract; the bit-exact count is logged because it is what
// resuming and cross-checking against PyTorch rely on in practice.
func TestTorchParity(t *testing.T) {
	f := loadFixture(t)
	if len(f.Cases) == 0 || len(f.Grads) == 0 {
		t.Fatal("empty fixture")
	}
	for ci, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var total, exact int
			runFixture(t, f, ci, func(step int, name string, got, want []float32) {
				if len(got) != len(want) {
					t.Fatalf("step %d %s: %d values, fixture has %d", step+1, name, len(got), len(want))
				}
				for i := range got {
					total++
					if got[i] == want[i] {
						exact++
						continue
					}
					tol := 1e-6 * math.Max(math.Abs(float64(want[i])), 1e-6)
					if d := math.Abs(float64(got[i] - want[i])); d > tol {
						t.Errorf("step %d %s[%d] = %.9g, torch %.9g", step+1, name, i, got[i], want[i])
					}
				}
			})
			t.Logf("%d/%d values bit-identical to torch %s (%s)", exact, total, f.TorchVersion, f.CPU)
		})
	}
}
