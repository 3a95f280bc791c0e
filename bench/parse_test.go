package bench

import (
	"os"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseSockperf(t *testing.T) {
	r, err := ParseSockperf(string(readTestdata(t, "sockperf-udp.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if r.Samples <= 0 || r.MinUs <= 0 || !(r.MinUs <= r.P50Us && r.P50Us <= r.P90Us &&
		r.P90Us <= r.P99Us && r.P99Us <= r.P999Us && r.P999Us <= r.MaxUs) || r.MeanUs <= 0 {
		t.Errorf("parsed %+v", r)
	}
	const colour = "sockperf: \x1b[2;35m====> avg-rtt=7.403 (std-dev=54.526)\x1b[0m\n" +
		"sockperf: ---> percentile 50.000 =    6.099\n"
	r, err = ParseSockperf(colour)
	if err != nil || r.MeanUs != 7.403 || r.P50Us != 6.099 {
		t.Errorf("coloured output: %+v, %v", r, err)
	}
	if _, err := ParseSockperf("sockperf: ERROR: connect refused"); err == nil {
		t.Error("no error for output without statistics")
	}
}

func TestParseIperf3(t *testing.T) {
	r, err := ParseIperf3(readTestdata(t, "iperf3.json"))
	if err != nil || r.BitsPerSec <= 0 || r.SentBitsPerSec <= 0 {
		t.Errorf("parsed %+v, %v", r, err)
	}
	if _, err := ParseIperf3([]byte(`{"error": "unable to connect to server"}`)); err == nil {
		t.Error("iperf3 error not reported")
	}
}

func TestCountNftRules(t *testing.T) {
	n, err := CountNftRules(readTestdata(t, "nft.json"))
	if err != nil || n != 2 {
		t.Errorf("CountNftRules = %d, %v; want 2", n, err)
	}
}

func TestParseForwardPolicy(t *testing.T) {
	p, err := ParseForwardPolicy([]byte("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n"))
	if err != nil || p != "DROP" {
		t.Errorf("policy %q, %v", p, err)
	}
	if _, err := ParseForwardPolicy([]byte("")); err == nil {
		t.Error("empty output accepted")
	}
}

func TestParseOffloads(t *testing.T) {
	o := ParseOffloads(readTestdata(t, "ethtool-lo.txt"))
	if o["rx-checksumming"] != "on" || o["tcp-segmentation-offload"] == "" {
		t.Errorf("offloads %v", o)
	}
	if _, ok := o["tx-checksum-ipv4"]; ok {
		t.Error("kept a sub-feature")
	}
}

func BenchmarkParseSockperf(b *testing.B) {
	data, err := os.ReadFile("testdata/sockperf-udp.txt")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ParseSockperf(string(data)); err != nil {
			b.Fatal(err)
		}
	}
}
