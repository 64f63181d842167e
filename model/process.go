package model

import (
	"sort"
	"syscall"
)

// Process operations: fork, exec, fcntl on fd flags, and RLIMIT_NOFILE.

// fcntl commands, fd flags and rlimit values (Linux values).
const (
	FDupfd        = 0    // F_DUPFD
	FGetfd        = 1    // F_GETFD
	FSetfd        = 2    // F_SETFD
	FDupfdCloexec = 1030 // F_DUPFD_CLOEXEC
	FAddSeals     = 1033 // F_ADD_SEALS
	FGetSeals     = 1034 // F_GET_SEALS
	FdCloexec     = 1    // FD_CLOEXEC

	RlimitNofile = 7  // RLIMIT_NOFILE
	rlimNLimits  = 16 // RLIM_NLIMITS
	// NrOpen is sysctl_nr_open: RLIMIT_NOFILE's hard limit may not
	// exceed it.
	NrOpen = 1 << 20
	// NofileMaxDefault is INR_OPEN_MAX, a new task's hard RLIMIT_NOFILE.
	NofileMaxDefault = 4096
	RlimInfinity     = ^uint64(0) // RLIM_INFINITY
)

// FcntlName is the C name of an fcntl command, "" for one the model does
// not know.
func FcntlName(cmd int) string {
	switch cmd {
	case FDupfd:
		return "F_DUPFD"
	case FGetfd:
		return "F_GETFD"
	case FSetfd:
		return "F_SETFD"
	case FDupfdCloexec:
		return "F_DUPFD_CLOEXEC"
	case FAddSeals:
		return "F_ADD_SEALS"
	case FGetSeals:
		return "F_GET_SEALS"
	}
	return ""
}

// sortedFDs returns the task's fds, ascending.
func (t *Task) sortedFDs() []int {
	fds := make([]int, 0, len(t.FDs))
	for fd := range t.FDs {
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	return fds
}

// fork is fork(2) as far as files go (dup_fd()): a new task with the same
// fds on the same open files (one more reference each), the same
// close-on-exec flags and the same RLIMIT_NOFILE. Ret is the child.
func (s *State) fork(t *Task) Result {
	id := s.NextTask
	s.NextTask++
	child := t.clone()
	for _, fid := range child.FDs {
		s.get(fid)
	}
	s.addTask(id, child)
	return okResult(int64(id))
}

// exec is execve(2)'s do_close_on_exec(): every close-on-exec fd is
// closed, lowest first; a file whose last reference goes is released (a
// session fd: the session's release).
func (s *State) exec(t *Task) {
	for _, fd := range t.sortedFDs() {
		if t.Cloexec[fd] {
			t = s.wTask(t.id)
			id := t.FDs[fd]
			t.removeFD(fd)
			s.put(id)
		}
	}
}

// fcntl is fcntl(2) for the fd commands: EBADF first; F_DUPFD and
// F_DUPFD_CLOEXEC give the lowest free fd >= arg (EINVAL unless
// 0 <= arg < RLIMIT_NOFILE, EMFILE if none is free, ENOMEM where the
// get_unused_fd_flags fault site fails the reservation); F_GETFD returns
// FD_CLOEXEC or 0; F_SETFD sets the flag from arg&FD_CLOEXEC and returns
// 0; any other command is EINVAL.
func (s *State) fcntl(t *Task, fd, cmd, arg int) Result {
	id, f, e := s.fget(t, fd)
	if e != 0 {
		return errResult(e)
	}
	switch cmd {
	case FAddSeals:
		return s.addSeals(f, uint32(arg))
	case FGetSeals:
		if f.Kind != KindMemfd {
			return errResult(syscall.EINVAL)
		}
		return okResult(int64(s.Inodes[f.Inode].Seals))
	case FDupfd, FDupfdCloexec:
		if arg < 0 || arg >= t.Nofile {
			return errResult(syscall.EINVAL)
		}
		if t.freeFDFrom(arg) < 0 {
			return errResult(syscall.EMFILE)
		}
		t = s.wTask(t.id)
		nfd, _ := t.allocFDFrom(arg)
		if s.failAt(FaultGetUnusedFD) {
			return errResult(syscall.ENOMEM)
		}
		s.get(id)
		t.setFD(nfd, id, cmd == FDupfdCloexec)
		return okResult(int64(nfd))
	case FGetfd:
		if t.Cloexec[fd] {
			return okResult(FdCloexec)
		}
		return okResult(0)
	case FSetfd:
		s.wTask(t.id).setFD(fd, id, arg&FdCloexec != 0)
		return okResult(0)
	}
	return errResult(syscall.EINVAL)
}

// addSeals is fcntl(F_ADD_SEALS) (mm/memfd.c:memfd_add_seals()): EPERM
// for a file not open for writing, EINVAL for an unknown seal or a file
// that is not a memfd, EPERM once F_SEAL_SEAL is set, EBUSY for a first
// F_SEAL_WRITE while LUO pins the folios (an outgoing preserved, frozen,
// non-empty memfd: memfd_wait_for_pins() gives up). F_SEAL_EXEC on an
// executable memfd brings the write and size seals with it.
func (s *State) addSeals(f *File, seals uint32) Result {
	if !f.Writable {
		return errResult(syscall.EPERM)
	}
	if seals&^sealsAll != 0 || f.Kind != KindMemfd {
		return errResult(syscall.EINVAL)
	}
	in := s.Inodes[f.Inode]
	if in.Seals&SealSeal != 0 {
		return errResult(syscall.EPERM)
	}
	if seals&SealWrite != 0 && in.Seals&SealWrite == 0 && in.Frozen && len(in.Data) > 0 {
		return errResult(syscall.EBUSY)
	}
	if seals&SealExec != 0 && !in.NoExec {
		seals |= SealShrink | SealGrow | SealWrite | SealFutureWrite
	}
	s.wInode(f.Inode).Seals |= seals
	return okResult(0)
}

// setrlimit is setrlimit(2) for RLIMIT_NOFILE, the only resource the port
// models (any other is EINVAL): EINVAL for cur > max, EPERM for max above
// sysctl_nr_open; tasks are root, so the hard limit may rise. Lowering the
// soft limit closes nothing.
func (s *State) setrlimit(t *Task, resource int, cur, max uint64) Result {
	if resource < 0 || resource >= rlimNLimits || resource != RlimitNofile || cur > max {
		return errResult(syscall.EINVAL)
	}
	if max > NrOpen {
		return errResult(syscall.EPERM)
	}
	t = s.wTask(t.id)
	t.Nofile, t.NofileMax = int(cur), max
	return okResult(0)
}
