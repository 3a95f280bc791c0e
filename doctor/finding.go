package doctor

import (
	"sort"

	"hybridlab/topology"
)

// Severity ranks a finding.
type Severity string

// Severities, worst first.
const (
	Error Severity = "error"
	Warn  Severity = "warn"
	Info  Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warn:
		return 1
	}
	return 2
}

// Finding is one problem (or fact) the doctor reports.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Object names the host object concerned (a bridge, a chain, a node).
	Object string `json:"object"`
	// Evidence is what was seen, as a person would see it by hand.
	Evidence string `json:"evidence"`
	// Cost says what breaks.
	Cost string `json:"cost,omitempty"`
	// Fix is an exact command or lab.yaml change.
	Fix string `json:"fix,omitempty"`
}

// Check is one named rule over a plan and a host state. Run returns no
// finding when the host is fine; it never reads the host itself.
type Check struct {
	ID string
	// Faults lists the known-fault rows the check covers (B01, ...).
	Faults []string
	Run    func(plan *topology.Plan, s *HostState) []Finding
}

// Check IDs.
const (
	IDCollect        = "COLLECT"
	IDForwardDrop    = "FORWARD_DROP_BRNF"
	IDIptablesMixed  = "IPTABLES_MIXED"
	IDNFTForeignDrop = "NFT_FOREIGN_DROP"
	IDSubnetOverlap  = "SUBNET_OVERLAP"
	IDMgmtOverlap    = "MGMT_OVERLAP"
	IDIfnameTooLong  = "IFNAME_TOO_LONG"
	IDMTUMismatch    = "MTU_MISMATCH"
	IDSTPDelay       = "STP_DELAY"
	IDAccel          = "ACCEL"
	IDDNSPortTaken   = "DNS_PORT_TAKEN"
	IDIPv6Disabled   = "IPV6_DISABLED"
	IDLeftovers      = "LEFTOVERS"
	IDLeaseDrift     = "LEASE_DRIFT"
	IDEndpointDrift  = "ENDPOINT_DRIFT"
	IDBridgeChanged  = "BRIDGE_CHANGED"
	IDIPForward      = "IP_FORWARD_OFF"
	IDSegmentForward = "SEGMENT_FORWARD_DROP"
	IDSegmentSNAT    = "SEGMENT_SNAT"
)

// Checks is every check the doctor runs, in report order.
var Checks = []Check{
	{ID: IDCollect, Run: checkCollect},
	{ID: IDForwardDrop, Faults: []string{"B01", "B02", "B04"}, Run: checkForwardDrop},
	{ID: IDIptablesMixed, Run: checkIptablesMixed},
	{ID: IDNFTForeignDrop, Faults: []string{"B01", "B02"}, Run: checkNFTForeignDrop},
	{ID: IDIPForward, Run: checkIPForward},
	{ID: IDSegmentForward, Faults: []string{"B01"}, Run: checkSegmentForward},
	{ID: IDSegmentSNAT, Run: checkSegmentSNAT},
	{ID: IDSubnetOverlap, Faults: []string{"B07", "B08"}, Run: checkSubnetOverlap},
	{ID: IDMgmtOverlap, Faults: []string{"B07"}, Run: checkMgmtOverlap},
	{ID: IDIfnameTooLong, Faults: []string{"B16"}, Run: checkIfnameTooLong},
	{ID: IDMTUMismatch, Run: checkMTUMismatch},
	{ID: IDSTPDelay, Faults: []string{"B18"}, Run: checkSTPDelay},
	{ID: IDAccel, Run: checkAccel},
	{ID: IDDNSPortTaken, Run: checkDNSPortTaken},
	{ID: IDIPv6Disabled, Faults: []string{"B05"}, Run: checkIPv6Disabled},
	{ID: IDLeftovers, Faults: []string{"B08"}, Run: checkLeftovers},
	{ID: IDLeaseDrift, Faults: []string{"B14", "B15"}, Run: checkLeaseDrift},
	{ID: IDEndpointDrift, Faults: []string{"B10"}, Run: checkEndpointDrift},
	{ID: IDBridgeChanged, Faults: []string{"B11"}, Run: checkBridgeChanged},
}

// Run applies every check in Checks to s and returns the findings, worst
// severity first, in check order within a severity.
func Run(plan *topology.Plan, s *HostState) []Finding {
	var out []Finding
	for _, c := range Checks {
		out = append(out, c.Run(plan, s)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Severity.rank() < out[j].Severity.rank()
	})
	return out
}

// Worst returns the worst severity among findings, or "" when there are none.
func Worst(findings []Finding) Severity {
	var w Severity
	for _, f := range findings {
		if w == "" || f.Severity.rank() < w.rank() {
			w = f.Severity
		}
	}
	return w
}

// checkCollect turns every source Collect could not read into a finding,
// so a missing source reads as "could not check" rather than "fine".
func checkCollect(_ *topology.Plan, s *HostState) []Finding {
	var out []Finding
	for _, e := range s.Errors {
		out = append(out, Finding{
			ID:       IDCollect,
			Severity: Warn,
			Object:   e.Source,
			Evidence: "could not check: " + e.Err,
			Cost:     "the checks that need " + e.Source + " ran without it",
			Fix:      "run `go run ./setup doctor` as root with the daemon for " + e.Source + " running",
		})
	}
	return out
}
