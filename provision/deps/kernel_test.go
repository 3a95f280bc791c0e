package deps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSysctls(t *testing.T, values map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, v := range values {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadKernelFacts(t *testing.T) {
	root := writeSysctls(t, map[string]string{
		"net/ipv4/ip_forward":                   "1",
		"net/bridge/bridge-nf-call-iptables":    "1",
		"net/bridge/bridge-nf-call-ip6tables":   "0",
		"net/ipv6/conf/all/disable_ipv6":        "0",
		"net/ipv6/conf/all/forwarding":          "0",
		"net/bridge/bridge-nf-call-arptables":   "0",
		"net/ipv4/conf/all/accept_source_route": "0",
	})
	k, err := readKernelFacts(root)
	if err != nil {
		t.Fatal(err)
	}
	want := KernelFacts{BrNetfilter: true, NFCallIPTables: true, IPForward: true, IPv6: true}
	if k != want {
		t.Errorf("facts = %+v, want %+v", k, want)
	}
	notes := strings.Join(k.Notes(), "\n")
	if !strings.Contains(notes, "bridge-nf-call-iptables=1") || strings.Contains(notes,
		"ip6tables=1") {
		t.Errorf("notes:\n%s", notes)
	}
}

func TestKernelFactsWithoutBrNetfilterOrIPv6(t *testing.T) {
	root := writeSysctls(t, map[string]string{"net/ipv4/ip_forward": "0"})
	k, err := readKernelFacts(root)
	if err != nil {
		t.Fatal(err)
	}
	if k != (KernelFacts{}) {
		t.Errorf("facts = %+v, want all false", k)
	}
	notes := strings.Join(k.Notes(), "\n")
	for _, want := range []string{"br_netfilter is absent", "ip_forward=0", "fault B05"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

func TestReadKernelFactsOfThisHost(t *testing.T) {
	k, err := ReadKernelFacts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this host: %+v", k)
	if _, err := os.Stat("/proc/sys/net/bridge"); err == nil && !k.BrNetfilter {
		t.Error("net.bridge exists but BrNetfilter is false")
	}
}
