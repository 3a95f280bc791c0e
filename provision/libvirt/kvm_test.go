package libvirt

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

func TestFixKVMAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group needs root")
	}
	grp, err := user.LookupGroup("kvm")
	if err != nil {
		t.Skip("no group kvm on this host")
	}
	old := kvmDevice
	kvmDevice = filepath.Join(t.TempDir(), "kvm")
	t.Cleanup(func() { kvmDevice = old })
	if err := os.WriteFile(kvmDevice, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := FixKVMAccess()
	if err != nil || !changed {
		t.Fatalf("first fix: changed %v, err %v", changed, err)
	}
	st, _ := os.Stat(kvmDevice)
	gid, _ := strconv.Atoi(grp.Gid)
	if st.Mode().Perm() != 0o660 || int(st.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Errorf("after fix: mode %o gid %d, want 660 gid %d", st.Mode().Perm(),
			st.Sys().(*syscall.Stat_t).Gid, gid)
	}
	if changed, err := FixKVMAccess(); err != nil || changed {
		t.Errorf("second fix: changed %v, err %v; want a no-op", changed, err)
	}
}

func TestFixKVMAccessWithoutDevice(t *testing.T) {
	old := kvmDevice
	kvmDevice = filepath.Join(t.TempDir(), "absent")
	t.Cleanup(func() { kvmDevice = old })
	if changed, err := FixKVMAccess(); err != nil || changed {
		t.Errorf("no device: changed %v, err %v", changed, err)
	}
}
