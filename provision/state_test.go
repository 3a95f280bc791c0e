package provision

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"hybridlab/topology"
)

func useTempStateRoot(t *testing.T) {
	t.Helper()
	old := StateRoot
	StateRoot = t.TempDir()
	t.Cleanup(func() { StateRoot = old })
}

func TestLockRefusesASecondHolder(t *testing.T) {
	useTempStateRoot(t)
	first, err := AcquireLock("lab1")
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	_, err = AcquireLock("lab1")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "pid "+itoa(os.Getpid())) {
		t.Errorf("error %q does not name the holder's pid", err)
	}
	if _, err := AcquireLock("lab2"); err != nil {
		t.Errorf("another lab's lock: %v", err)
	}
	first.Release()
	again, err := AcquireLock("lab1")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}

func TestRecordRoundTrips(t *testing.T) {
	useTempStateRoot(t)
	rec, err := LoadRecord("lab1")
	if err != nil || len(rec.Created) != 0 {
		t.Fatalf("missing record = %+v, %v; want empty", rec, err)
	}
	rec.created("container", "lab1-web")
	rec.created("container", "lab1-web")
	rec.adopted("bridge", "br0")
	rec.Completed = true
	if err := rec.Save(); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRecord("lab1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Completed || len(got.Created["container"]) != 1 || !got.has("container", "lab1-web") ||
		got.Adopted["bridge"][0] != "br0" {
		t.Errorf("record after save/load = %+v", got)
	}
}

func TestRecordRejectsACorruptFile(t *testing.T) {
	useTempStateRoot(t)
	if err := os.MkdirAll(StateDir("lab1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(StateDir("lab1")+"/state.json", []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRecord("lab1"); err == nil || !strings.Contains(err.Error(), "state.json") {
		t.Errorf("corrupt record: err = %v, want one naming state.json", err)
	}
}

func TestDescribeListsEveryObjectUpBuilds(t *testing.T) {
	lab, err := topology.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	all := Describe(p, Options{VMs: true})
	text := ""
	for _, a := range all {
		text += a.Object + " | " + a.Command + "\n"
	}
	for _, want := range []string{
		"nft table inet hybridlab_hybrid",
		"ip link add br-hybrid address 02:68:0a:00:01:01 mtu 1500 type bridge stp_state 0",
		"--ip-range 10.0.1.128/25",
		"--aux-address vm-0=10.0.1.10 … (89 more: one per address of the VM block",
		"docker run -d --name hybrid-web --hostname web --network hybrid-net --ip 10.0.1.254 " +
			"--mac-address 02:42:0a:00:01:fe --dns 10.0.1.1 --dns-search lab",
		"libvirt network hybrid-mgmt",
		"vm hybrid-docker1",
		"iptables -I DOCKER-USER -i br-hybrid -o br-hybrid -j ACCEPT",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Describe lacks %q; got:\n%s", want, text)
		}
	}
	noVMs := Describe(p, Options{VMs: false})
	for _, a := range noVMs {
		if a.Step == "vm" || a.Step == "box" || a.Step == "mgmt" {
			t.Errorf("with VMs off, Describe still lists %s %s", a.Step, a.Object)
		}
	}
	// box, mgmt and one action per VM go.
	if want := len(all) - 2 - len(p.VMs()); len(noVMs) != want {
		t.Errorf("with VMs off: %d actions, want %d", len(noVMs), want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
