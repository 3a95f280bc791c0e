package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Environment is the host state a Result was measured in.
type Environment struct {
	Kernel      string          `json:"kernel"` // uname -r
	Machine     string          `json:"machine"`
	CPUs        int             `json:"cpus"`
	GoVersion   string          `json:"go_version"`
	Accelerator string          `json:"accelerator"`
	Interfaces  []InterfaceInfo `json:"interfaces,omitempty"`
	// BrNetfilter holds net.bridge.bridge-nf-call-* sysctls ("absent" without br_netfilter).
	BrNetfilter   map[string]string `json:"br_netfilter"`
	NftRules      int               `json:"nft_rules"` // rules in `nft -j list ruleset`
	ForwardPolicy string            `json:"iptables_forward_policy"`
	Problems      []string          `json:"problems,omitempty"` // facts that could not be read
}

// InterfaceInfo is the MTU and offload state of one interface.
type InterfaceInfo struct {
	Interface
	MTU int `json:"mtu"`
	// Offloads are the main `ethtool -k` features (on/off), empty without ethtool.
	Offloads map[string]string `json:"offloads,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// offloadFeatures are the `ethtool -k` lines an Environment keeps.
var offloadFeatures = []string{"rx-checksumming", "tx-checksumming", "scatter-gather",
	"tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload",
	"large-receive-offload", "rx-gro-hw", "rx-udp-gro-forwarding"}

// CaptureEnvironment reads kernel, CPUs, the interfaces' MTU and offloads (`ip -j link`,
// `ethtool -k`), the br_netfilter sysctls, the nftables rule count (`nft -j list ruleset`)
// and the iptables FORWARD policy (`iptables -S FORWARD`). It changes nothing; what cannot
// be read is listed in Problems.
func CaptureEnvironment(ctx context.Context, accelerator string, ifaces []Interface) Environment {
	env := Environment{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Accelerator: accelerator, BrNetfilter: brNetfilter()}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		env.Kernel = unix.ByteSliceToString(u.Release[:])
		env.Machine = unix.ByteSliceToString(u.Machine[:])
	}
	for _, i := range ifaces {
		env.Interfaces = append(env.Interfaces, interfaceInfo(ctx, i))
	}
	var err error
	if env.NftRules, err = nftRuleCount(ctx); err != nil {
		env.Problems = append(env.Problems, err.Error())
	}
	if env.ForwardPolicy, err = forwardPolicy(ctx); err != nil {
		env.Problems = append(env.Problems, err.Error())
	}
	return env
}

func brNetfilter() map[string]string {
	out := map[string]string{}
	for _, k := range []string{"iptables", "ip6tables", "arptables"} {
		name := "net.bridge.bridge-nf-call-" + k
		data, err := os.ReadFile(filepath.Join("/proc/sys/net/bridge", "bridge-nf-call-"+k))
		if err != nil {
			out[name] = "absent"
			continue
		}
		out[name] = strings.TrimSpace(string(data))
	}
	return out
}

func interfaceInfo(ctx context.Context, i Interface) InterfaceInfo {
	info := InterfaceInfo{Interface: i}
	n := HostNode{Netns: i.Netns}
	out, err := n.Exec(ctx, "ip", "-j", "link", "show", "dev", i.Name)
	if err != nil {
		info.Error = fmt.Sprintf("read link: %v", err)
		return info
	}
	var links []struct {
		MTU int `json:"mtu"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) == 0 {
		info.Error = fmt.Sprintf("parse `ip -j link` of %s: %v", i.Name, err)
		return info
	}
	info.MTU = links[0].MTU
	if out, err := n.Exec(ctx, "ethtool", "-k", i.Name); err == nil {
		info.Offloads = ParseOffloads(out)
	}
	return info
}

// ParseOffloads keeps the offloadFeatures of `ethtool -k` output ("name: on [fixed]").
func ParseOffloads(out []byte) map[string]string {
	want := map[string]bool{}
	for _, f := range offloadFeatures {
		want[f] = true
	}
	res := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || !want[name] {
			continue
		}
		if f := strings.Fields(val); len(f) > 0 {
			res[name] = f[0]
		}
	}
	return res
}

// nftRuleCount counts the rules of the host's whole nftables ruleset.
func nftRuleCount(ctx context.Context) (int, error) {
	out, err := HostNode{}.Exec(ctx, "nft", "-j", "list", "ruleset")
	if err != nil {
		return 0, fmt.Errorf("list nftables ruleset: %w", err)
	}
	return CountNftRules(out)
}

// CountNftRules counts the "rule" objects of `nft -j list ruleset` output.
func CountNftRules(out []byte) (int, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, fmt.Errorf("parse nft json: %w", err)
	}
	n := 0
	for _, obj := range doc.Nftables {
		if _, ok := obj["rule"]; ok {
			n++
		}
	}
	return n, nil
}

// forwardPolicy reads the policy of iptables' FORWARD chain from `iptables -S FORWARD`.
func forwardPolicy(ctx context.Context) (string, error) {
	out, err := HostNode{}.Exec(ctx, "iptables", "-S", "FORWARD")
	if err != nil {
		return "", fmt.Errorf("read iptables FORWARD policy: %w", err)
	}
	return ParseForwardPolicy(out)
}

// ParseForwardPolicy finds "-P FORWARD POLICY" in `iptables -S FORWARD` output.
func ParseForwardPolicy(out []byte) (string, error) {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "-P" && f[1] == "FORWARD" {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("no FORWARD policy in iptables output %q", truncate(out))
}

func truncate(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}
