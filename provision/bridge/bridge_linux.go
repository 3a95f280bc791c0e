package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ensure makes the bridge match spec and returns what it did:
//
//	ip link add NAME address MAC type bridge stp_state 0 forward_delay 0
//	ip link set NAME mtu MTU alias hybridlab:LAB
//	ip addr add GW/LEN dev NAME
//	ip link set NAME up
//
// It is idempotent. A bridge that carries this lab's tag is brought back
// to the spec (Repaired) or left alone (Unchanged). An untagged bridge
// with exactly the spec's settings is Adopted but not tagged, so Remove
// will not delete it. Any other existing link of that name is an error:
// a *MismatchError (ErrMismatch) listing each difference and its fix,
// ErrNotBridge, or ErrNotOwned for a bridge tagged by another lab.
func Ensure(spec BridgeSpec) (Result, error) {
	if err := spec.validate(); err != nil {
		return Result{}, err
	}
	st, err := Inspect(spec.Name)
	if isNotFound(err) {
		return create(spec)
	}
	if err != nil {
		return Result{}, err
	}
	switch owner := st.Lab(); owner {
	case spec.Lab:
		return repair(spec, st)
	case "":
		return adopt(spec, st)
	default:
		return Result{}, fmt.Errorf("%w: bridge %q belongs to lab %q (alias %s): "+
			"choose another bridge name in lab.yaml or take lab %q down first",
			ErrNotOwned, spec.Name, owner, st.Alias, owner)
	}
}

func (s BridgeSpec) validate() error {
	var problems []string
	if s.Name == "" || len(s.Name) > unix.IFNAMSIZ-1 {
		problems = append(problems, fmt.Sprintf("name %q must be 1-15 bytes", s.Name))
	}
	if s.Lab == "" {
		problems = append(problems, "lab name is empty")
	}
	if len(s.MAC) != 6 {
		problems = append(problems, fmt.Sprintf("mac %q is not an Ethernet address", s.MAC))
	}
	if s.MTU < 68 {
		problems = append(problems, fmt.Sprintf("mtu %d is below 68", s.MTU))
	}
	if !s.Address.IsValid() {
		problems = append(problems, "gateway address is missing")
	}
	for _, p := range s.IPv6 {
		if !p.Addr().Is6() || p.Addr().Is4In6() {
			problems = append(problems, fmt.Sprintf("%s is not an IPv6 prefix", p))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("bridge spec %q: %s", s.Name, strings.Join(problems, "; "))
	}
	return nil
}

func create(spec BridgeSpec) (Result, error) {
	if err := createBridge(spec.Name, spec.MAC); err != nil {
		return Result{}, fmt.Errorf("create bridge %q: %w", spec.Name, err)
	}
	link, err := netlink.LinkByName(spec.Name)
	if err != nil {
		return Result{}, fmt.Errorf("look up new bridge %q: %w", spec.Name, err)
	}
	if err := configure(link, spec); err != nil {
		// A half-made bridge would later be adopted as the lab's own.
		_ = netlink.LinkDel(link)
		return Result{}, err
	}
	return Result{
		Name: spec.Name, Index: link.Attrs().Index, Action: Created, Owned: true,
	}, nil
}

func configure(link netlink.Link, spec BridgeSpec) error {
	if err := netlink.LinkSetAlias(link, Tag(spec.Lab)); err != nil {
		return fmt.Errorf("tag bridge %q: %w", spec.Name, err)
	}

	if err := pinMTU(link, spec.MTU); err != nil {
		return fmt.Errorf("set mtu of bridge %q: %w", spec.Name, err)
	}

	for _, p := range spec.addresses() {
		if err := addAddr(link, p); err != nil {
			return fmt.Errorf("add address %s to bridge %q: %w", p, spec.Name, err)
		}
	}

	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set bridge %q up: %w", spec.Name, err)
	}
	return nil
}

// pinMTU sets the MTU through the bridge's change_mtu handler, which marks
// it as set by the user. Without that mark the kernel lowers or raises the
// bridge MTU to the smallest port MTU whenever a port joins; an MTU given
// at creation does not set the mark, and setting an unchanged MTU does not
// reach the handler, so an MTU equal to the current one is nudged first.
func pinMTU(link netlink.Link, mtu int) error {
	if link.Attrs().MTU == mtu {
		if err := netlink.LinkSetMTU(link, mtu-1); err != nil {
			return err
		}
	}
	return netlink.LinkSetMTU(link, mtu)
}

// addAddr is `ip addr add P dev BR` (nodad for IPv6); an address already
// present is fine.
func addAddr(link netlink.Link, p netip.Prefix) error {
	a := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	err := netlink.AddrAdd(link, a)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

func adopt(spec BridgeSpec, st Status) (Result, error) {
	if d := diff(spec, st); len(d) > 0 {
		return Result{}, &MismatchError{Name: spec.Name, Diffs: d}
	}
	r := Result{Name: spec.Name, Index: st.Index, Action: Adopted}
	if st.AdminUp {
		return r, nil
	}
	if err := netlink.LinkSetUp(linkRef(st)); err != nil {
		return Result{}, fmt.Errorf("set bridge %q up: %w", spec.Name, err)
	}
	r.Changes = []string{"set it up"}
	return r, nil
}

// repair brings the lab's own bridge back to the spec: Docker or a user
// may have changed it since it was created (fault B11).
func repair(spec BridgeSpec, st Status) (Result, error) {
	link := linkRef(st)
	r := Result{Name: spec.Name, Index: st.Index, Action: Unchanged, Owned: true}
	for _, d := range diff(spec, st) {
		if err := applyFix(link, spec, d); err != nil {
			return Result{}, fmt.Errorf("repair %s of bridge %q: %w", d.Field, spec.Name, err)
		}
		r.Changes = append(r.Changes, fmt.Sprintf("%s %s -> %s", d.Field, d.Have, d.Want))
	}
	if !st.AdminUp {
		if err := netlink.LinkSetUp(link); err != nil {
			return Result{}, fmt.Errorf("set bridge %q up: %w", spec.Name, err)
		}
		r.Changes = append(r.Changes, "set it up")
	}
	if len(r.Changes) > 0 {
		r.Action = Repaired
	}
	return r, nil
}

func applyFix(link netlink.Link, spec BridgeSpec, d Difference) error {
	switch d.Field {
	case "mtu":
		return pinMTU(link, spec.MTU)
	case "mac":
		return netlink.LinkSetHardwareAddr(link, spec.MAC)
	case "stp", "forward_delay":
		return setBridgeTimers(link.Attrs().Index)
	}
	for _, p := range d.drop {
		err := netlink.AddrDel(link, &netlink.Addr{IPNet: prefixToIPNet(p)})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove address %s: %w", p, err)
		}
	}
	if d.add.IsValid() {
		return addAddr(link, d.add)
	}
	return nil
}

// Remove deletes the bridge if it carries lab's tag (`ip link del NAME`).
// A missing bridge is success. An untagged bridge, or one tagged by
// another lab, is left alone and ErrNotOwned returned: use ForceRemove.
func Remove(name, lab string) error {
	st, err := Inspect(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove bridge %q: %w", name, err)
	}
	if owner := st.Lab(); owner != lab {
		return notOwnedError(name, lab, owner)
	}
	return deleteLink(st)
}

func notOwnedError(name, lab, owner string) error {
	if owner == "" {
		return fmt.Errorf("%w: bridge %q has no %s tag, so hybridlab did not create it; "+
			"leaving it (delete it with ip link del %s)", ErrNotOwned, name, Tag(lab), name)
	}
	return fmt.Errorf("%w: bridge %q belongs to lab %q, not %q; leaving it",
		ErrNotOwned, name, owner, lab)
}

// ForceRemove deletes the bridge called name whoever made it
// (`ip link del NAME`). A missing bridge is success; a link that is not a
// bridge is an error and stays.
func ForceRemove(name string) error {
	st, err := Inspect(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove bridge %q: %w", name, err)
	}
	return deleteLink(st)
}

func deleteLink(st Status) error {
	err := netlink.LinkDel(linkRef(st))
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("remove bridge %q: %w", st.Name, err)
	}
	return nil
}

// Inspect reports the bridge's state, addresses and ports (`ip -d addr
// show NAME`, `bridge link`). A missing bridge gives an error matching
// netlink.LinkNotFoundError; a link of another kind, ErrNotBridge.
func Inspect(name string) (Status, error) {
	l, err := getLink(name)
	if err != nil {
		return Status{}, fmt.Errorf("inspect bridge %q: %w", name, err)
	}
	if l.Kind != "bridge" {
		return Status{}, notBridgeError(name, l.Kind)
	}
	st := Status{
		Name: l.Name, Index: l.Index, Alias: l.Alias, AdminUp: l.AdminUp,
		OperState: l.OperState, MTU: l.MTU, MAC: l.MAC.String(), STP: l.STP,
		ForwardDelay: l.ForwardDelay, NFCallIPTables: l.NFCall4, NFCallIP6Tables: l.NFCall6,
	}
	if st.Addresses, err = addresses(linkRef(st)); err != nil {
		return Status{}, fmt.Errorf("inspect bridge %q: %w", name, err)
	}
	if st.Ports, err = ports(l); err != nil {
		return Status{}, fmt.Errorf("inspect bridge %q: %w", name, err)
	}
	return st, nil
}

// TakeSnapshot returns the comparable state of the bridge, for checking
// that another tool (Docker) left it alone.
func TakeSnapshot(name string) (Snapshot, error) {
	st, err := Inspect(name)
	if err != nil {
		return Snapshot{}, err
	}
	return st.Snapshot(), nil
}

func addresses(link netlink.Link) ([]netip.Prefix, error) {
	list, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range list {
		p, ok := ipNetToPrefix(a.IPNet)
		if ok && !p.Addr().IsLinkLocalUnicast() {
			out = append(out, p)
		}
	}
	return out, nil
}

func ports(br rawLink) ([]Port, error) {
	all, err := listLinks()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []Port
	for _, l := range all {
		if l.Master != br.Index {
			continue
		}
		out = append(out, Port{
			Name: l.Name, Index: l.Index, Master: br.Name, MTU: l.MTU,
			Kind: l.Kind, State: l.PortState, Owner: guessOwner(l.Name, l.Kind),
		})
	}
	return out, nil
}

// guessOwner names what usually sits behind a port of that kind: Docker
// attaches containers with veth pairs, libvirt attaches VMs with taps
// called vnetN.
func guessOwner(name, kind string) string {
	switch {
	case kind == "veth":
		return "container"
	case kind == "tun", strings.HasPrefix(name, "vnet"), strings.HasPrefix(name, "tap"):
		return "vm"
	}
	return ""
}

// WaitPortsForwarding polls until every port of the bridge is in the
// forwarding state (fault B18: a port in listening or learning drops
// frames). A bridge without ports is ready at once.
func WaitPortsForwarding(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := Inspect(name)
		if err != nil {
			return fmt.Errorf("wait for ports of bridge %q: %w", name, err)
		}
		waiting := notForwarding(st.Ports)
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ports of bridge %q not forwarding after %s: %s",
				name, timeout, strings.Join(waiting, ", "))
		}
		time.Sleep(pollInterval)
	}
}

const pollInterval = 20 * time.Millisecond

func notForwarding(ps []Port) []string {
	var out []string
	for _, p := range ps {
		if p.State != PortForwarding {
			out = append(out, p.Name+" "+p.State.String())
		}
	}
	return out
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.Is(err, ErrNotFound) || errors.As(err, &nf)
}

func linkRef(st Status) netlink.Link {
	return &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Index: st.Index, Name: st.Name}}
}

// Tagged returns every bridge that carries a hybridlab tag, whatever the
// lab (`ip -d link show type bridge` filtered on the alias), so a sweeper
// can find leftovers. Status.Lab names each owner.
func Tagged() ([]Status, error) {
	links, err := listLinks()
	if err != nil {
		return nil, fmt.Errorf("list bridges: %w", err)
	}
	var out []Status
	for _, l := range links {
		if l.Kind != "bridge" || !strings.HasPrefix(l.Alias, TagPrefix) {
			continue
		}
		st, err := Inspect(l.Name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Check reports, without changing anything, whether Ensure(spec) would
// succeed: nil when the bridge is missing, is this lab's own (Ensure
// repairs it), or exists untagged with exactly the spec's settings; else
// the error Ensure would return. `up` calls it before its first host
// change so a clashing bridge leaves nothing half-made.
func Check(spec BridgeSpec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	st, err := Inspect(spec.Name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	switch owner := st.Lab(); owner {
	case spec.Lab:
		return nil
	case "":
		if d := diff(spec, st); len(d) > 0 {
			return &MismatchError{Name: spec.Name, Diffs: d}
		}
		return nil
	default:
		return fmt.Errorf("%w: bridge %q belongs to lab %q (alias %s): "+
			"choose another bridge name in lab.yaml or take lab %q down first",
			ErrNotOwned, spec.Name, owner, st.Alias, owner)
	}
}

// IsNotFound reports whether err says the bridge does not exist.
func IsNotFound(err error) bool { return isNotFound(err) }
