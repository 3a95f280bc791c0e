package dnsmasq

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Answer is the reply to one DNS question.
type Answer struct {
	RCode         dnsmessage.RCode
	Authoritative bool
	// Addrs holds A records, Names PTR targets.
	Addrs []netip.Addr
	Names []string
}

// Query asks server (UDP port 53) one question of type qtype (A or PTR)
// for name, like `dig @SERVER NAME TYPE`. The socket is opened in the
// calling goroutine, so a caller locked to a thread in another netns
// queries from that netns; nothing else is contacted.
func Query(ctx context.Context, server netip.Addr, name string, qtype dnsmessage.Type,
) (Answer, error) {
	q, err := dnsmessage.NewName(fqdn(name))
	if err != nil {
		return Answer{}, fmt.Errorf("query %q: %w", name, err)
	}
	id := uint16(rand.Uint32())
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: q, Type: qtype, Class: dnsmessage.ClassINET}},
	}
	pkt, err := msg.Pack()
	if err != nil {
		return Answer{}, fmt.Errorf("query %q: %w", name, err)
	}
	reply, err := exchange(ctx, netip.AddrPortFrom(server, 53), pkt)
	if err != nil {
		return Answer{}, fmt.Errorf("query %q at %s: %w", name, server, err)
	}
	var resp dnsmessage.Message
	if err := resp.Unpack(reply); err != nil || resp.ID != id {
		return Answer{}, fmt.Errorf("query %q at %s: bad reply (%v)", name, server, err)
	}
	return answerOf(resp), nil
}

func exchange(ctx context.Context, server netip.AddrPort, pkt []byte) ([]byte, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	if _, err := conn.Write(pkt); err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func answerOf(m dnsmessage.Message) Answer {
	a := Answer{RCode: m.RCode, Authoritative: m.Authoritative}
	for _, r := range m.Answers {
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			a.Addrs = append(a.Addrs, netip.AddrFrom4(b.A))
		case *dnsmessage.PTRResource:
			a.Names = append(a.Names, b.PTR.String())
		}
	}
	return a
}

func fqdn(name string) string {
	if name == "" || name[len(name)-1] != '.' {
		return name + "."
	}
	return name
}

// ReverseName is the PTR query name of ip, e.g. "10.5.0.10.in-addr.arpa.".
func ReverseName(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa.", b[3], b[2], b[1], b[0])
}
