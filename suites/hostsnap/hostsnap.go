// Package hostsnap records the parts of the host a lab can change — links,
// addresses, routes, nftables and iptables, Docker and libvirt objects, lab
// processes and state files — so a suite can prove that `down` left
// nothing behind. It shells out to the tools a person would use, so a
// difference reads the way `ip`, `nft` and `docker` print it.
package hostsnap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Snapshot maps an aspect ("links", "nft", "iptables", …) to its lines.
type Snapshot map[string][]string

// sources are the commands whose normalised output makes a snapshot. A
// command that is not installed contributes nothing (the same both times).
var sources = map[string][]string{
	"links":      {"ip", "-o", "link", "show"},
	"addresses":  {"ip", "-o", "addr", "show"},
	"routes":     {"ip", "route", "show", "table", "all"},
	"rules":      {"ip", "rule", "show"},
	"netns":      {"ip", "netns", "list"},
	"nft":        {"nft", "list", "ruleset"},
	"iptables":   {"iptables-save"},
	"ip6tables":  {"ip6tables-save"},
	"containers": {"docker", "ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Labels}}"},
	"networks":   {"docker", "network", "ls", "--format", "{{.Name}} {{.Driver}}"},
	"domains":    {"virsh", "-c", "qemu:///system", "list", "--all", "--name"},
	"vnets":      {"virsh", "-c", "qemu:///system", "net-list", "--all", "--name"},
	"pools":      {"virsh", "-c", "qemu:///system", "pool-list", "--all", "--name"},
}

// volatile strips what changes without any lab activity: counters, link
// indexes that follow deletions, lifetimes, ARP state, timestamps.
var volatile = []*regexp.Regexp{
	regexp.MustCompile(`\[\d+:\d+\]`),                   // iptables-save counters
	regexp.MustCompile(`counter packets \d+ bytes \d+`), // nft counters
	regexp.MustCompile(`^# .*`),                         // iptables-save comments with dates
	regexp.MustCompile(`^\d+: `),                        // ip -o link/addr index
	regexp.MustCompile(`valid_lft \S+ preferred_lft \S+`),
	regexp.MustCompile(`link-netnsid \d+`),
	regexp.MustCompile(`qlen \d+`),
}

// Take records the host now.
func Take(ctx context.Context) (Snapshot, error) {
	s := Snapshot{}
	for name, argv := range sources {
		if _, err := exec.LookPath(argv[0]); err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		out, err := exec.CommandContext(cctx, argv[0], argv[1:]...).Output()
		cancel()
		if err != nil {
			// A daemon that is not running answers nothing, which is a state
			// like any other; the error text itself is not compared.
			s[name] = []string{"<unavailable>"}
			continue
		}
		s[name] = normalise(string(out))
	}
	s["processes"] = labProcesses()
	s["files"] = stateFiles()
	return s, nil
}

func normalise(out string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		for _, re := range volatile {
			line = re.ReplaceAllString(line, "")
		}
		line = strings.TrimSpace(line)
		if line != "" {
			lines = append(lines, line)
		}
	}
	sort.Strings(lines)
	return lines
}

// labProcesses lists the commands of processes a lab runs (dnsmasq, QEMU,
// container shims, docker-proxy), so one left running shows up.
func labProcesses() []string {
	watched := regexp.MustCompile(`^(dnsmasq|qemu-system|containerd-shim|docker-proxy|vagrant|ruby|hybridlab)`)
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(comm))
		if !watched.MatchString(c) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if len(cmdline) == 0 {
			// An exited process waiting to be reaped (a zombie) has no
			// command line; it holds nothing of the lab's.
			continue
		}
		out = append(out, c+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	sort.Strings(out)
	return out
}

// stateFiles lists lab state under /var/lib/hybridlab, less the shared
// cache (boxes and images are kept on purpose).
func stateFiles() []string {
	var out []string
	root := "/var/lib/hybridlab"
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "cache" || rel == "vagrant.d" {
			return filepath.SkipDir
		}
		if rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// Diff lists every line that is in only one of the snapshots, prefixed
// with the aspect and "+" (appeared) or "-" (disappeared).
func Diff(before, after Snapshot) []string {
	var out []string
	for _, name := range keys(before, after) {
		b, a := set(before[name]), set(after[name])
		for line := range a {
			if !b[line] {
				out = append(out, fmt.Sprintf("%s: + %s", name, line))
			}
		}
		for line := range b {
			if !a[line] {
				out = append(out, fmt.Sprintf("%s: - %s", name, line))
			}
		}
	}
	sort.Strings(out)
	return out
}

func keys(snaps ...Snapshot) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range snaps {
		for k := range s {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func set(lines []string) map[string]bool {
	m := make(map[string]bool, len(lines))
	for _, l := range lines {
		m[l] = true
	}
	return m
}
