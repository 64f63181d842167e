package model

import (
	"encoding/binary"
	"syscall"
)

// This file is the model's side of fault injection (issue 8): the outcome
// of an operation run while one fault site of the port is armed to fail
// its next call. Site names are those of kernel/fault (the model imports
// nothing of the port). Before a kexec every injected failure must undo
// itself: the predicted state is the unchanged one, except where Linux
// documents a side effect. After a kexec a failure fails safe: a failed
// deserialization makes every later open of /dev/liveupdate fail with EIO.

// Fault sites the model predicts.
const (
	FaultCopyToUser       = "copy_to_user"
	FaultSessionAlloc     = "luo_session_alloc"
	FaultAnonInode        = "anon_inode_getfile"
	FaultHandlerFreeze    = "handler_freeze"
	FaultKHOFinalize      = "kho_finalize"
	FaultCanFinish        = "handler_can_finish"
	FaultFileAlloc        = "luo_file_alloc"
	FaultHandlerPreserve  = "handler_preserve"
	FaultKHOAllocPreserve = "kho_alloc_preserve"
	FaultHandlerRetrieve  = "handler_retrieve"
	// The sites below are consumed in place (failAt) where the model
	// runs the step the port consults them at, and may be armed for a
	// later call than the next (ApplyFaultNth).
	FaultGetUnusedFD      = "get_unused_fd_flags"
	FaultAllocPages       = "alloc_pages"
	FaultKHOPreserveFolio = "kho_preserve_folio"
	FaultKHOPreservePages = "kho_preserve_pages"
	FaultLUOFDTSetup      = "luo_fdt_setup"
	// An FLB's preserve (the first file using it) and retrieve fail
	// without the FLB being called.
	FaultFLBPreserve = "flb_preserve"
	FaultFLBRetrieve = "flb_retrieve"
)

// FaultSites lists the sites ApplyFault knows.
var FaultSites = []string{
	FaultCopyToUser, FaultSessionAlloc, FaultAnonInode, FaultHandlerFreeze, FaultKHOFinalize,
	FaultCanFinish, FaultFileAlloc, FaultHandlerPreserve, FaultKHOAllocPreserve, FaultHandlerRetrieve,
	FaultGetUnusedFD, FaultAllocPages, FaultKHOPreserveFolio, FaultKHOPreservePages, FaultLUOFDTSetup,
	FaultFLBPreserve, FaultFLBRetrieve,
}

// armedFault is a site armed to fail its nth call within one operation,
// as fault.Attr{Nth: nth} arms the port's.
type armedFault struct {
	site  string
	nth   int
	calls int
}

// failAt is the model's should_fail() for site: it counts a call of an
// armed site and reports whether this call is the one to fail, which
// disarms the site.
func (s *State) failAt(site string) bool {
	if s.armed.site != site {
		return false
	}
	s.armed.calls++
	if s.armed.calls < s.armed.nth {
		return false
	}
	s.armed = armedFault{}
	return true
}

// applyArmed applies op with site armed to fail its nth call.
func (s *State) applyArmed(site string, nth int, op Op) Result {
	s.armed = armedFault{site: site, nth: nth}
	r := s.apply(op)
	s.armed = armedFault{}
	return r
}

// ApplyFaultNth is ApplyFault with the site armed to fail its nth call
// within op instead of the next one (fault.Attr{Nth: nth}); the sites
// consumed in place take any nth >= 1, the others only 1.
//
//   - get_unused_fd_flags (every fd-returning call: open, dup,
//     memfd_create, CREATE_SESSION, RETRIEVE_SESSION, RETRIEVE_FD): ENOMEM
//     where the fd would have been reserved, after the checks that come
//     before it (ESRCH, the ioctl dispatch, EBADF of dup, memfd_create's
//     flags and name); a full table is EMFILE without reaching it. Nothing
//     changes: luo_open() and the LUO operation do not run.
//   - alloc_pages (nth 1 only): a memfd write ENOMEMs at the first page
//     that needs a folio (short if pages before it were written);
//     PRESERVE_FD of a memfd fails like kho_alloc_preserve (the first
//     allocation is the session's file array or the memfd_luo_ser).
//   - kho_preserve_folio: PRESERVE_FD's calls are the file array's (if
//     the session holds no file), the memfd_luo_ser's, then one per page
//     of the memfd; ENOMEM at the nth, and if that is a page's the holes
//     of the file were filled; the folios preserved before it are
//     unpreserved (memfd_luo_preserve_folios()'s unwind).
//   - kho_preserve_pages: PRESERVE_FD of a non-empty memfd preserves the
//     folio array through kho_preserve_vmalloc(); ENOMEM at the nth call,
//     with the holes filled.
//   - luo_fdt_setup: a kexec succeeds, but the next kernel's
//     luo_late_startup() fails, which disables LUO there (SetupFailed: no
//     /dev/liveupdate, ENOENT on open).
//
// memfdPreserve and kexec document the calls. A site armed for a call
// the operation does not make leaves the normal outcome.
func (s *State) ApplyFaultNth(site string, nth int, op Op) (res Result, ok bool) {
	if op.Kind == OpOpen && !s.Deserialized && (s.Image != nil || s.MemfdUnregistered) {
		// A deserialization that fails before the faults' sites (a
		// hostile image, no memfd handler) is not predicted with them.
		return Result{}, false
	}
	switch site {
	case FaultGetUnusedFD, FaultLUOFDTSetup, FaultHandlerFreeze, FaultKHOFinalize, FaultCanFinish,
		FaultHandlerPreserve, FaultHandlerRetrieve, FaultFLBPreserve, FaultFLBRetrieve:
		if nth < 1 {
			return Result{}, false
		}
	case FaultFileAlloc:
		// At open it fails the deserialization (ApplyFault); in
		// PRESERVE_FD it is the luo_file's allocation, in place.
		if op.Kind == OpOpen {
			if nth != 1 {
				return Result{}, false
			}
			return s.ApplyFault(site, op)
		}
		if nth < 1 {
			return Result{}, false
		}
	case FaultKHOPreserveFolio, FaultKHOPreservePages, FaultKHOAllocPreserve:
		// A kexec is not predicted: kho_finalize() and the next
		// kernel's boot allocate and preserve too.
		if op.Kind == OpKexec || nth < 1 {
			return Result{}, false
		}
	case FaultAllocPages:
		if op.Kind == OpKexec || nth != 1 {
			return Result{}, false
		}
	default:
		if nth != 1 {
			return Result{}, false
		}
		return s.ApplyFault(site, op)
	}
	next := s.Clone()
	r := next.applyArmed(site, nth, op)
	*s = next
	return r, true
}

// ApplyFault applies op to s in place as the port runs it with site armed
// to fail its next call (the site is disarmed after op), and returns the
// result the kernel must produce. ok is false, and s untouched, for a pair
// the model does not predict.
//
//   - CREATE_SESSION with luo_session_alloc: ENOMEM wherever the call
//     would have reached the allocation (it comes before the list's limit
//     and duplicate checks); with anon_inode_getfile: ENOMEM where it
//     would have succeeded (the new session is released again); nothing
//     changes.
//   - RETRIEVE_SESSION with anon_inode_getfile: ENOMEM where it would
//     have succeeded; the session stays unretrieved.
//   - Any LUO ioctl with copy_to_user, where it would have succeeded:
//     EFAULT, and the ioctl's effect stays (luo_ucmd_respond() comes
//     last) except that a new fd is not installed: its file's reference
//     is dropped, which releases a new session (CREATE_SESSION), finishes
//     a just retrieved one (RETRIEVE_SESSION), and leaves a retrieved
//     file with LUO's reference only (RETRIEVE_FD).
//   - PRESERVE_FD with luo_file_alloc or handler_preserve: ENOMEM where
//     it would have succeeded; with kho_alloc_preserve: ENOMEM where it
//     would have succeeded, and also where it would have failed with
//     ENOENT or EBUSY if the session holds no file yet (the file array is
//     allocated before the handler lookup); nothing changes.
//   - RETRIEVE_FD with handler_retrieve, on a file's first retrieve:
//     ENOMEM, remembered (M6): later RETRIEVE_FDs of the token return it
//     without the handler, and the file's data is gone.
//   - open of /dev/liveupdate that runs the deserialization of handed-over
//     sessions, with luo_session_alloc: EIO, cached (every later open
//     fails with EIO until the next kexec) and no session is restored;
//     with luo_file_alloc: likewise, but the sessions up to the first one
//     holding files are restored, that one without its files (its set
//     is unwound, M26). What the restored sessions hold stays leaked by
//     design.
//   - kexec with kho_finalize: EAGAIN (LUO undoes its serialization);
//     with handler_freeze: EIO if any outgoing session holds a file, and
//     every session stays unfrozen; nothing changes.
//   - SESSION_FINISH with handler_can_finish: EBUSY where a session with
//     files would have finished; nothing changes.
//
// The sites consumed in place are ApplyFaultNth's with nth 1. Otherwise
// the site is not reached and the normal outcome stands.
func (s *State) ApplyFault(site string, op Op) (res Result, ok bool) {
	switch site {
	case FaultGetUnusedFD, FaultAllocPages, FaultKHOPreserveFolio, FaultKHOPreservePages, FaultLUOFDTSetup,
		FaultHandlerFreeze, FaultKHOFinalize, FaultCanFinish, FaultHandlerPreserve, FaultHandlerRetrieve,
		FaultKHOAllocPreserve, FaultFLBPreserve, FaultFLBRetrieve:
		return s.ApplyFaultNth(site, 1, op)
	case FaultFileAlloc:
		if op.Kind != OpOpen {
			return s.ApplyFaultNth(site, 1, op)
		}
	}
	// Where the failure leaves s as it was, no callback ran.
	s.Calls = s.Calls[:0:0]
	kind := s.faultOpKind(op)
	isLUOIoctl := kind != 0 && s.faultFileKind(op) != KindNull && s.faultFileKind(op) != KindMemfd
	switch {
	case kind == IoctlCreateSession && (site == FaultSessionAlloc || site == FaultAnonInode):
	case kind == IoctlRetrieveSession && site == FaultAnonInode:
	case isLUOIoctl && site == FaultCopyToUser:
	case op.Kind == OpOpen && op.Path == DevLiveUpdate && (site == FaultSessionAlloc || site == FaultFileAlloc):
	default:
		return Result{}, false
	}
	deserializes := op.Kind == OpOpen && s.Enabled && !s.Deserialized && len(s.Incoming) > 0

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
		if op.Kind == OpOpen {
			// A deserialization that would fail later (EIO) fails
			// at its first session allocation instead.
			if (r.Errno == 0 || r.Errno == syscall.EIO) && deserializes {
				s.failDeserialize(syscall.ENOMEM, false)
				return fail(syscall.EIO)
			}
			break
		}
		if r.Errno == 0 || r.Errno == syscall.EEXIST || r.Errno == syscall.ENOMEM {
			return fail(syscall.ENOMEM)
		}
	case FaultAnonInode:
		if r.Errno == 0 {
			return fail(syscall.ENOMEM)
		}
	case FaultCopyToUser:
		if r.Errno == 0 {
			switch kind {
			case IoctlCreateSession, IoctlRetrieveSession, IoctlSessionRetrieveFD:
				// The fd was reserved, never installed; the caller's
				// reference on the new file is dropped.
				fd := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
				t := next.wTask(op.Task)
				fid := t.FDs[fd]
				t.removeFD(fd)
				next.put(fid)
			}
			*s = next
			return fail(syscall.EFAULT)
		}
	case FaultFileAlloc:
		if op.Kind == OpOpen {
			if (r.Errno == 0 || r.Errno == syscall.EIO) && deserializes && s.anyIncomingFiles() && !s.firstFileUnbound() {
				s.failDeserialize(syscall.ENOMEM, true)
				return fail(syscall.EIO)
			}
			break
		}
	}
	*s = next
	return r, true
}

// firstFileUnbound says whether the first handed-over file is a test
// file that no registered handler takes: the deserialization fails there
// (ENOENT) before it allocates a luo_file.
func (s *State) firstFileUnbound() bool {
	for _, id := range s.Incoming {
		if in := s.Sessions[id].In; len(in) > 0 {
			return in[0].Handler == TestCompatible && !s.testRegistered()
		}
	}
	return false
}

// anyIncomingFiles says whether a handed-over session holds a file.
func (s *State) anyIncomingFiles() bool {
	for _, id := range s.Incoming {
		if len(s.Sessions[id].In) > 0 {
			return true
		}
	}
	return false
}

// failDeserialize records a luo_session_deserialize() that failed with e
// at its first allocation: of a session (atFile false: nothing restored)
// or of a luo_file (atFile true: the sessions up to the first holding
// files are restored, that one without files). The result is cached.
func (s *State) failDeserialize(e syscall.Errno, atFile bool) {
	keep := 0
	if atFile {
		for i, id := range s.Incoming {
			if len(s.Sessions[id].In) > 0 {
				s.wSession(id).In = nil
				keep = i + 1
				break
			}
		}
	}
	for _, id := range s.Incoming[keep:] {
		delete(s.sessionsW(), id)
	}
	s.Incoming = s.Incoming[:keep:keep]
	s.Deserialized = true
	s.DeserializeErr = e
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

// faultFileKind returns the kind of the file op's fd refers to, or 0.
func (s *State) faultFileKind(op Op) FileKind {
	t := s.Tasks[op.Task]
	if t == nil {
		return 0
	}
	fid, ok := t.FDs[op.FD]
	if !ok {
		return 0
	}
	return s.Files[fid].Kind
}
