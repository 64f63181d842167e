package model

import "syscall"

// kexec predicts a successful live update: outgoing sessions with an open
// file become the next kernel's incoming sessions (not retrieved, same
// order, same tokens, each memfd's contents, size and position); every
// task, file and incoming session of this kernel is gone; the device is
// closed; the liveupdate number grows by one; the new kernel has not
// deserialized yet (a failure cached by this one is forgotten). Memfd names, seals and
// close-on-exec do not survive.
//
// A kernel without LUO (off on the command line, or SetupFailed) hands no
// LUO tree over: the next kernel's liveupdate number is 0, and after a
// failed setup LUO is enabled again.
// The next kernel's luo_late_startup() runs luo_fdt_setup(); if the
// luo_fdt_setup fault site fails it, that kernel has LUO disabled
// (SetupFailed) and its incoming sessions are unreachable.
func (s *State) kexec() {
	type handed struct {
		name  string
		files []InFile
	}
	var next []handed
	for _, sid := range s.Outgoing {
		se := s.Sessions[sid]
		h := handed{name: se.Name}
		for _, f := range se.Out {
			file := s.Files[f.File]
			if file.Kind == KindTest {
				h.files = append(h.files, InFile{
					Token:   f.Token,
					Handler: TestCompatible,
					Test:    file.Test,
					Data:    s.TestFiles[file.Test].Payload,
					Pos:     file.Pos,
				})
				continue
			}
			h.files = append(h.files, InFile{
				Token:   f.Token,
				Handler: MemfdCompatible,
				Data:    s.Inodes[file.Inode].Data,
				Pos:     file.Pos,
			})
		}
		next = append(next, h)
	}
	for id := range s.tasksW() {
		t := s.wTask(id)
		t.Alive = false
		t.FDs = map[int]FileID{}
		t.Cloexec = map[int]bool{}
		t.nextFD = 0
	}
	// New maps, the state's own.
	c := s.own()
	s.Files, c.files = map[FileID]*File{}, true
	s.openKinds, s.openIncoming = [KindTest + 1]int{}, 0
	s.Inodes, c.inodes = map[InodeID]*Inode{}, true
	s.Sessions, c.sessions = map[SessionID]*Session{}, true
	s.Preserved, c.preserved = map[InodeID]bool{}, true
	// An empty FLB block is still handed over by a kernel with LUO.
	s.FLBIn, s.FLBInActive = nil, s.Enabled
	if s.Enabled {
		s.FLBIn = s.flbSerialize()
	}
	s.PreservedTest, c.preservedTest = map[TestFileID]bool{}, true
	s.TestFiles, c.testFiles = map[TestFileID]*TestFile{}, true
	s.Test = TestModule{} // modules do not survive a kexec
	s.TestCtl = TestControls{Refuse: map[TestFileID]bool{}}
	s.Outgoing, s.outNames = nil, nil
	s.Incoming = nil
	c.outgoing, c.incoming, c.outNames = true, true, true
	s.DevInUse = false
	s.Deserialized = false
	s.DeserializeErr = 0
	s.MemfdUnregistered = false // the new kernel's memfd_luo_init()
	s.Image = nil
	switch {
	case s.SetupFailed:
		s.Enabled, s.SetupFailed = true, false
		s.LiveUpdateNum = 0
	case s.Enabled:
		s.LiveUpdateNum++
	}
	if s.Enabled {
		for range fdtSetupSteps {
			if s.failAt(FaultLUOFDTSetup) {
				s.Enabled, s.SetupFailed = false, true
				break
			}
		}
	}
	if !s.Enabled {
		s.FLBIn, s.FLBInActive = nil, false
	}
	for _, h := range next {
		sid := s.NextSession
		s.NextSession++
		s.addSession(sid, &Session{Name: h.name, Incoming: true, In: h.files})
		s.Incoming = append(s.Incoming, sid)
	}
}

// fdtSetupSteps is the number of steps of the next kernel's
// luo_fdt_setup() (the reservation map, the root node, its two
// properties, the session block, the FLB block, the node's end, the
// finish), each of which the luo_fdt_setup site can fail: whichever
// fails, everything set up before it is undone and LUO is disabled.
const fdtSetupSteps = 8

// Kexec returns the state after a successful live update of s.
func Kexec(s State) State {
	n := s.CopyOnWrite()
	n.kexec()
	return n
}

// reboot ports the failure half of liveupdate_reboot(): luo_session_
// serialize() freezes every outgoing session in list order and each
// session's files in preservation order (the handler_freeze site fails a
// file's freeze without calling the handler). A failed freeze unfreezes
// the files frozen before it in that session (forward), then every
// session frozen before it (in reverse, each one's files forward), and is
// the reboot's errno. Then luo_flb_serialize() (no callbacks) and
// kho_finalize(): a failure there unfreezes every session the same way
// (the port's repair) and is EAGAIN. A kernel without LUO fails only at
// kho_finalize() (ENOMEM).
func (s *State) reboot() syscall.Errno {
	if !s.Enabled {
		if s.failAt(FaultKHOFinalize) {
			return syscall.ENOMEM
		}
		return 0
	}
	for i, sid := range s.Outgoing {
		se := s.Sessions[sid]
		for j, of := range se.Out {
			if e := s.freezeOne(se, of); e != 0 {
				s.unfreezeFiles(se, j)
				s.unfreezeSessions(i)
				return e
			}
		}
	}
	if s.failAt(FaultKHOFinalize) {
		s.unfreezeSessions(len(s.Outgoing))
		return syscall.EAGAIN
	}
	return 0
}

// freezeOne ports luo_file_freeze_one().
func (s *State) freezeOne(se *Session, of OutFile) syscall.Errno {
	if s.failAt(FaultHandlerFreeze) {
		return syscall.EIO
	}
	f := s.Files[of.File]
	if f.Kind == KindTest {
		return s.testCallback(f.Test, CbFreeze)
	}
	s.recordHandler(MemfdCompatible, CbFreeze, ObjRef{Session: se.Name, Token: of.Token}, 0)
	return 0
}

// unfreezeFiles ports __luo_file_unfreeze(): the first n files, forward
// (memfd has no unfreeze).
func (s *State) unfreezeFiles(se *Session, n int) {
	for _, of := range se.Out[:n] {
		if f := s.Files[of.File]; f.Kind == KindTest {
			s.recordHandler(TestCompatible, CbUnfreeze, ObjRef{Test: f.Test}, 0)
		}
	}
}

// unfreezeSessions unfreezes the first n outgoing sessions, last first.
func (s *State) unfreezeSessions(n int) {
	for i := n - 1; i >= 0; i-- {
		se := s.Sessions[s.Outgoing[i]]
		s.unfreezeFiles(se, len(se.Out))
	}
}
