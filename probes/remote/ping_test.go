package remote

import (
	"context"
	"errors"
	"testing"
)

const (
	iputilsOut = `PING 10.88.0.2 (10.88.0.2) 56(84) bytes of data.
64 bytes from 10.88.0.2: icmp_seq=1 ttl=64 time=0.041 ms

--- 10.88.0.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 3004ms
rtt min/avg/max/mdev = 0.035/0.047/0.062/0.010 ms
`
	busyboxOut = `PING 10.88.0.2 (10.88.0.2): 56 data bytes
64 bytes from 10.88.0.2: seq=0 ttl=64 time=0.061 ms

--- 10.88.0.2 ping statistics ---
2 packets transmitted, 2 packets received, 0% packet loss
round-trip min/avg/max = 0.061/0.082/0.117 ms
`
	lostOut = `PING 10.88.0.3 (10.88.0.3) 56(84) bytes of data.

--- 10.88.0.3 ping statistics ---
3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2030ms
`
)

func TestParsePing(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      PingResult
	}{
		{"iputils", iputilsOut, PingResult{Transmitted: 4, Received: 3, LossPct: 25,
			MinMs: 0.035, AvgMs: 0.047, MaxMs: 0.062}},
		{"busybox", busyboxOut, PingResult{Transmitted: 2, Received: 2, LossPct: 0,
			MinMs: 0.061, AvgMs: 0.082, MaxMs: 0.117}},
		{"total loss", lostOut, PingResult{Transmitted: 3, Received: 0, LossPct: 100}},
	} {
		got, err := ParsePing(tc.out)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if _, err := ParsePing("ping: bad address 'x'"); !errors.Is(err, ErrPingOutput) {
		t.Errorf("garbage: err = %v", err)
	}
}

type fakeExec struct {
	out  string
	err  error
	argv []string
}

func (f *fakeExec) Exec(_ context.Context, argv ...string) ([]byte, error) {
	f.argv = argv
	return []byte(f.out), f.err
}

func TestPingTreatsTotalLossAsResult(t *testing.T) {
	f := &fakeExec{out: lostOut, err: &ExitError{Code: 1}}
	res, err := Ping(context.Background(), f, "10.88.0.3", 3)
	if err != nil || res.LossPct != 100 || res.Target != "10.88.0.3" {
		t.Fatalf("%+v, %v", res, err)
	}
	if got := f.argv; len(got) != 6 || got[0] != "ping" || got[2] != "3" || got[4] != "1" {
		t.Fatalf("argv %q", got)
	}
	f = &fakeExec{out: "", err: &ExitError{Code: 2, Stderr: "ping: bad address"}}
	if _, err := Ping(context.Background(), f, "nope", 1); err == nil {
		t.Fatal("ping usage failure not reported")
	}
}
