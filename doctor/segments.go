package doctor

import (
	"net/netip"
	"slices"
	"strings"

	"hybridlab/topology"
)

// perSegment runs fn once per segment of the lab on the plan as seen from
// that segment (topology.Plan.View) and returns every finding. When the lab
// is routed, each finding's object names its segment, so two segments'
// findings of one check tell apart.
func perSegment(plan *topology.Plan, fn func(view *topology.Plan) []Finding) []Finding {
	var out []Finding
	for _, seg := range plan.AllSegments() {
		for _, f := range fn(plan.View(seg.Name)) {
			if plan.Routed() {
				f.Object += " (segment " + seg.Name + ")"
			}
			out = append(out, f)
		}
	}
	return out
}

// isLabBridge reports whether name is the bridge of one of the lab's
// segments.
func isLabBridge(plan *topology.Plan, name string) bool {
	return slices.Contains(plan.Bridges(), name)
}

// isLabNetwork reports whether name is the Docker network of one of the
// lab's segments.
func isLabNetwork(plan *topology.Plan, name string) bool {
	for _, s := range plan.AllSegments() {
		if s.Docker.Network == name {
			return true
		}
	}
	return false
}

// inLabSubnets reports whether a is in the subnet of one of the lab's
// segments.
func inLabSubnets(plan *topology.Plan, a netip.Addr) bool {
	_, ok := plan.SegmentContaining(a)
	return ok
}

// overlapsLab reports whether p overlaps the subnet of one of the lab's
// segments.
func overlapsLab(plan *topology.Plan, p netip.Prefix) bool {
	for _, s := range plan.Subnets() {
		if s.Overlaps(p) {
			return true
		}
	}
	return false
}

// bridgeList joins the lab's bridge names for a sentence: "br0" or
// "br0, br1".
func bridgeList(plan *topology.Plan) string { return strings.Join(plan.Bridges(), ", ") }

// gatewayList joins the lab's gateway addresses for a sentence.
func gatewayList(plan *topology.Plan) string {
	var gws []string
	for _, g := range plan.Gateways() {
		gws = append(gws, g.String())
	}
	return strings.Join(gws, ", ")
}

// segmentField names where lab.yaml sets a field of segment seg: at the top
// level for the main segment, under `segments:` for the others.
func segmentField(seg, field string) string {
	if seg == "" || seg == topology.MainSegment {
		return "`" + field + "` in lab.yaml"
	}
	return "`" + field + "` of segment " + seg + " (under `segments:`) in lab.yaml"
}

// segmentPair is an ordered pair of distinct lab segments: traffic from
// From's subnet routed by the host onto To's bridge.
type segmentPair struct {
	From, To topology.SegmentPlan
}

// segmentPairs returns every ordered pair of distinct segments, in plan
// order: none for a lab of one segment.
func segmentPairs(plan *topology.Plan) []segmentPair {
	var out []segmentPair
	segs := plan.AllSegments()
	for _, a := range segs {
		for _, b := range segs {
			if a.Name != b.Name {
				out = append(out, segmentPair{From: a, To: b})
			}
		}
	}
	return out
}
