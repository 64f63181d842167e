package model

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
			h.files = append(h.files, InFile{
				Token: f.Token,
				Data:  s.Inodes[file.Inode].Data,
				Pos:   file.Pos,
			})
		}
		next = append(next, h)
	}
	for _, t := range s.Tasks {
		t.Alive = false
		t.FDs = map[int]FileID{}
	}
	s.Files = map[FileID]*File{}
	s.Inodes = map[InodeID]*Inode{}
	s.Sessions = map[SessionID]*Session{}
	s.Preserved = map[InodeID]bool{}
	s.Outgoing = nil
	s.Incoming = nil
	s.DevInUse = false
	s.Deserialized = false
	s.DeserializeErr = 0
	switch {
	case s.SetupFailed:
		s.Enabled, s.SetupFailed = true, false
		s.LiveUpdateNum = 0
	case s.Enabled:
		s.LiveUpdateNum++
	}
	if s.Enabled && s.failAt(FaultLUOFDTSetup) {
		s.Enabled, s.SetupFailed = false, true
	}
	for _, h := range next {
		sid := s.NextSession
		s.NextSession++
		s.Sessions[sid] = &Session{Name: h.name, Incoming: true, In: h.files}
		s.Incoming = append(s.Incoming, sid)
	}
}

// Kexec returns the state after a successful live update of s.
func Kexec(s State) State {
	n := s.Clone()
	n.kexec()
	return n
}
