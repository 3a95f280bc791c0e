package provision_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
)

// setupBin is the setup binary under test, built once for the suite.
var setupBin string

func TestProvision(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Provisioner suite")
}

var _ = BeforeSuite(func() {
	labels.Preflight()
	setupBin = labctl.SetupBinary()
})
