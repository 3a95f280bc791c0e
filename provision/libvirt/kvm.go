package libvirt

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// kvmDevice is a variable so tests can point it elsewhere.
var kvmDevice = "/dev/kvm"

// FixKVMAccess gives /dev/kvm the owner and mode Debian's udev rules give
// it (group kvm, mode 0660), like `chgrp kvm /dev/kvm; chmod 0660
// /dev/kvm`, and reports whether it changed anything. On hosts without
// udev the device stays root-only; libvirtd then probes QEMU as root with
// KVM, finds KVM unusable for libvirt-qemu on every later lookup, and
// re-probes every emulator binary each time: each domain define or start
// costs ~30 s instead of milliseconds. A host without /dev/kvm or without
// group kvm is left alone. The change is not undone by teardown: it is the
// distribution's default.
func FixKVMAccess() (changed bool, err error) {
	st, err := os.Stat(kvmDevice)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", kvmDevice, err)
	}
	grp, err := user.LookupGroup("kvm")
	if err != nil {
		return false, nil
	}
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return false, fmt.Errorf("group kvm: gid %q: %w", grp.Gid, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false, nil
	}
	if int(sys.Gid) == gid && st.Mode().Perm()&0o060 == 0o060 {
		return false, nil
	}
	if err := os.Chown(kvmDevice, -1, gid); err != nil {
		return false, fmt.Errorf("chgrp kvm %s: %w", kvmDevice, err)
	}
	if err := os.Chmod(kvmDevice, st.Mode().Perm()|0o660); err != nil {
		return false, fmt.Errorf("chmod %s: %w", kvmDevice, err)
	}
	return true, nil
}
