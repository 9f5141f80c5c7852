package train

import "encoding/json"

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
