package vagrant

import (
	"net/netip"
	"testing"
)

const ipOutput = `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: ens5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP mode DEFAULT group default qlen 1000\    link/ether 52:54:00:3a:11:02 brd ff:ff:ff:ff:ff:ff\    altname enp0s5
3: ens6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP mode DEFAULT group default qlen 1000\    link/ether 52:54:0a:00:02:0a brd ff:ff:ff:ff:ff:ff\    altname enp0s6
--
1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: ens5    inet 10.0.8.23/24 metric 1024 brd 10.0.8.255 scope global dynamic ens5\       valid_lft 3577sec preferred_lft 3577sec
3: ens6    inet 10.0.2.10/24 metric 1024 brd 10.0.2.255 scope global dynamic ens6\       valid_lft 3577sec preferred_lft 3577sec
`

func TestParseLabAddr(t *testing.T) {
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
