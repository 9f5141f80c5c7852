//go:build xla

package main

import (
	"github.com/tnn-go/tnn/models"
	"github.com/tnn-go/tnn/optim"
	"github.com/tnn-go/tnn/train"
	"github.com/tnn-go/tnn/xla"
)

// With the xla tag, --device cuda and xla:NAME train through GoMLX/XLA.
func init() {
	train.OpenDevice = func(name string, net *models.Net, opt optim.Optimizer) (train.Device, error) {
		return xla.NewTrainer(name, net, opt)
	}
}
