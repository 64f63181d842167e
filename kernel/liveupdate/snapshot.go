package liveupdate

import (
	"syscall"

	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// This file is not a port: it is the read-only view of LUO's state that
// the checker uses to test the spec's invariants (S*, F*, R*).

// DebugState is a copy of one kernel's LUO state, plain values only.
type DebugState struct {
	Enabled          bool
	LiveupdateNumber uint64
	// FDTOut and FDTIn are the PAs of the outgoing and incoming LUO FDTs.
	FDTOut, FDTIn mm.PhysAddr
	// InUse is /dev/liveupdate's exclusive-open flag.
	InUse bool
	// Deserialized tells whether luo_session_deserialize() ran, and
	// DeserializeErr its cached result (0 for success).
	Deserialized   bool
	DeserializeErr syscall.Errno
	// Serialized is true while a successful serialization holds the
	// subsystem frozen.
	Serialized bool
	Incoming   SessionListState
	Outgoing   SessionListState
	// Handlers are the registered compatibles, in registration order, and
	// HandlerUsers how many luo_files use each.
	Handlers     []string
	HandlerUsers []int64
	// Preserved is the double-preservation map (M17).
	Preserved []PreservedEntry
	// HandlerFLBs[i] are the compatibles of the FLBs handler i depends on,
	// in registration order.
	HandlerFLBs [][]string
	// FLBs are the globally registered FLBs, in registration order.
	FLBs []FLBDebugState
	// FLBOut and FLBIn are the PAs of the outgoing and incoming FLB
	// blocks (0 if none), FLBInEntries the incoming block's entries.
	FLBOut, FLBIn mm.PhysAddr
	FLBInEntries  []FLBSer
}

// FLBDebugState is one registered FLB's luo_flb_private.
type FLBDebugState struct {
	Compatible string
	// Users is the number of handlers linked to it.
	Users int
	// OutgoingCount is the number of preserved files that use it;
	// OutgoingData and OutgoingObj what its Preserve returned.
	OutgoingCount int64
	OutgoingData  uint64
	OutgoingObj   any
	// IncomingCount, IncomingData and IncomingObj are the incoming
	// state: loaded by the retrieval, cleared by the finish.
	IncomingCount int64
	IncomingData  uint64
	IncomingObj   any
	Retrieved     bool
	Finished      bool
}

// SessionListState is one luo_session_header.
type SessionListState struct {
	Count int
	// HeaderSer and Ser are the PAs of the session block and its array.
	HeaderSer, Ser mm.PhysAddr
	Active         bool
	Sessions       []SessionState
}

// SessionState is one luo_session.
type SessionState struct {
	Name      string
	Retrieved bool
	Freed     bool
	// FileCount is file_set.count; len(Files) is the list's length.
	FileCount int
	FilesPA   mm.PhysAddr
	Files     []FileState
}

// FileState is one luo_file.
type FileState struct {
	Token          uint64
	Compatible     string
	RetrieveStatus int
	SerializedData uint64
	// File is LUO's file, nil until retrieved in the new kernel.
	File  *vfs.File
	Freed bool
	// Key is the file's double-preservation key (valid when File != nil).
	Key PreservedEntry
}

// PreservedEntry is a key of the double-preservation map: the handler's
// GetID, or (File != nil) the file's identity.
type PreservedEntry struct {
	File *vfs.File
	ID   uint64
}

// Snapshot returns a copy of LUO's state. It takes the list rwsems (read),
// session mutexes and luo_file mutexes in the documented order, one list at
// a time, and the registry rwsem (read) on its own; it never takes the
// serialize rwsem, so it works while a serialization holds it.
//
// Requires: no LUO lock held.
func (l *LUO) Snapshot() DebugState {
	d := DebugState{
		Enabled:          l.Enabled(),
		LiveupdateNumber: l.liveupdateNum,
		FDTOut:           l.fdtOut,
		FDTIn:            l.fdtIn,
		InUse:            l.dev.inUse.Load() != 0,
		Deserialized:     l.deser.done.Load(),
		DeserializeErr:   syscall.Errno(l.deser.err.Load()),
		Serialized:       l.serialized.Load(),
	}
	d.Incoming = l.snapshotList(&l.sessions.incoming)
	d.Outgoing = l.snapshotList(&l.sessions.outgoing)

	d.FLBOut, d.FLBIn = l.flb.outgoing.headerSer, l.flb.incoming.headerSer
	d.FLBInEntries = append([]FLBSer(nil), l.flb.incoming.entries...)
	l.registerRwsem.DownRead()
	for _, r := range l.handlerList() {
		d.Handlers = append(d.Handlers, r.fh.Compatible)
		d.HandlerUsers = append(d.HandlerUsers, r.users.Load())
		var names []string
		for _, flb := range l.handlerFLBs(r) {
			names = append(names, flb.Compatible)
		}
		d.HandlerFLBs = append(d.HandlerFLBs, names)
	}
	for _, flb := range l.flbList() {
		d.FLBs = append(d.FLBs, l.snapshotFLB(flb))
	}
	l.registerRwsem.UpRead()

	l.preserved.mu.Lock()
	for k := range l.preserved.m {
		d.Preserved = append(d.Preserved, k.entry())
	}
	l.preserved.mu.Unlock()
	return d
}

// snapshotFLB copies flb's state under its two locks, one at a time.
//
// Requires: luo_register_rwlock held.
func (l *LUO) snapshotFLB(flb *FLB) FLBDebugState {
	p := l.flbGetPrivate(flb)
	st := FLBDebugState{Compatible: flb.Compatible, Users: p.users}
	p.outgoing.lock.Lock()
	st.OutgoingCount = p.outgoing.count.Load()
	st.OutgoingData, st.OutgoingObj = p.outgoing.data, p.outgoing.obj
	p.outgoing.lock.Unlock()
	p.incoming.lock.Lock()
	st.IncomingCount = p.incoming.count.Load()
	st.IncomingData, st.IncomingObj = p.incoming.data, p.incoming.obj
	st.Retrieved, st.Finished = p.incoming.retrieved, p.incoming.finished
	p.incoming.lock.Unlock()
	return st
}

func (l *LUO) snapshotList(sh *sessionHeader) SessionListState {
	sh.rwsem.DownRead()
	defer sh.rwsem.UpRead()
	st := SessionListState{Count: sh.count, HeaderSer: sh.headerSer, Ser: sh.ser, Active: sh.active}
	st.Sessions = make([]SessionState, 0, len(sh.list))
	for _, s := range sh.list {
		st.Sessions = append(st.Sessions, l.snapshotSession(s))
	}
	return st
}

func (l *LUO) snapshotSession(s *session) SessionState {
	l.sessionLock(s)
	defer s.mutex.Unlock()
	ss := SessionState{
		Name:      l.sessionNameString(s),
		Retrieved: s.retrieved,
		Freed:     s.freed.Load(),
		FileCount: s.fileSet.count,
		FilesPA:   s.fileSet.filesPA,
	}
	for _, f := range s.fileSet.files {
		l.fileLock(f)
		fst := FileState{
			Token:          f.token,
			Compatible:     f.fh.Compatible,
			RetrieveStatus: f.retrieveStatus,
			SerializedData: f.serializedData,
			File:           f.file,
			Freed:          f.freed.Load(),
		}
		if f.file != nil {
			fst.Key = f.key.entry()
		}
		f.mutex.Unlock()
		ss.Files = append(ss.Files, fst)
	}
	return ss
}

// Image is the outgoing serialized image as it lies in memory.
type Image struct {
	Header SessionHeaderSer
	// Sessions are the first n entries of the session array, whatever
	// the header count says.
	Sessions []SessionSer
	// Files[i] are the entries of session i's file array (nil if its
	// Files PA is 0); at most FileMax.
	Files [][]FileSer
}

// OutgoingImage decodes the outgoing session block's header and its first
// n entries (with their file arrays) from memory, for the serialization
// invariants R1/R2.
func (l *LUO) OutgoingImage(n int) (Image, error) {
	var img Image
	hdr := l.sessions.outgoing.headerSer
	if hdr == 0 {
		return img, syscall.ENOENT
	}
	n = min(max(n, 0), SessionMax)
	var hb [SessionHeaderSerSize]byte
	if err := l.mem.Read(hdr, hb[:]); err != nil {
		return img, err
	}
	img.Header = DecodeSessionHeaderSer(hb[:])
	for i := 0; i < n; i++ {
		var b [SessionSerSize]byte
		if err := l.mem.Read(sessionSerPA(hdr, i), b[:]); err != nil {
			return img, err
		}
		ser := DecodeSessionSer(b[:])
		img.Sessions = append(img.Sessions, ser)
		var files []FileSer
		if ser.FileSetSer.Files != 0 {
			cnt := min(ser.FileSetSer.Count, FileMax)
			fb := make([]byte, int(cnt)*FileSerSize)
			if err := l.mem.Read(mm.PhysAddr(ser.FileSetSer.Files), fb); err != nil {
				return img, err
			}
			for j := 0; j < int(cnt); j++ {
				files = append(files, DecodeFileSer(fb[j*FileSerSize:]))
			}
		}
		img.Files = append(img.Files, files)
	}
	return img, nil
}

func (k preservedKey) entry() PreservedEntry { return PreservedEntry{File: k.file, ID: k.id} }
