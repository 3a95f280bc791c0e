package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"hybridlab/probes"
)

// RR runs `probe rr` on r with cfg and parses its result. Zero fields of cfg take the
// agent's defaults.
func RR(ctx context.Context, r Runner, cfg probes.RRConfig) (probes.RRResult, error) {
	args := []string{"rr", "--target", cfg.Target}
	args = appendFlag(args, "--proto", cfg.Proto)
	args = appendInt(args, "--count", cfg.Count)
	args = appendDuration(args, "--duration", cfg.Duration)
	args = appendInt(args, "--size", cfg.Size)
	args = appendDuration(args, "--interval", cfg.Interval)
	args = append(args, "--warmup", strconv.Itoa(cfg.Warmup))
	args = appendDuration(args, "--timeout", cfg.Timeout)
	args = appendBool(args, "--busy-poll", cfg.BusyPoll)
	args = appendBool(args, "--poller", cfg.Poller)
	var res probes.RRResult
	return res, runJSON(ctx, r, &res, args...)
}

// Tput runs `probe tput` on r against a serve sink.
func Tput(ctx context.Context, r Runner, cfg probes.TputConfig) (probes.TputResult, error) {
	args := []string{"tput", "--target", cfg.Target}
	args = appendDuration(args, "--duration", cfg.Duration)
	args = appendDuration(args, "--timeout", cfg.Timeout)
	args = appendInt(args, "--buf", cfg.BufSize)
	var res probes.TputResult
	return res, runJSON(ctx, r, &res, args...)
}

// DNS runs `probe dns` on r. A query that got no reply is a result with OK false.
func DNS(ctx context.Context, r Runner, cfg probes.DNSConfig) (probes.DNSResult, error) {
	args := []string{"dns", "--server", cfg.Server, "--name", cfg.Name}
	args = appendFlag(args, "--type", cfg.Type)
	args = appendDuration(args, "--timeout", cfg.Timeout)
	var res probes.DNSResult
	return res, runJSON(ctx, r, &res, args...)
}

// Connect runs `probe connect` on r. A failed connect is a result with OK false and its Kind.
func Connect(ctx context.Context, r Runner, cfg probes.ConnectConfig) (probes.ConnectResult,
	error) {
	args := []string{"connect", "--target", cfg.Target}
	args = appendFlag(args, "--proto", cfg.Proto)
	args = appendDuration(args, "--timeout", cfg.Timeout)
	var res probes.ConnectResult
	return res, runJSON(ctx, r, &res, args...)
}

// Version runs `probe version` on r.
func Version(ctx context.Context, r Runner) (probes.Version, error) {
	var v probes.Version
	return v, runJSON(ctx, r, &v, "version")
}

func runJSON(ctx context.Context, r Runner, v any, args ...string) error {
	out, err := r.Run(ctx, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("parse probe %s output %q: %w", args[0], truncate(out), err)
	}
	return nil
}

func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

func appendFlag(args []string, name, v string) []string {
	if v == "" {
		return args
	}
	return append(args, name, v)
}

func appendBool(args []string, name string, v bool) []string {
	if !v {
		return args
	}
	return append(args, name)
}

func appendInt(args []string, name string, v int) []string {
	if v == 0 {
		return args
	}
	return append(args, name, strconv.Itoa(v))
}

func appendDuration(args []string, name string, d time.Duration) []string {
	if d == 0 {
		return args
	}
	return append(args, name, d.String())
}

// PingResult is the summary of a `ping -c N` run.
type PingResult struct {
	Target      string  `json:"target"`
	Transmitted int     `json:"transmitted"`
	Received    int     `json:"received"`
	LossPct     float64 `json:"loss_pct"`
	MinMs       float64 `json:"min_ms"` // 0 when nothing was received
	AvgMs       float64 `json:"avg_ms"`
	MaxMs       float64 `json:"max_ms"`
}

// ErrPingOutput is returned when ping's output has no summary line.
var ErrPingOutput = errors.New("no ping summary in output")

var (
	pingCounts = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)
	pingRTT    = regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)`)
)

// Ping runs `ping -c COUNT -W 1 IP` on e (iputils or busybox) and parses loss and round-trip
// times. Total loss is a result (LossPct 100), not an error.
func Ping(ctx context.Context, e Execer, ip string, count int) (PingResult, error) {
	if count <= 0 {
		count = 3
	}
	out, err := e.Exec(ctx, "ping", "-c", strconv.Itoa(count), "-W", "1", ip)
	var ee *ExitError
	// iputils and busybox exit 1 when no reply arrived; the summary is still printed.
	if err != nil && !(errors.As(err, &ee) && ee.Code == 1) {
		return PingResult{}, err
	}
	res, perr := ParsePing(string(out))
	if perr != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", ip, errors.Join(perr, err))
	}
	res.Target = ip
	return res, nil
}

// ParsePing parses the summary of iputils or busybox ping output.
func ParsePing(out string) (PingResult, error) {
	m := pingCounts.FindStringSubmatch(out)
	if m == nil {
		return PingResult{}, fmt.Errorf("%w: %q", ErrPingOutput, strings.TrimSpace(out))
	}
	var res PingResult
	res.Transmitted, _ = strconv.Atoi(m[1])
	res.Received, _ = strconv.Atoi(m[2])
	if res.Transmitted > 0 {
		res.LossPct = 100 * float64(res.Transmitted-res.Received) / float64(res.Transmitted)
	}
	if r := pingRTT.FindStringSubmatch(out); r != nil {
		res.MinMs, _ = strconv.ParseFloat(r[1], 64)
		res.AvgMs, _ = strconv.ParseFloat(r[2], 64)
		res.MaxMs, _ = strconv.ParseFloat(r[3], 64)
	}
	return res, nil
}
