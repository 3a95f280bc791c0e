package probes

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSConfig selects one query against one server. No other resolver is consulted.
type DNSConfig struct {
	Server  string        // IP or IP:port (port 53 when omitted)
	Name    string        // a name, or for PTR also an IP address
	Type    string        // A (default), AAAA or PTR
	Timeout time.Duration // default 2s
}

// DNSAnswer is one answer record.
type DNSAnswer struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

// DNSResult is the outcome of QueryDNS. A timeout or network failure is a result
// (OK false, Kind set); Rcode is the server's answer code when one arrived.
type DNSResult struct {
	Server        string      `json:"server"`
	Name          string      `json:"name"` // the name queried (reverse name for PTR)
	Type          string      `json:"type"`
	OK            bool        `json:"ok"` // a reply arrived
	Rcode         string      `json:"rcode,omitempty"`
	Authoritative bool        `json:"authoritative"`
	Truncated     bool        `json:"truncated"`
	Answers       []DNSAnswer `json:"answers"`
	Kind          ErrorKind   `json:"error_kind,omitempty"`
	Error         string      `json:"error,omitempty"`
	Ms            float64     `json:"ms"`
}

var dnsTypes = map[string]dnsmessage.Type{
	"A": dnsmessage.TypeA, "AAAA": dnsmessage.TypeAAAA, "PTR": dnsmessage.TypePTR,
}

// QueryDNS sends one recursive query over UDP to cfg.Server and parses the reply
// (the equivalent of `dig @SERVER NAME TYPE +notcp +tries=1`). It returns an error only for
// an invalid configuration.
func QueryDNS(ctx context.Context, cfg DNSConfig) (DNSResult, error) {
	server, q, err := cfg.prepare()
	if err != nil {
		return DNSResult{}, fmt.Errorf("dns query %q: %w", cfg.Name, err)
	}
	res := DNSResult{Server: server, Name: q.Name.String(), Type: strings.ToUpper(cfg.Type),
		Answers: []DNSAnswer{}}
	id := randomID()
	query, err := buildQuery(id, q)
	if err != nil {
		return DNSResult{}, fmt.Errorf("dns query %q: %w", cfg.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	reply, err := exchangeUDP(ctx, server, id, query)
	res.Ms = float64(time.Since(start).Microseconds()) / 1e3
	if err != nil {
		res.Kind, res.Error = Classify(err), err.Error()
		return res, nil
	}
	if err := parseReply(reply, &res); err != nil {
		res.Kind, res.Error = KindOther, err.Error()
		return res, nil
	}
	res.OK = true
	return res, nil
}

func (cfg *DNSConfig) prepare() (string, dnsmessage.Question, error) {
	if cfg.Type == "" {
		cfg.Type = "A"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	typ, ok := dnsTypes[strings.ToUpper(cfg.Type)]
	if !ok {
		return "", dnsmessage.Question{}, fmt.Errorf("unsupported type %q (want A, AAAA or PTR)",
			cfg.Type)
	}
	server, err := serverAddr(cfg.Server)
	if err != nil {
		return "", dnsmessage.Question{}, err
	}
	name := cfg.Name
	if ip, err := netip.ParseAddr(name); err == nil && typ == dnsmessage.TypePTR {
		name = ReverseName(ip)
	}
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return "", dnsmessage.Question{}, fmt.Errorf("parse name %q: %w", name, err)
	}
	return server, dnsmessage.Question{Name: n, Type: typ, Class: dnsmessage.ClassINET}, nil
}

// serverAddr requires an IP literal so that no resolver is consulted to find the server.
func serverAddr(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	ip, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "", fmt.Errorf("server %q is not IP or IP:port", s)
	}
	return netip.AddrPortFrom(ip, 53).String(), nil
}

// ReverseName returns the in-addr.arpa or ip6.arpa name of ip, with a trailing dot.
func ReverseName(ip netip.Addr) string {
	var b strings.Builder
	if ip.Is4() || ip.Is4In6() {
		a := ip.Unmap().As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.in-addr.arpa.", a[3], a[2], a[1], a[0])
		return b.String()
	}
	a := ip.As16()
	const hex = "0123456789abcdef"
	for i := len(a) - 1; i >= 0; i-- {
		b.WriteByte(hex[a[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[a[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa.")
	return b.String()
}

func randomID() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}

func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512),
		dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	if err := b.Question(q); err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	return msg, nil
}

// exchangeUDP sends query and returns the first reply carrying id; replies with other IDs
// are stale and skipped.
func exchangeUDP(ctx context.Context, server string, id uint16, query []byte) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", server, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := conn.Write(query); err != nil {
		return nil, fmt.Errorf("send to %s: %w", server, err)
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("read from %s: %w", server, err)
		}
		if n >= 2 && binary.BigEndian.Uint16(buf) == id {
			return buf[:n], nil
		}
	}
}

var errNotResponse = errors.New("message is not a response")

func parseReply(reply []byte, res *DNSResult) error {
	var p dnsmessage.Parser
	h, err := p.Start(reply)
	if err != nil {
		return fmt.Errorf("parse reply header: %w", err)
	}
	if !h.Response {
		return errNotResponse
	}
	res.Rcode = rcodeName(h.RCode)
	res.Authoritative, res.Truncated = h.Authoritative, h.Truncated
	if err := p.SkipAllQuestions(); err != nil {
		return fmt.Errorf("parse reply questions: %w", err)
	}
	answers, err := p.AllAnswers()
	if err != nil {
		return fmt.Errorf("parse reply answers: %w", err)
	}
	for _, rr := range answers {
		res.Answers = append(res.Answers, DNSAnswer{Name: rr.Header.Name.String(),
			Type: typeName(rr.Header.Type), TTL: rr.Header.TTL, Data: answerData(rr.Body)})
	}
	return nil
}

func answerData(b dnsmessage.ResourceBody) string {
	switch r := b.(type) {
	case *dnsmessage.AResource:
		return netip.AddrFrom4(r.A).String()
	case *dnsmessage.AAAAResource:
		return netip.AddrFrom16(r.AAAA).String()
	case *dnsmessage.PTRResource:
		return r.PTR.String()
	case *dnsmessage.CNAMEResource:
		return r.CNAME.String()
	}
	return b.GoString()
}

func typeName(t dnsmessage.Type) string {
	return strings.TrimPrefix(t.String(), "Type")
}

func rcodeName(c dnsmessage.RCode) string {
	switch c {
	case dnsmessage.RCodeSuccess:
		return "NOERROR"
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return strings.TrimPrefix(c.String(), "RCode")
}
