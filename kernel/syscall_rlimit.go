package kernel

import (
	"syscall"

	"luomodel/kernel/vfs"
)

// RLIMIT_NOFILE is the resource number of the open-file limit.
const RLIMIT_NOFILE = 7

// rlimNLimits ports RLIM_NLIMITS: resource numbers at or above it are
// invalid.
const rlimNLimits = 16

// RLIM_INFINITY ports RLIM_INFINITY, "no limit".
const RLIM_INFINITY = ^uint64(0)

// NrOpenMax ports INR_OPEN_MAX, the default hard RLIMIT_NOFILE.
const NrOpenMax = 4096

// Setrlimit ports kernel/sys.c:do_prlimit() for setrlimit(2) on the
// calling process, for RLIMIT_NOFILE, the only limit the model has:
// EINVAL for a resource outside [0, RLIM_NLIMITS), for another resource
// (not modelled), or for cur > max; EPERM for a max above sysctl_nr_open
// (vfs.NrOpen; RLIM_INFINITY included). Tasks run as root
// (CAP_SYS_RESOURCE), so raising the hard limit up to nr_open is allowed.
// Lowering the limit closes nothing: fds above it stay usable, only new
// ones are bounded.
func (t *Task) Setrlimit(resource int, cur, max uint64) error {
	_, err := doSyscall(t, "setrlimit", 0, func(*vfs.Context) (int, error) {
		if resource < 0 || resource >= rlimNLimits || resource != RLIMIT_NOFILE {
			return 0, syscall.EINVAL
		}
		if cur > max {
			return 0, syscall.EINVAL
		}
		if max > vfs.NrOpen {
			return 0, syscall.EPERM
		}
		t.allocLock.Lock()
		defer t.allocLock.Unlock()
		t.nofileMax = max
		t.fds.SetLimit(int(cur))
		return 0, nil
	})
	return err
}

// Getrlimit ports kernel/sys.c:do_prlimit() for getrlimit(2):
// RLIMIT_NOFILE's soft and hard limits; EINVAL for any other resource.
func (t *Task) Getrlimit(resource int) (cur, max uint64, err error) {
	lim, err := doSyscall(t, "getrlimit", [2]uint64{}, func(*vfs.Context) ([2]uint64, error) {
		if resource != RLIMIT_NOFILE {
			return [2]uint64{}, syscall.EINVAL
		}
		t.allocLock.Lock()
		defer t.allocLock.Unlock()
		return [2]uint64{uint64(t.fds.Limit()), t.nofileMax}, nil
	})
	return lim[0], lim[1], err
}
