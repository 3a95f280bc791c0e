package bench

import "strings"

// RoutedSuffix ends the name of a path that crosses the host's routing between two lab
// segments (bridge to bridge). The path of the same name without it, when measured in the
// same run, is the same kind of pair on one shared bridge.
const RoutedSuffix = "-routed"

// Routing compares one routed path with its shared-bridge counterpart for one protocol and
// size: what bridge-to-bridge routing costs over switching inside one bridge.
type Routing struct {
	Routed   string  `json:"routed"`
	Shared   string  `json:"shared"`
	Proto    string  `json:"proto"`
	Size     int     `json:"size"`
	RoutedUs float64 `json:"routed_p50_us"`
	SharedUs float64 `json:"shared_p50_us"`
	// P50Ratio and P99Ratio divide the routed path's merged percentiles by the shared
	// path's; AddedUs is the p50 difference.
	P50Ratio float64 `json:"p50_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
	AddedUs  float64 `json:"added_p50_us"`
	// Noisy is set when either row's ratios were flagged by the noise gate.
	Noisy bool `json:"noisy"`
}

// routingCosts pairs every routed latency row with the shared-bridge row of the same
// protocol and size, in row order.
func routingCosts(rows []Latency) []Routing {
	var out []Routing
	for _, r := range rows {
		shared, ok := strings.CutSuffix(r.Path, RoutedSuffix)
		if !ok {
			continue
		}
		s := findRow(rows, shared, r.Proto, r.Size)
		if s == nil {
			continue
		}
		out = append(out, Routing{
			Routed: r.Path, Shared: s.Path, Proto: r.Proto, Size: r.Size,
			RoutedUs: r.Merged.P50Us, SharedUs: s.Merged.P50Us,
			P50Ratio: ratio(r.Merged.P50Us, s.Merged.P50Us),
			P99Ratio: ratio(r.Merged.P99Us, s.Merged.P99Us),
			AddedUs:  r.Merged.P50Us - s.Merged.P50Us,
			Noisy:    r.Noisy || s.Noisy,
		})
	}
	return out
}
