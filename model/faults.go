package model

import "syscall"

// This file is the model's side of fault injection (issue 8): the outcome
// of an operation run while one fault site of the port is armed to fail
// its next call. Site names are those of kernel/fault (the model imports
// nothing of the port). Before a kexec every injected failure must undo
// itself: the predicted state is the unchanged one, except where Linux
// documents a side effect.

// Fault sites the model predicts.
const (
	FaultCopyToUser    = "copy_to_user"
	FaultSessionAlloc  = "luo_session_alloc"
	FaultAnonInode     = "anon_inode_getfile"
	FaultHandlerFreeze = "handler_freeze"
	FaultKHOFinalize   = "kho_finalize"
	FaultCanFinish     = "handler_can_finish"
)

// FaultSites lists the sites ApplyFault knows.
var FaultSites = []string{FaultCopyToUser, FaultSessionAlloc, FaultAnonInode, FaultHandlerFreeze, FaultKHOFinalize, FaultCanFinish}

// ApplyFault applies op to s in place as the port runs it with site armed
// to fail its next call (the site is disarmed after op), and returns the
// result the kernel must produce. ok is false, and s untouched, for a pair
// the model does not predict.
//
//   - CREATE_SESSION with luo_session_alloc: ENOMEM wherever the call
//     would have reached the allocation (it comes before the list's limit
//     and duplicate checks); anon_inode_getfile and copy_to_user: ENOMEM
//     and EFAULT where it would have succeeded (the new session is
//     released again); nothing changes.
//   - kexec with kho_finalize: EAGAIN (LUO undoes its serialization);
//     with handler_freeze: EIO if any outgoing session holds a file, and
//     every session stays unfrozen; nothing changes.
//   - SESSION_FINISH with handler_can_finish: EBUSY where a session with
//     files would have finished; nothing changes.
//
// Otherwise the site is not reached and the normal outcome stands.
func (s *State) ApplyFault(site string, op Op) (res Result, ok bool) {
	kind := s.faultOpKind(op)
	switch {
	case kind == IoctlCreateSession && (site == FaultSessionAlloc || site == FaultAnonInode || site == FaultCopyToUser):
	case op.Kind == OpKexec && (site == FaultKHOFinalize || site == FaultHandlerFreeze):
	case kind == IoctlSessionFinish && site == FaultCanFinish:
	default:
		return Result{}, false
	}
	hadFiles := false
	if kind == IoctlSessionFinish {
		se := s.sessionOf(op)
		hadFiles = se != nil && len(se.In) > 0
	}
	outFiles := false
	for _, id := range s.Outgoing {
		if len(s.Sessions[id].Out) > 0 {
			outFiles = true
		}
	}

	next := s.Clone()
	r := next.apply(op)
	fail := func(e syscall.Errno) (Result, bool) {
		if op.Kind == OpIoctl {
			return Result{Errno: e, Data: cloneBytes(op.Buf)}, true
		}
		return Result{Errno: e}, true
	}
	switch site {
	case FaultSessionAlloc:
		if r.Errno == 0 || r.Errno == syscall.EEXIST || r.Errno == syscall.ENOMEM {
			return fail(syscall.ENOMEM)
		}
	case FaultAnonInode:
		if r.Errno == 0 {
			return fail(syscall.ENOMEM)
		}
	case FaultCopyToUser:
		if r.Errno == 0 {
			return fail(syscall.EFAULT)
		}
	case FaultKHOFinalize:
		if s.Enabled {
			return fail(syscall.EAGAIN)
		}
		return fail(syscall.ENOMEM)
	case FaultHandlerFreeze:
		if s.Enabled && outFiles {
			return fail(syscall.EIO)
		}
	case FaultCanFinish:
		if r.Errno == 0 && hadFiles {
			return fail(syscall.EBUSY)
		}
	}
	*s = next
	return r, true
}

// faultOpKind returns the ioctl command of op if op is an ioctl on a live
// task's open fd, else 0.
func (s *State) faultOpKind(op Op) uint32 {
	if op.Kind != OpIoctl {
		return 0
	}
	t := s.Tasks[op.Task]
	if t == nil || !t.Alive {
		return 0
	}
	if _, ok := t.FDs[op.FD]; !ok {
		return 0
	}
	return op.Cmd
}

// sessionOf returns the session whose file op's fd refers to, or nil.
func (s *State) sessionOf(op Op) *Session {
	t := s.Tasks[op.Task]
	if t == nil {
		return nil
	}
	fid, ok := t.FDs[op.FD]
	if !ok {
		return nil
	}
	f := s.Files[fid]
	if f == nil || f.Kind != KindSession {
		return nil
	}
	return s.Sessions[f.Session]
}
