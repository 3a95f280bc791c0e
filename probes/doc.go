// Package probes measures network paths the same way from every lab node: a TCP/UDP echo,
// discard sink and HTTP server (Serve), a request-response latency client (RunRR), a TCP
// throughput client (RunTput), a single-server DNS query (QueryDNS) and a reachability check
// (Connect).
//
// The package is the library behind the static `probe` agent (probes/cmd/probe) and can be
// called in-process by the bench suites. It imports nothing heavier than the standard library,
// golang.org/x/net/dns/dnsmessage and hdrhistogram-go, so the agent stays small.
// Functions act in the network namespace of the calling thread and never log.
package probes
