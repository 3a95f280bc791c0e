package dnsmasq

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Lease is one line of dnsmasq's lease file.
type Lease struct {
	// Expiry is zero for an infinite lease.
	Expiry   time.Time
	MAC      string
	IP       netip.Addr
	Hostname string
	ClientID string
}

// Leases reads the lease file of stateDir ("EXPIRY MAC IP HOSTNAME
// CLIENTID" per line, "*" for an unknown field). A missing file means no
// leases. IPv6 lines (after "duid") are skipped.
func Leases(stateDir string) ([]Lease, error) {
	path := filepath.Join(stateDir, LeaseFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read leases %q: %w", path, err)
	}
	leases, err := ParseLeases(data)
	if err != nil {
		return nil, fmt.Errorf("read leases %q: %w", path, err)
	}
	return leases, nil
}

// ParseLeases parses the content of a dnsmasq lease file.
func ParseLeases(data []byte) ([]Lease, error) {
	var out []Lease
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "duid" {
			break
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("line %d: want at least 4 fields, got %d", line, len(f))
		}
		l, err := parseLease(f)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

func parseLease(f []string) (Lease, error) {
	exp, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return Lease{}, fmt.Errorf("expiry %q: %w", f[0], err)
	}
	ip, err := netip.ParseAddr(f[2])
	if err != nil {
		return Lease{}, fmt.Errorf("address %q: %w", f[2], err)
	}
	l := Lease{MAC: strings.ToLower(f[1]), IP: ip, Hostname: star(f[3])}
	if exp != 0 {
		l.Expiry = time.Unix(exp, 0).UTC()
	}
	if len(f) > 4 {
		l.ClientID = star(f[4])
	}
	return l, nil
}

func star(s string) string {
	if s == "*" {
		return ""
	}
	return s
}
