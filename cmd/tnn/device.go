package main

// deviceHelp documents --device for train, eval and bench. Builds with the
// xla tag register the devices (device_xla.go); others reject all but cpu.
const deviceHelp = "where steps run: cpu (the pure-Go engine), cuda (XLA on an NVIDIA GPU), xla:NAME (another PJRT plugin, e.g. xla:cpu); " +
	"cuda and xla:NAME need a tnn built with 'go build -tags xla' and the PJRT plugin (see scripts/gpu_check.sh)"
