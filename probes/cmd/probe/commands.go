package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"hybridlab/probes"
)

const serveIntro = `Usage: probe serve [flags]

Serves until SIGTERM or SIGINT: a length-preserving TCP echo, a UDP echo, a TCP sink that
discards data and then reports the byte count (for 'probe tput'), and HTTP with
  /         JSON {hostname, remote, local, path}
  /healthz  "ok"
  /call?url=http://HOST:PORT/PATH  GETs that URL (only that one, no redirects) with
            --call-timeout and relays its status and body (a two-tier web→backend hop).
An empty address disables a listener. Prints one JSON line with the bound addresses once
listening. On Linux the echoes answer from blocking socket calls, one thread per TCP echo
connection (up to 64; further connections go through the Go poller, as all do with
--poller).`

func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := probes.DefaultServeConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.TCP, "tcp", cfg.TCP, "TCP echo listen address")
	fs.StringVar(&cfg.UDP, "udp", cfg.UDP, "UDP echo listen address")
	fs.StringVar(&cfg.Sink, "sink", cfg.Sink, "TCP discard sink listen address")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "HTTP listen address")
	fs.DurationVar(&cfg.CallTimeout, "call-timeout", cfg.CallTimeout, "timeout of /call's GET")
	fs.StringVar(&cfg.Hostname, "hostname", "", "hostname reported by / (default: the system's)")
	fs.BoolVar(&cfg.Poller, "poller", false,
		"echo through the Go runtime's poller instead of blocking socket calls")
	if err := parseFlags(fs, args, stdout, serveIntro); err != nil {
		return err
	}
	s, err := probes.Start(cfg)
	if err != nil {
		return err
	}
	ready := struct {
		Event string `json:"event"`
		probes.ServeAddrs
	}{"listening", s.Addrs()}
	if err := writeJSON(stdout, ready); err != nil {
		s.Close()
		return err
	}
	<-ctx.Done()
	return s.Close()
}

const rrIntro = `Usage: probe rr --target HOST:PORT [flags]

Measures request-response latency against a 'probe serve' echo. TCP uses one connection
(re-dialled after a failed request); each request writes --size bytes and waits for the whole
echo. UDP puts a sequence number in each datagram; a request without its reply within
--timeout counts as an error (lost) and late or reordered replies are discarded.
Latencies go into an HDR histogram (ns, 1ns–60s, 3 significant digits) and are reported in
microseconds (*_us); "histogram" is the base64 HdrHistogram V2 encoding for merging runs.
With --interval > 0 requests are paced and recorded with coordinated-omission correction;
--interval 0 sends back-to-back. Exit 1 if the first dial fails.
On Linux the client sleeps in blocking socket calls (no Go poller in the path); --busy-poll
spins on non-blocking reads instead, keeping one CPU busy for the whole run; --poller waits
through the Go runtime's poller (epoll), as builds for other systems do.
Limit: a lost UDP request holds the sender for --timeout, so paced requests that fall in that
wait are not sent; keep --timeout close to --interval when measuring loss.`

func runRR(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg probes.RRConfig
	var noHist bool
	fs := flag.NewFlagSet("rr", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "echo server HOST:PORT (required)")
	fs.StringVar(&cfg.Proto, "proto", "tcp", "tcp or udp")
	fs.IntVar(&cfg.Count, "count", 0, "measured requests (default 1000 unless --duration)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "measure for this long instead of --count")
	fs.IntVar(&cfg.Size, "size", probes.DefaultSize, "payload bytes per request (udp: >= 8)")
	fs.DurationVar(&cfg.Interval, "interval", 0, "pace one request per interval; 0 = back-to-back")
	fs.IntVar(&cfg.Warmup, "warmup", 10, "unrecorded requests sent first")
	fs.DurationVar(&cfg.Timeout, "timeout", time.Second, "per-request and dial timeout")
	fs.BoolVar(&noHist, "no-histogram", false, "omit the encoded histogram from the output")
	fs.BoolVar(&cfg.BusyPoll, "busy-poll", false,
		"spin on non-blocking reads while waiting (keeps one CPU busy; Linux only)")
	fs.BoolVar(&cfg.Poller, "poller", false,
		"wait through the Go runtime's poller instead of blocking socket calls")
	if err := parseFlags(fs, args, stdout, rrIntro); err != nil {
		return err
	}
	if cfg.Target == "" {
		return exitUsage{errors.New("--target is required")}
	}
	if cfg.Count > 0 && cfg.Duration > 0 {
		return exitUsage{errors.New("--count and --duration are exclusive")}
	}
	res, err := probes.RunRR(ctx, cfg)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if noHist {
		res.Histogram = ""
	}
	return writeJSON(stdout, res)
}

const tputIntro = `Usage: probe tput --target HOST:PORT [flags]

Streams data to a 'probe serve' sink over one TCP connection for --duration, then waits for
the sink's count of received bytes; reports bytes/s over the whole transfer.`

func runTput(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg probes.TputConfig
	fs := flag.NewFlagSet("tput", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "sink HOST:PORT (required)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long to send")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "dial and receipt timeout")
	fs.IntVar(&cfg.BufSize, "buf", 128<<10, "bytes per write")
	if err := parseFlags(fs, args, stdout, tputIntro); err != nil {
		return err
	}
	if cfg.Target == "" {
		return exitUsage{errors.New("--target is required")}
	}
	res, err := probes.RunTput(ctx, cfg)
	if err != nil {
		return err
	}
	return writeJSON(stdout, res)
}

const dnsIntro = `Usage: probe dns --server IP[:PORT] --name NAME [flags]

Sends one recursive query over UDP to --server only (no system resolver) and reports rcode,
answers and time. For --type PTR, --name may be an IP address. A timeout exits 0 with
"ok": false and "error_kind" in the JSON.`

func runDNS(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg probes.DNSConfig
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	fs.StringVar(&cfg.Server, "server", "", "DNS server IP or IP:PORT (required; port 53)")
	fs.StringVar(&cfg.Name, "name", "", "name to resolve, or IP for PTR (required)")
	fs.StringVar(&cfg.Type, "type", "A", "A, AAAA or PTR")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "time to wait for the reply")
	if err := parseFlags(fs, args, stdout, dnsIntro); err != nil {
		return err
	}
	if cfg.Server == "" || cfg.Name == "" {
		return exitUsage{errors.New("--server and --name are required")}
	}
	res, err := probes.QueryDNS(ctx, cfg)
	if err != nil {
		return exitUsage{err}
	}
	return writeJSON(stdout, res)
}

const connectIntro = `Usage: probe connect --target HOST:PORT [flags]

Opens a TCP connection (or, for udp, sends one datagram and waits for a 'probe serve' echo)
within --timeout. Always exits 0 once the attempt was made: "ok" and "error_kind"
(refused | timeout | unreachable | other) in the JSON say how it went.`

func runConnect(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg probes.ConnectConfig
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", "", "HOST:PORT (required)")
	fs.StringVar(&cfg.Proto, "proto", "tcp", "tcp or udp")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "connect (or echo) timeout")
	if err := parseFlags(fs, args, stdout, connectIntro); err != nil {
		return err
	}
	if cfg.Target == "" {
		return exitUsage{errors.New("--target is required")}
	}
	res, err := probes.Connect(ctx, cfg)
	if err != nil {
		return exitUsage{err}
	}
	return writeJSON(stdout, res)
}
