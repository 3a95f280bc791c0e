package connectivity_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
)

// lab is the lab under test (HYBRIDLAB_LAB), brought up by the first spec that needs it.
var lab *labctl.Lab

func TestConnectivity(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Connectivity suite")
}

var _ = BeforeSuite(func() {
	labels.Preflight()
	lab = labctl.NewLab(labctl.SetupBinary())
})
