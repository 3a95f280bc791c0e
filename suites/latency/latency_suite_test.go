package latency_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
)

var lab *labctl.Lab

func TestLatency(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Latency suite")
}

var _ = BeforeSuite(func() {
	labels.Preflight()
	lab = labctl.NewLab(labctl.SetupBinary())
})
