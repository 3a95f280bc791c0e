package probes

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// testZone is what the in-test DNS server knows; other names get NXDOMAIN.
var testZone = map[dnsmessage.Type]map[string]string{
	dnsmessage.TypeA:    {"web.lab.": "10.88.0.10"},
	dnsmessage.TypeAAAA: {"web.lab.": "fd00:88::10"},
	dnsmessage.TypePTR:  {"10.0.88.10.in-addr.arpa.": "web.lab."},
}

// startDNS serves testZone over UDP on 127.0.0.1. Before answering it sends a reply with a
// wrong ID, which the client must ignore.
func startDNS(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var msg dnsmessage.Message
			if err := msg.Unpack(buf[:n]); err != nil || len(msg.Questions) != 1 {
				continue
			}
			if stale, err := answer(msg, msg.Header.ID+1); err == nil {
				_, _ = c.WriteToUDPAddrPort(stale, from)
			}
			if reply, err := answer(msg, msg.Header.ID); err == nil {
				_, _ = c.WriteToUDPAddrPort(reply, from)
			}
		}
	}()
	return c.LocalAddr().String()
}

func answer(q dnsmessage.Message, id uint16) ([]byte, error) {
	question := q.Questions[0]
	reply := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, Response: true, Authoritative: true},
		Questions: q.Questions,
	}
	data, ok := testZone[question.Type][strings.ToLower(question.Name.String())]
	if !ok {
		reply.Header.RCode = dnsmessage.RCodeNameError
		return reply.Pack()
	}
	h := dnsmessage.ResourceHeader{Name: question.Name, Type: question.Type,
		Class: dnsmessage.ClassINET, TTL: 60}
	var body dnsmessage.ResourceBody
	switch question.Type {
	case dnsmessage.TypeA:
		body = &dnsmessage.AResource{A: netip.MustParseAddr(data).As4()}
	case dnsmessage.TypeAAAA:
		body = &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(data).As16()}
	case dnsmessage.TypePTR:
		body = &dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(data)}
	}
	reply.Answers = []dnsmessage.Resource{{Header: h, Body: body}}
	return reply.Pack()
}

func TestQueryDNS(t *testing.T) {
	server := startDNS(t)
	for _, tc := range []struct {
		name, typ, rcode, data string
	}{
		{"web.lab", "A", "NOERROR", "10.88.0.10"},
		{"web.lab.", "AAAA", "NOERROR", "fd00:88::10"},
		{"10.88.0.10", "PTR", "NOERROR", "web.lab."},
		{"nope.lab", "A", "NXDOMAIN", ""},
	} {
		res, err := QueryDNS(testContext(t), DNSConfig{Server: server, Name: tc.name,
			Type: tc.typ})
		if err != nil || !res.OK || res.Rcode != tc.rcode || !res.Authoritative {
			t.Fatalf("%s %s: %+v, %v", tc.typ, tc.name, res, err)
		}
		if tc.data == "" {
			if len(res.Answers) != 0 {
				t.Fatalf("%s %s: answers %+v, want none", tc.typ, tc.name, res.Answers)
			}
			continue
		}
		if len(res.Answers) != 1 || res.Answers[0].Data != tc.data ||
			res.Answers[0].Type != tc.typ || res.Answers[0].TTL != 60 {
			t.Fatalf("%s %s: answers %+v, want %s", tc.typ, tc.name, res.Answers, tc.data)
		}
	}
}

func TestQueryDNSTimeout(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	res, err := QueryDNS(testContext(t), DNSConfig{Server: silent.LocalAddr().String(),
		Name: "web.lab", Timeout: 100 * time.Millisecond})
	if err != nil || res.OK || res.Kind != KindTimeout || res.Ms < 99 {
		t.Fatalf("silent server: %+v, %v", res, err)
	}
}

func TestQueryDNSRejectsBadConfig(t *testing.T) {
	for _, cfg := range []DNSConfig{
		{Server: "dns.example:53", Name: "web.lab"},
		{Server: "127.0.0.1", Name: "web.lab", Type: "MX"},
		{Server: "127.0.0.1", Name: "bad..name"},
	} {
		if _, err := QueryDNS(testContext(t), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestServerAddrDefaultsToPort53(t *testing.T) {
	for in, want := range map[string]string{
		"10.88.0.1": "10.88.0.1:53", "10.88.0.1:5353": "10.88.0.1:5353",
		"fd00::1": "[fd00::1]:53", "[fd00::1]:54": "[fd00::1]:54",
	} {
		if got, err := serverAddr(in); err != nil || got != want {
			t.Errorf("serverAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestReverseName(t *testing.T) {
	for in, want := range map[string]string{
		"10.88.0.10": "10.0.88.10.in-addr.arpa.",
		"fd00::1": "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f." +
			"ip6.arpa.",
	} {
		if got := ReverseName(netip.MustParseAddr(in)); got != want {
			t.Errorf("ReverseName(%s) = %s, want %s", in, got, want)
		}
	}
}
