package containers

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// BridgeState is what the lab relies on in a bridge: the fields Docker
// might reset when it adopts a bridge it did not create.
type BridgeState struct {
	Name  string
	Index int
	MAC   string
	MTU   int
	Up    bool
	// Addrs are the IPv4 addresses in CIDR form, sorted.
	Addrs []string
	// STP is the value of /sys/class/net/NAME/bridge/stp_state.
	STP string
}

// SnapshotBridge reads the state of the bridge name in the current netns
// (`ip -d link show NAME`, `ip -4 addr show NAME`).
func SnapshotBridge(name string) (BridgeState, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return BridgeState{}, fmt.Errorf("read bridge %q: %w", name, err)
	}
	if link.Type() != "bridge" {
		return BridgeState{}, fmt.Errorf("read bridge %q: is a %s, not a bridge", name, link.Type())
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return BridgeState{}, fmt.Errorf("read addresses of %q: %w", name, err)
	}
	a := link.Attrs()
	st := BridgeState{Name: name, Index: a.Index, MAC: a.HardwareAddr.String(), MTU: a.MTU,
		Up: a.Flags&net.FlagUp != 0}
	for _, ad := range addrs {
		st.Addrs = append(st.Addrs, ad.IPNet.String())
	}
	slices.Sort(st.Addrs)
	stp, err := os.ReadFile(filepath.Join("/sys/class/net", name, "bridge/stp_state"))
	if err != nil {
		return BridgeState{}, fmt.Errorf("read stp state of %q: %w", name, err)
	}
	st.STP = strings.TrimSpace(string(stp))
	return st, nil
}

// Changes lists, one line per field, how after differs from b; empty when
// they are equal.
func (b BridgeState) Changes(after BridgeState) []string {
	var out []string
	add := func(field string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			out = append(out, fmt.Sprintf("%s: %v -> %v", field, x, y))
		}
	}
	add("ifindex", b.Index, after.Index)
	add("mac", b.MAC, after.MAC)
	add("mtu", b.MTU, after.MTU)
	add("up", b.Up, after.Up)
	add("addresses", b.Addrs, after.Addrs)
	add("stp_state", b.STP, after.STP)
	return out
}
