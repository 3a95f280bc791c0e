package vagrant

import (
	"net/netip"
	"os"
	"testing"
)

func TestParseLabAddr(t *testing.T) {
	data, err := os.ReadFile("testdata/ip-link-addr.txt")
	if err != nil {
		t.Fatal(err)
	}
	ipOutput := string(data)
	got, err := parseLabAddr(ipOutput, "52:54:0A:00:02:0A")
	if err != nil || got != netip.MustParseAddr("10.0.2.10") {
		t.Errorf("lab NIC address = %v, %v; want 10.0.2.10", got, err)
	}
	if _, err := parseLabAddr(ipOutput, "52:54:0a:00:02:99"); err == nil {
		t.Error("unknown MAC: no error")
	}
	noAddr := ipOutput[:len(ipOutput)-160]
	if got, err := parseLabAddr(noAddr, "52:54:0a:00:02:0a"); err != nil || got.IsValid() {
		t.Errorf("NIC without address = %v, %v; want invalid addr, nil", got, err)
	}
}
