package dnsmasq

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
)

// label is a DNS label as the lab uses it for node names.
var label = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// AddRecord gives name (a single DNS label) the address ip, as
// NAME.DOMAIN with A and PTR records, by writing one file into the hosts
// directory of stateDir. A running dnsmasq picks it up without a restart
// (inotify on hostsdir); replacing an existing record is fine. For names
// outside the plan, such as containers started after `up`.
func AddRecord(stateDir, name string, ip netip.Addr) error {
	if !label.MatchString(name) || !ip.IsValid() {
		return fmt.Errorf("%w: record %q -> %s: want a lowercase DNS label and an address",
			ErrInvalid, name, ip)
	}
	dir := filepath.Join(stateDir, HostsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create hosts dir %q: %w", dir, err)
	}
	// Written beside the directory and renamed in, so dnsmasq never reads
	// a half-written file.
	tmp := filepath.Join(stateDir, "."+name+".hosts.tmp")
	if err := os.WriteFile(tmp, []byte(ip.String()+" "+name+"\n"), 0o644); err != nil {
		return fmt.Errorf("add record %q: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("add record %q: %w", name, err)
	}
	return nil
}

// RemoveRecord deletes the record AddRecord wrote for name; dnsmasq drops
// it without a restart. A missing record is success.
func RemoveRecord(stateDir, name string) error {
	if !label.MatchString(name) {
		return fmt.Errorf("%w: record %q: not a DNS label", ErrInvalid, name)
	}
	err := os.Remove(filepath.Join(stateDir, HostsDir, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record %q: %w", name, err)
	}
	return nil
}
