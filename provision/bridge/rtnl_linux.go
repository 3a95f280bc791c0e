package bridge

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// rawLink is what one RTM_NEWLINK message says about a link, including
// the bridge and bridge-port attributes vishvananda/netlink does not
// decode (STP state, forward delay, nf_call_*, port state).
type rawLink struct {
	Index     int
	Name      string
	Alias     string
	Master    int
	MTU       int
	MAC       net.HardwareAddr
	AdminUp   bool
	OperState string
	Kind      string

	// Bridge attributes (Kind == "bridge").
	STP          bool
	ForwardDelay time.Duration
	NFCall4      bool
	NFCall6      bool

	// Port attributes (enslaved to a bridge).
	PortState PortState
}

// userHZ is the clock_t rate the kernel uses for bridge timers in netlink.
const userHZ = 100

// getLink returns the link called name; an error matching
// ErrNotFound when there is none.
func getLink(name string) (rawLink, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if errors.Is(err, unix.ENODEV) {
		return rawLink{}, fmt.Errorf("link %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return rawLink{}, err
	}
	if len(msgs) != 1 {
		return rawLink{}, fmt.Errorf("link %q: %d replies", name, len(msgs))
	}
	return parseLink(msgs[0])
}

// listLinks returns every link of the namespace (`ip -d link show`).
func listLinks() ([]rawLink, error) {
	var msgs [][]byte
	var err error
	for range 5 {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]rawLink, 0, len(msgs))
	for _, m := range msgs {
		l, err := parseLink(m)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func parseLink(m []byte) (rawLink, error) {
	if len(m) < unix.SizeofIfInfomsg {
		return rawLink{}, fmt.Errorf("short link message (%d bytes)", len(m))
	}
	info := nl.DeserializeIfInfomsg(m)
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return rawLink{}, fmt.Errorf("parse link attributes: %w", err)
	}
	l := rawLink{Index: int(info.Index), AdminUp: info.Flags&unix.IFF_UP != 0}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			l.Name = cString(a.Value)
		case unix.IFLA_IFALIAS:
			l.Alias = cString(a.Value)
		case unix.IFLA_MASTER:
			l.Master = int(native32(a.Value))
		case unix.IFLA_MTU:
			l.MTU = int(native32(a.Value))
		case unix.IFLA_ADDRESS:
			l.MAC = net.HardwareAddr(append([]byte(nil), a.Value...))
		case unix.IFLA_OPERSTATE:
			l.OperState = netlink.LinkOperState(a.Value[0]).String()
		case unix.IFLA_LINKINFO:
			if err := l.parseLinkInfo(a.Value); err != nil {
				return rawLink{}, fmt.Errorf("link %q: %w", l.Name, err)
			}
		}
	}
	return l, nil
}

func (l *rawLink) parseLinkInfo(b []byte) error {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return fmt.Errorf("parse link info: %w", err)
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case nl.IFLA_INFO_KIND:
			l.Kind = cString(a.Value)
		case nl.IFLA_INFO_DATA:
			if l.Kind == "bridge" {
				err = l.parseBridgeData(a.Value)
			}
		case nl.IFLA_INFO_SLAVE_DATA:
			err = l.parsePortData(a.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *rawLink) parseBridgeData(b []byte) error {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return fmt.Errorf("parse bridge data: %w", err)
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case nl.IFLA_BR_STP_STATE:
			l.STP = native32(a.Value) != 0
		case nl.IFLA_BR_FORWARD_DELAY:
			l.ForwardDelay = time.Duration(native32(a.Value)) * time.Second / userHZ
		case nl.IFLA_BR_NF_CALL_IPTABLES:
			l.NFCall4 = a.Value[0] != 0
		case nl.IFLA_BR_NF_CALL_IP6TABLES:
			l.NFCall6 = a.Value[0] != 0
		}
	}
	return nil
}

func (l *rawLink) parsePortData(b []byte) error {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return fmt.Errorf("parse port data: %w", err)
	}
	for _, a := range attrs {
		if a.Attr.Type == nl.IFLA_BRPORT_STATE {
			l.PortState = PortState(a.Value[0])
		}
	}
	return nil
}

// createBridge makes the bridge with its MAC, STP off and forward delay 0
// in one message: `ip link add NAME address MAC type bridge stp_state 0
// forward_delay 0`.
func createBridge(name string, mac net.HardwareAddr) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK,
		unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(mac)))
	req.AddData(bridgeLinkInfo(false, 0))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// setBridgeTimers turns STP off and then sets the forward delay to 0:
// `ip link set NAME type bridge stp_state 0` then `… forward_delay 0`.
// Two messages, because the kernel bounds the delay while STP is on.
func setBridgeTimers(index int) error {
	for _, data := range []*nl.RtAttr{bridgeLinkInfo(false, -1), bridgeLinkInfo(false, 0)} {
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(index)
		req.AddData(msg)
		req.AddData(data)
		if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
			return err
		}
	}
	return nil
}

// bridgeLinkInfo builds IFLA_LINKINFO for a bridge; a negative delay
// leaves the forward delay out.
func bridgeLinkInfo(stp bool, delay int) *nl.RtAttr {
	li := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	li.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := li.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	var s uint32
	if stp {
		s = 1
	}
	data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(s))
	if delay >= 0 {
		data.AddRtAttr(nl.IFLA_BR_FORWARD_DELAY, nl.Uint32Attr(uint32(delay)))
	}
	return li
}

func native32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return nl.NativeEndian().Uint32(b[:4])
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
