package policy_test

import (
	"testing"

	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"hybridlab/probes/remote"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
)

var (
	// setupBin is the setup binary under test, built once for the suite.
	setupBin string
	// agentBin is the probe agent the host's endpoint runs, built by the first lab context.
	agentBin string
	// docker execs the agent in the lab's containers.
	docker *client.Client
)

func TestPolicy(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Policy suite")
}

var _ = BeforeSuite(func() {
	labels.Preflight()
	setupBin = labctl.SetupBinary()
	var err error
	docker, err = remote.NewDockerClient()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(docker.Close)
})
