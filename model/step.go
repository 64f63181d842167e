package model

import "syscall"

// Step applies op to s and returns the result the kernel must produce and
// the next state. s is not modified: the next state shares what op does
// not change with s, and copies the rest on write (cow.go).
func Step(s State, op Op) (Result, State) {
	n := s.stepCopy()
	r := n.apply(op)
	return r, n
}

// Apply applies op to s in place and returns the result the kernel must
// produce; it is Step without the copy, for a caller that keeps no older
// version of s (the lockstep checker). What s shares with states Step
// copied it from or to is copied before it is written.
func (s *State) Apply(op Op) Result { return s.apply(op) }

// apply mutates s by op, through the copy-on-write accessors. The handler
// and FLB callbacks it makes are left in s.Calls.
func (s *State) apply(op Op) Result {
	r := s.applyOp(op)
	s.settleTestModulePins()
	return r
}

// applyOp is apply without the test module's pin floor.
func (s *State) applyOp(op Op) Result {
	s.Calls = s.Calls[:0:0]
	switch op.Kind {
	case OpNewTask:
		id := s.NextTask
		s.NextTask++
		s.addTask(id, newTask())
		return okResult(int64(id))
	case OpKexec:
		if e := s.reboot(); e != 0 {
			return errResult(e)
		}
		s.kexec()
		return okResult(0)
	case OpTestCtl:
		return s.testCtl(op)
	case OpRegisterHandler:
		return errResult(s.registerHandler())
	case OpUnregisterHandler:
		return errResult(s.unregisterHandler())
	}
	t := s.Tasks[op.Task]
	if t == nil || !t.Alive {
		if op.Kind == OpIoctl {
			return Result{Errno: syscall.ESRCH, Data: cloneBytes(op.Buf)}
		}
		return errResult(syscall.ESRCH)
	}
	switch op.Kind {
	case OpExit:
		s.exit(t)
		return okResult(0)
	case OpOpen:
		return s.open(t, op.Path, op.Flags)
	case OpClose:
		return s.closeFD(t, op.FD)
	case OpDup:
		return s.dup(t, op.FD)
	case OpIoctl:
		buf := cloneBytes(op.Buf)
		e, ret := s.ioctl(t, op.FD, op.Cmd, buf)
		if e != 0 {
			// The kernel never writes the user buffer on failure.
			return Result{Errno: e, Data: cloneBytes(op.Buf)}
		}
		return Result{Ret: ret, Data: buf}
	case OpRead:
		return s.read(t, op.FD, op.N)
	case OpWrite:
		return s.write(t, op.FD, op.Buf)
	case OpLseek:
		return s.lseek(t, op.FD, op.Off, op.Whence)
	case OpFtruncate:
		return s.ftruncate(t, op.FD, op.Off)
	case OpMemfdCreate:
		return s.memfdCreate(t, op.Name, op.Flags)
	case OpInitModule:
		return s.loadModule(op.Name)
	case OpDeleteModule:
		return s.deleteModule(op.Name)
	case OpFork:
		return s.fork(t)
	case OpExec:
		s.exec(t)
		return okResult(0)
	case OpFcntl:
		return s.fcntl(t, op.FD, int(op.Cmd), op.Arg)
	case OpSetrlimit:
		return s.setrlimit(t, op.Arg, op.Cur, op.Max)
	case OpDropCaches:
		return s.dropCaches(op.Arg)
	}
	return errResult(syscall.ENOSYS)
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// allocFD is get_unused_fd_flags(): the lowest free fd below the limit.
func (t *Task) allocFD() (int, syscall.Errno) { return t.allocFDFrom(0) }

// allocFDFrom is alloc_fd(start, RLIMIT_NOFILE): the lowest free fd in
// [start, limit). Like alloc_fd() it starts at next_fd when start is
// below it, and moves next_fd up to what it found. t must be writable
// (wTask).
func (t *Task) allocFDFrom(start int) (int, syscall.Errno) {
	fd := t.freeFDFrom(start)
	if fd < 0 {
		return -1, syscall.EMFILE
	}
	if start <= t.nextFD {
		t.nextFD = fd
	}
	return fd, 0
}

// freeFDFrom is allocFDFrom's search, without moving next_fd: the lowest
// free fd in [start, limit), or -1.
func (t *Task) freeFDFrom(start int) int {
	from := max(start, t.nextFD)
	for fd := from; fd < t.Nofile; fd++ {
		if _, used := t.FDs[fd]; !used {
			return fd
		}
	}
	return -1
}

// hasFreeFD says whether allocFD would succeed. Fewer fds than the limit
// in all means a free one below it (fds above a lowered limit count too).
func (t *Task) hasFreeFD() bool {
	return len(t.FDs) < t.Nofile || t.freeFDFrom(0) >= 0
}

// reserveFD is the failure half of get_unused_fd_flags(), which every
// fd-returning call runs before it changes anything: EMFILE when every fd
// below the limit is taken, else ENOMEM if the get_unused_fd_flags fault
// site is armed (expand_files() failing to allocate), else 0.
func (s *State) reserveFD(t *Task) syscall.Errno {
	if !t.hasFreeFD() {
		return syscall.EMFILE
	}
	if s.failAt(FaultGetUnusedFD) {
		return syscall.ENOMEM
	}
	return 0
}

// newFile creates an open file description with one reference.
func (s *State) newFile(f File) FileID {
	id := s.NextFile
	s.NextFile++
	f.Refs = 1
	s.addFile(id, &f)
	s.countFile(&f, 1)
	if f.Kind == KindMemfd {
		s.wInode(f.Inode).Refs++
	}
	return id
}

// newInode creates a memfd inode holding data.
func (s *State) newInode(data []byte) InodeID {
	id := s.NextInode
	s.NextInode++
	s.addInode(id, &Inode{Data: data, Seals: SealSeal})
	return id
}

// install puts file at the lowest free fd (the reference is the caller's),
// close-on-exec clear.
func (s *State) install(t *Task, id FileID) int { return s.installFlags(t, id, false) }

// installFlags is install with close-on-exec as cloexec says
// (get_unused_fd_flags(O_CLOEXEC) or not).
func (s *State) installFlags(t *Task, id FileID, cloexec bool) int {
	t = s.wTask(t.id)
	fd, _ := t.allocFD()
	t.setFD(fd, id, cloexec)
	return fd
}

// setFD puts file id at fd with the given close-on-exec flag. t must be
// writable (wTask).
func (t *Task) setFD(fd int, id FileID, cloexec bool) {
	t.FDs[fd] = id
	if cloexec {
		if t.Cloexec == nil {
			t.Cloexec = map[int]bool{}
		}
		t.Cloexec[fd] = true
	} else {
		delete(t.Cloexec, fd)
	}
}

// get takes one more reference on an open file description.
func (s *State) get(id FileID) { s.wFile(id).Refs++ }

// put drops one reference; the last one releases the file (fput()).
func (s *State) put(id FileID) {
	f := s.wFile(id)
	f.Refs--
	if f.Refs > 0 {
		return
	}
	delete(s.filesW(), id)
	s.countFile(f, -1)
	switch f.Kind {
	case KindDevice:
		s.DevInUse = false // luo_release()
	case KindSession:
		s.sessionRelease(f.Session)
	case KindMemfd:
		in := s.wInode(f.Inode)
		in.Refs--
		if in.Refs == 0 {
			delete(s.inodesW(), f.Inode)
		}
	case KindTest:
		// The test device's release; the module reference goes.
		delete(s.testFilesW(), f.Test)
	}
}

// fget looks fd up in t; EBADF if it is not open.
func (s *State) fget(t *Task, fd int) (FileID, *File, syscall.Errno) {
	id, ok := t.FDs[fd]
	if !ok {
		return 0, nil, syscall.EBADF
	}
	return id, s.Files[id], 0
}

func (s *State) exit(t *Task) {
	t = s.wTask(t.id)
	for _, fd := range t.sortedFDs() {
		id := t.FDs[fd]
		t.removeFD(fd)
		s.put(id)
	}
	t.Alive = false
}

// open ports do_sys_openat2(): the fd is reserved before the lookup.
func (s *State) open(t *Task, path string, flags int) Result {
	if e := s.reserveFD(t); e != 0 {
		return errResult(e)
	}
	// Access mode 3 opens for ioctl only (neither read nor write).
	acc := flags & OAccmode
	f := File{Readable: acc == ORdonly || acc == ORdwr, Writable: acc == OWronly || acc == ORdwr}
	switch {
	case path == DevNull:
		f.Kind = KindNull
	case path == DevLiveUpdateTest:
		return okResult(int64(s.installFlags(t, s.openTestFile(f), flags&OCloexec != 0)))
	case path == DevLiveUpdate && s.Enabled:
		// luo_open(): exclusive, then the lazy deserialize.
		if s.DevInUse {
			return errResult(syscall.EBUSY)
		}
		if !s.Deserialized {
			s.Deserialized = true
			s.deserialize()
		}
		if s.DeserializeErr != 0 {
			return errResult(syscall.EIO)
		}
		s.DevInUse = true
		f.Kind = KindDevice
	default:
		return errResult(syscall.ENOENT)
	}
	return okResult(int64(s.installFlags(t, s.newFile(f), flags&OCloexec != 0)))
}

func (s *State) closeFD(t *Task, fd int) Result {
	id, ok := t.FDs[fd]
	if !ok {
		return errResult(syscall.EBADF)
	}
	s.wTask(t.id).removeFD(fd)
	s.put(id)
	return okResult(0)
}

func (s *State) dup(t *Task, fd int) Result {
	id, _, e := s.fget(t, fd)
	if e != 0 {
		return errResult(e)
	}
	if e := s.reserveFD(t); e != 0 {
		return errResult(e)
	}
	s.get(id)
	return okResult(int64(s.install(t, id)))
}
