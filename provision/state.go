// Package provision applies a topology.Plan to the host: it orders the
// steps of `setup up` and `setup down`, records what it created, and holds
// the lock that keeps two of them from running at once. The kernel, Docker,
// dnsmasq and libvirt work is done by its subpackages.
package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"hybridlab/doctor"
	"hybridlab/provision/deps"
)

// StateRoot holds every lab's state and the shared cache. It is outside
// /root on purpose: QEMU runs as libvirt-qemu and must read box kernels.
// Tests point it elsewhere with HYBRIDLAB_STATE_ROOT.
var StateRoot = stateRootFromEnv()

func stateRootFromEnv() string {
	if dir := os.Getenv("HYBRIDLAB_STATE_ROOT"); dir != "" {
		return dir
	}
	return "/var/lib/hybridlab"
}

// BoxName is the Vagrant box every lab VM boots.
const BoxName = "hybridlab/debian12"

// StateDir is where one lab keeps pid files, rendered configs and its record.
func StateDir(lab string) string { return filepath.Join(StateRoot, lab) }

// CacheDir holds what labs share: boxes, the agent binary, the accel probe.
func CacheDir() string { return filepath.Join(StateRoot, "cache") }

// Record is what `up` wrote down about the objects it created, so `down`
// removes exactly those and leaves what was there before.
type Record struct {
	Lab       string    `json:"lab"`
	LabFile   string    `json:"lab_file,omitempty"`
	Updated   time.Time `json:"updated"`
	Completed bool      `json:"completed"`
	// Started lists daemons that `up` started (dockerd, libvirtd, virtlogd).
	Started map[string]deps.Daemon `json:"started,omitempty"`
	// Created lists host objects created by `up`, by kind.
	Created map[string][]string `json:"created,omitempty"`
	// Adopted lists objects that existed and were kept as they were.
	Adopted map[string][]string `json:"adopted,omitempty"`
	// Bridge is the lab bridge as `up` left it, for the doctor's
	// BRIDGE_CHANGED check.
	Bridge *doctor.Bridge `json:"bridge,omitempty"`
	// Segments are the other segments' bridges as `up` left them.
	Segments []doctor.Bridge `json:"segment_bridges,omitempty"`
	// Timings are the step durations of the last `up`, in seconds.
	Timings []StepTiming `json:"timings,omitempty"`
}

// StepTiming is one step's duration.
type StepTiming struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"`
}

func (r *Record) created(kind, name string) {
	if r.Created == nil {
		r.Created = map[string][]string{}
	}
	r.Created[kind] = appendUnique(r.Created[kind], name)
}

func (r *Record) adopted(kind, name string) {
	if r.Adopted == nil {
		r.Adopted = map[string][]string{}
	}
	r.Adopted[kind] = appendUnique(r.Adopted[kind], name)
}

func (r *Record) has(kind, name string) bool {
	for _, n := range r.Created[kind] {
		if n == name {
			return true
		}
	}
	return false
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// LoadRecord reads the lab's record; a missing record is an empty one.
func LoadRecord(lab string) (*Record, error) {
	r := &Record{Lab: lab}
	data, err := os.ReadFile(filepath.Join(StateDir(lab), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lab record: %w", err)
	}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("parse lab record %s: %w", filepath.Join(StateDir(lab), "state.json"), err)
	}
	return r, nil
}

// Save writes the record atomically, so a killed `up` leaves either the old
// or the new record, never half of one.
func (r *Record) Save() error {
	r.Updated = time.Now().UTC()
	dir := StateDir(r.Lab)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write lab record: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

// ErrLocked is returned when another `up` or `down` holds the lab's lock.
var ErrLocked = errors.New("lab is locked")

// Lock is an exclusive flock on the lab's lock file. The kernel drops it
// when the holder dies, so a killed `up` never leaves a stale lock.
type Lock struct{ f *os.File }

// AcquireLock takes the lab's lock without waiting.
func AcquireLock(lab string) (*Lock, error) {
	dir := StateDir(lab)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("%w: another setup up/down (pid %s) is working on lab %q; "+
			"wait for it to finish", ErrLocked, strings.TrimSpace(string(holder)), lab)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release drops the lock.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

func sortStrings(s []string) { sort.Strings(s) }
