package model

import (
	"bytes"
	"encoding/binary"
	"syscall"
)

// ioctlOp is one row of a LUO ioctl table (struct luo_ioctl_op).
type ioctlOp struct {
	cmd     uint32
	size    uint32 // sizeof the kernel struct
	minSize uint32 // offsetofend of the last field
	// gate is the session-type gate: 'o' outgoing only, 'i' incoming only,
	// 'a' both (device ioctls have none).
	gate byte
}

var devOps = []ioctlOp{
	{IoctlCreateSession, SizeofSessionArg, SizeofSessionArg, 'a'},
	{IoctlRetrieveSession, SizeofSessionArg, SizeofSessionArg, 'a'},
}

var sessionOps = []ioctlOp{
	{IoctlSessionPreserveFD, SizeofFDArg, SizeofFDArg, 'o'},
	{IoctlSessionRetrieveFD, SizeofFDArg, SizeofFDArg, 'i'},
	{IoctlSessionFinish, SizeofFinishArg, SizeofFinishArg, 'i'},
	{IoctlSessionGetName, SizeofGetNameArg, SizeofGetNameArg, 'a'},
}

// ioctl is do_vfs_ioctl() into the file's unlocked_ioctl; buf is the user
// buffer, written in place on success.
func (s *State) ioctl(t *Task, fd int, cmd uint32, buf []byte) (syscall.Errno, int64) {
	_, f, e := s.fget(t, fd)
	if e != 0 {
		return e, 0
	}
	switch f.Kind {
	case KindDevice:
		return s.devIoctl(t, cmd, buf)
	case KindSession:
		return s.sessionIoctl(t, f.Session, cmd, buf)
	}
	return syscall.ENOTTY, 0 // no unlocked_ioctl
}

// dispatch is the common part of luo_ioctl() and luo_session_ioctl() (spec
// 1.6): nr range, read size, cmd match, type gate, min size, and
// copy_struct_from_user(). It returns the op's index.
func dispatch(ops []ioctlOp, base uint32, cmd uint32, buf []byte, gateOK func(byte) bool) (int, syscall.Errno) {
	nr := cmd & 0xff
	if nr < base || nr-base >= uint32(len(ops)) {
		return 0, syscall.EINVAL
	}
	if len(buf) < 4 {
		return 0, syscall.EFAULT
	}
	usize := binary.LittleEndian.Uint32(buf)
	i := int(nr - base)
	op := ops[i]
	if op.cmd != cmd {
		return 0, syscall.ENOTTY // -ENOIOCTLCMD, turned into ENOTTY by the VFS
	}
	if gateOK != nil && !gateOK(op.gate) {
		return 0, syscall.EINVAL
	}
	if usize < op.minSize {
		return 0, syscall.EINVAL
	}
	// copy_struct_from_user(): the range [0, usize) must be readable and a
	// tail beyond the kernel struct must be zero.
	if uint64(len(buf)) < uint64(usize) {
		return 0, syscall.EFAULT
	}
	if usize > op.size {
		for _, c := range buf[op.size:usize] {
			if c != 0 {
				return 0, syscall.E2BIG
			}
		}
	}
	return i, 0
}

// cName returns the C string in a 64-byte name field and whether it is
// NUL-terminated within the field.
func cName(field []byte) (string, bool) {
	if i := bytes.IndexByte(field, 0); i >= 0 {
		return string(field[:i]), true
	}
	return string(field), false
}

// devIoctl ports luo_core.c:luo_ioctl() and its two ops.
func (s *State) devIoctl(t *Task, cmd uint32, buf []byte) (syscall.Errno, int64) {
	i, e := dispatch(devOps, 0, cmd, buf, nil)
	if e != 0 {
		return e, 0
	}
	// get_unused_fd_flags(O_CLOEXEC) comes first in both ops.
	if e := s.reserveFD(t); e != 0 {
		return e, 0
	}
	name, terminated := cName(buf[8 : 8+SessionNameLength])
	var sid SessionID
	if devOps[i].cmd == IoctlCreateSession {
		// luo_session_create(): name length 1..63, then insert.
		if !terminated || len(name) == 0 {
			return syscall.EINVAL, 0
		}
		if len(s.Outgoing) == SessionMax {
			return syscall.ENOMEM, 0
		}
		if s.FindOutgoing(name) != nil {
			return syscall.EEXIST, 0
		}
		sid = s.NextSession
		s.NextSession++
		s.addSession(sid, &Session{Name: name})
		s.ownOutgoing()
		s.Outgoing = append(s.Outgoing, sid)
		s.outNamesW()[name] = sid // FindOutgoing built it
	} else {
		// luo_session_retrieve(): strncmp over 64 bytes, so an
		// unterminated name never matches.
		var se *Session
		if terminated {
			se = s.FindIncoming(name)
		}
		if se == nil {
			return syscall.ENOENT, 0
		}
		if se.Retrieved {
			return syscall.EINVAL, 0
		}
		for _, id := range s.Incoming {
			if s.Sessions[id] == se {
				sid = id
			}
		}
		s.wSession(sid).Retrieved = true
	}
	fid := s.newFile(File{Kind: KindSession, Readable: true, Writable: true, Session: sid})
	s.wSession(sid).File = fid
	fd := s.installFlags(t, fid, true) // get_unused_fd_flags(O_CLOEXEC)
	binary.LittleEndian.PutUint32(buf[4:], uint32(int32(fd)))
	return 0, 0
}

// FailsUnlocked reports whether op fails in s before LUO takes
// luo_session_serialize_rwsem, or any LUO lock: a call on an fd the
// task does not hold (EBADF), or an ioctl on a file without LUO's ioctls
// or that LUO's dispatcher rejects (spec 1.6, steps 1-6, the
// session-type check among them), or an open of /dev/liveupdate while it
// is open (luo_open()'s exclusivity, EBUSY). Such a call answers at once
// even while a reboot that serialized holds the rwsem, and changes
// nothing.
func FailsUnlocked(s *State, op Op) bool {
	t := s.Tasks[op.Task]
	if t == nil || !t.Alive {
		return false
	}
	if op.Kind == OpOpen {
		return op.Path == DevLiveUpdate && s.Enabled && s.DevInUse
	}
	switch op.Kind {
	case OpClose, OpDup, OpFcntl, OpRead, OpWrite, OpLseek, OpFtruncate, OpIoctl:
	default:
		return false
	}
	_, f, e := s.fget(t, op.FD)
	if e != 0 {
		return true
	}
	if op.Kind != OpIoctl {
		return false
	}
	buf := append([]byte{}, op.Buf...)
	switch f.Kind {
	case KindDevice:
		_, e = dispatch(devOps, 0, op.Cmd, buf, nil)
	case KindSession:
		se := s.Sessions[f.Session]
		_, e = dispatch(sessionOps, CmdSessionBase, op.Cmd, buf, func(g byte) bool {
			return g == 'o' && !se.Retrieved || g == 'i' && se.Retrieved || g != 'o' && g != 'i'
		})
	default:
		return true // ENOTTY: no unlocked_ioctl
	}
	return e != 0
}

// FDTableOnly reports whether op, run in s, takes no LUO lock and
// changes only the calling task's fd table (and its files' reference
// counts): a dup or fcntl of a held fd, or a close that does not release
// the file into LUO (another reference stays, or the file is /dev/null
// or a memfd, whose release never reaches LUO; a preserved or retrieved
// file holds LUO's own reference), or an exit or exec whose closes are
// all such.
// Like FailsUnlocked's calls, it runs at once even while a reboot that
// serialized holds the serialize rwsem.
func FDTableOnly(s *State, op Op) bool {
	t := s.Tasks[op.Task]
	if t == nil || !t.Alive {
		return false
	}
	if op.Kind == OpExit || op.Kind == OpExec {
		// exit_files() closes every fd, do_close_on_exec() the
		// close-on-exec ones: none may be the last reference to a file
		// whose release reaches LUO.
		held := map[FileID]int{}
		for fd, id := range t.FDs {
			if op.Kind == OpExit || t.Cloexec[fd] {
				held[id]++
			}
		}
		for id, n := range held {
			if f := s.Files[id]; f.Refs == n && f.Kind != KindNull && f.Kind != KindMemfd {
				return false
			}
		}
		return true
	}
	_, f, e := s.fget(t, op.FD)
	if e != 0 {
		return false
	}
	switch op.Kind {
	case OpDup, OpFcntl:
		return true
	case OpClose:
		return f.Refs > 1 || f.Kind == KindNull || f.Kind == KindMemfd
	}
	return false
}

// sessionIoctl ports luo_session.c:luo_session_ioctl() and its ops on
// session sid.
func (s *State) sessionIoctl(t *Task, sid SessionID, cmd uint32, buf []byte) (syscall.Errno, int64) {
	se := s.Sessions[sid]
	gate := func(g byte) bool {
		switch g {
		case 'o':
			return !se.Retrieved
		case 'i':
			return se.Retrieved
		}
		return true
	}
	i, e := dispatch(sessionOps, CmdSessionBase, cmd, buf, gate)
	if e != 0 {
		return e, 0
	}
	switch sessionOps[i].cmd {
	case IoctlSessionPreserveFD:
		fd := int(int32(binary.LittleEndian.Uint32(buf[4:])))
		token := binary.LittleEndian.Uint64(buf[8:])
		return s.preserveFile(t, sid, fd, token), 0
	case IoctlSessionRetrieveFD:
		if e := s.reserveFD(t); e != 0 {
			return e, 0
		}
		token := binary.LittleEndian.Uint64(buf[8:])
		fid, e := s.retrieveFile(sid, token)
		if e != 0 {
			return e, 0
		}
		fd := s.installFlags(t, fid, true) // get_unused_fd_flags(O_CLOEXEC)
		binary.LittleEndian.PutUint32(buf[4:], uint32(int32(fd)))
		return 0, 0
	case IoctlSessionFinish:
		if binary.LittleEndian.Uint32(buf[4:]) != 0 {
			return syscall.EINVAL, 0
		}
		return s.finishFiles(sid), 0
	default: // GET_NAME
		if binary.LittleEndian.Uint32(buf[4:]) != 0 {
			return syscall.EINVAL, 0
		}
		// strscpy(): the name and one NUL; the rest of the field keeps
		// the caller's bytes.
		n := copy(buf[8:8+SessionNameLength-1], se.Name)
		buf[8+n] = 0
		return 0, 0
	}
}

// preserveFile ports luo_file.c:luo_preserve_file() with the registered
// handlers (memfd, then the test handler while its module is loaded), the
// global double-preservation map (M17) and the test handler's FLBs, in
// upstream's order: token, limit, fd, the set's array, can_preserve of
// each handler until one accepts, get_id and the map, the FLBs, the
// luo_file allocation, the handler's preserve. A failure undoes the steps
// before it in reverse.
func (s *State) preserveFile(t *Task, sid SessionID, fd int, token uint64) syscall.Errno {
	se := s.Sessions[sid]
	for _, f := range se.Out {
		if f.Token == token {
			return syscall.EEXIST
		}
	}
	if len(se.Out) == FileMax {
		return syscall.ENOSPC
	}
	id, f, e := s.fget(t, fd)
	if e != 0 {
		return e
	}
	// luo_alloc_files_mem(): the set's array, on first use (the array
	// lives exactly while the set holds files).
	if len(se.Out) == 0 {
		if e := s.khoAllocPreserve(); e != 0 {
			return e
		}
	}
	obj := s.testObj(f, se, token)
	h := s.handlerCanPreserve(f, obj)
	if h == "" {
		return syscall.ENOENT // no handler can preserve it
	}
	s.recordHandler(h, CbGetID, obj, 0)
	if (h == MemfdCompatible && s.Preserved[f.Inode]) || (h == TestCompatible && s.PreservedTest[f.Test]) {
		return syscall.EBUSY
	}
	if h == TestCompatible {
		if e := s.flbFilePreserve(); e != 0 {
			s.recordHandler(h, CbGetID, obj, 0) // xa_erase(luo_get_id())
			return e
		}
	}
	// kzalloc() of the luo_file; then the handler's preserve (the
	// handler_preserve site fails it without calling the handler).
	e = 0
	switch {
	case s.failAt(FaultFileAlloc), s.failAt(FaultHandlerPreserve):
		e = syscall.ENOMEM
	case h == MemfdCompatible:
		e = s.memfdPreserve(s.wInode(f.Inode))
		s.recordHandler(h, CbPreserve, obj, e)
	default:
		e = s.testPreserve(f.Test)
	}
	if e != 0 {
		// The unwind: the FLBs, then out of the map (get_id again).
		if h == TestCompatible {
			s.flbFileUnpreserve()
		}
		s.recordHandler(h, CbGetID, obj, 0)
		return e
	}
	if h == MemfdCompatible {
		s.preservedW()[f.Inode] = true
		s.wInode(f.Inode).Frozen = true // memfd_luo_preserve(): shmem_freeze()
	} else {
		s.preservedTestW()[f.Test] = true
	}
	s.get(id) // LUO's reference
	se = s.wSession(sid)
	se.Out = append(se.Out, OutFile{Token: token, File: id})
	return 0
}

// testPreserve is the test handler's preserve: its directive, then the
// preserved page for the payload (kho_alloc_preserve()).
func (s *State) testPreserve(id TestFileID) syscall.Errno {
	e := s.TestCtl.fire(CbPreserve, false, id, -1)
	if e == 0 {
		e = s.khoAllocPreserve()
	}
	s.recordHandler(TestCompatible, CbPreserve, ObjRef{Test: id}, e)
	return e
}

// retrieveFile ports luo_file.c:luo_retrieve_file() with the handler's
// retrieve: the first call builds a new file (a memfd, or a test file with
// the preserved payload and id); later calls return the same file; a
// failure is remembered (M6). The handler_retrieve site fails the handler
// after it built the file, which it drops again.
func (s *State) retrieveFile(sid SessionID, token uint64) (FileID, syscall.Errno) {
	se := s.Sessions[sid]
	for i := range se.In {
		if se.In[i].Token != token {
			continue
		}
		if e := se.In[i].RetrieveErr; e != 0 {
			return 0, e // M6: the remembered failure
		}
		if se.In[i].Retrieved {
			s.get(se.In[i].File) // the caller's reference
			return se.In[i].File, 0
		}
		// The handler's retrieve changes the entry, failing or not.
		se = s.wSession(sid)
		f := &se.In[i]
		obj := ObjRef{Session: se.Name, Token: token}
		var e syscall.Errno
		if f.Handler == TestCompatible {
			obj = ObjRef{Test: f.Test}
			e = s.testCallback(f.Test, CbRetrieve)
		} else {
			switch {
			case f.BadFolio:
				// memfd_luo_retrieve_folios(): kho_restore_folio()
				// of the bad entry WARNs and fails; EIO (M25).
				s.Warns++
				e = syscall.EIO
			case f.BadCount:
				e = syscall.EINVAL
			}
			s.recordHandler(MemfdCompatible, CbRetrieve, obj, e)
		}
		if e == 0 && s.failAt(FaultHandlerRetrieve) {
			e = syscall.ENOMEM
		}
		if e != 0 {
			f.RetrieveErr = e
			f.Data = nil
			return 0, e
		}
		var fid FileID
		if f.Handler == TestCompatible {
			s.testFilesW()[f.Test] = &TestFile{Payload: f.Data}
			fid = s.newFile(File{Kind: KindTest, Readable: true, Writable: true, Pos: f.Pos, Test: f.Test})
			s.preservedTestW()[f.Test] = true
		} else {
			ino := s.newInode(f.Data)
			// Every page of the size was preserved (memfd_pin_folios()
			// filled the holes) and is restored into the page cache.
			// Every folio comes back dirty: memfd_luo_preserve_folios()
			// records MEMFD_LUO_FOLIO_DIRTY for all.
			s.wInode(ino).Pages = dirtyPages(nil, 0, pagesFor(int64(len(f.Data))))
			fid = s.newFile(File{Kind: KindMemfd, Readable: true, Writable: true, Pos: f.Pos, Inode: ino})
			s.preservedW()[ino] = true
		}
		s.get(fid) // LUO's own reference, kept until finish
		s.recordHandler(f.Handler, CbGetID, obj, 0)
		f.Retrieved = true
		f.File = fid
		f.Data = nil
		return fid, 0
	}
	return 0, syscall.ENOENT
}

// inObj is the ObjRef of an incoming file.
func inObj(se *Session, f InFile) ObjRef {
	if f.Handler == TestCompatible {
		return ObjRef{Test: f.Test}
	}
	return ObjRef{Session: se.Name, Token: f.Token}
}

// finishFiles ports luo_file_finish(): can_finish of every file in order
// (memfd has none; the handler_can_finish site says no for its file), the
// first "no" is EBUSY with nothing changed; then every file is finished
// from the tail: the handler's finish, its FLBs (reverse link order), and
// a retrieved file leaves the map and loses LUO's reference.
func (s *State) finishFiles(sid SessionID) syscall.Errno {
	se := s.Sessions[sid]
	for _, f := range se.In {
		if s.failAt(FaultCanFinish) {
			return syscall.EBUSY
		}
		if f.Handler == TestCompatible {
			if e := s.testCallback(f.Test, CbCanFinish); e != 0 {
				return syscall.EBUSY
			}
		}
	}
	tests, handled := countTestFiles(se.In), 0
	for i := len(se.In) - 1; i >= 0; i-- {
		f := se.In[i]
		obj := inObj(se, f)
		s.recordHandler(f.Handler, CbFinish, obj, 0)
		if f.Handler == TestCompatible {
			if handled++; !s.deferFLBHalf(FLBFinishWork, handled, tests) {
				s.flbFileFinish()
			}
		}
		if f.Retrieved {
			s.recordHandler(f.Handler, CbGetID, obj, 0)
			if file := s.Files[f.File]; file.Kind == KindMemfd {
				delete(s.preservedW(), file.Inode)
			} else {
				delete(s.preservedTestW(), file.Test)
			}
			s.put(f.File)
		}
		// An unretrieved file's data is discarded
		// (memfd_luo_discard_folios(): KHO WARNs at a bad entry).
		if !f.Retrieved && f.RetrieveErr == 0 && f.BadFolio {
			s.Warns++
		}
	}
	s.wSession(sid).In = nil
	return 0
}

// sessionRelease ports luo_session_release(): the session's file is gone.
// A retrieved incoming session is finished; if a file refuses, it stays
// listed with its files (stranded until the next kexec). An outgoing one
// is aborted: luo_file_unpreserve_files(), tail first (the handler's
// unpreserve, its FLBs in reverse link order, get_id for the map).
func (s *State) sessionRelease(sid SessionID) {
	se := s.wSession(sid)
	se.File = 0
	if se.Retrieved {
		if s.finishFiles(sid) != 0 {
			se.Stranded = true
			return
		}
		s.ownIncoming()
		s.Incoming = removeID(s.Incoming, sid)
	} else {
		s.unpreserveFiles(sid)
		s.ownOutgoing()
		s.Outgoing = removeID(s.Outgoing, sid)
		delete(s.outNamesW(), se.Name)
	}
	delete(s.sessionsW(), sid)
}

// unpreserveFiles ports luo_file_unpreserve_files() for outgoing session
// sid: every file unpreserved, newest first (its FLBs' counts and the
// handler's module pin go), and the set emptied.
func (s *State) unpreserveFiles(sid SessionID) {
	se := s.Sessions[sid]
	tests, handled := 0, 0
	for _, of := range se.Out {
		if s.Files[of.File].Kind == KindTest {
			tests++
		}
	}
	for i := len(se.Out) - 1; i >= 0; i-- {
		of := se.Out[i]
		f := s.Files[of.File]
		obj := s.testObj(f, se, of.Token)
		if f.Kind == KindTest {
			s.recordHandler(TestCompatible, CbUnpreserve, obj, 0)
			if handled++; !s.deferFLBHalf(FLBUnpreserveWork, handled, tests) {
				s.flbFileUnpreserve()
			}
			s.recordHandler(TestCompatible, CbGetID, obj, 0)
			delete(s.preservedTestW(), f.Test)
		} else {
			s.recordHandler(MemfdCompatible, CbUnpreserve, obj, 0)
			s.recordHandler(MemfdCompatible, CbGetID, obj, 0)
			delete(s.preservedW(), f.Inode)
			s.wInode(f.Inode).Frozen = false
		}
		s.put(of.File)
	}
	s.wSession(sid).Out = nil
}

// UnpreserveSessionFiles is the first half of the release of the outgoing
// session whose file fd of task names (luo_session_release(): the files
// unpreserved under the session's mutex, then the session unlisted): the
// session stays listed, with no files. Anything else is left as it is. A
// concurrent checker splits a release that other calls overlap into these
// halves: between them a delete_module() may find the module's last pin
// gone while the session's name is still taken.
func UnpreserveSessionFiles(s State, task TaskID, fd int) State {
	n := s.stepCopy()
	fid, f := n.FDFile(task, fd)
	if f == nil || f.Kind != KindSession {
		return n
	}
	if se := n.Sessions[f.Session]; se == nil || se.Incoming || len(se.Out) == 0 {
		return n
	}
	n.unpreserveFiles(n.Files[fid].Session)
	return n
}

// removeID returns l without id, in l's array: the list is its state's
// own (ownOutgoing, ownIncoming) and no caller ranges over it while
// sessions are released. The head goes by reslicing (the sessions a campaign fills
// are closed in creation order).
func removeID(l []SessionID, id SessionID) []SessionID {
	for i, x := range l {
		if x == id {
			if i == 0 {
				return l[1:]
			}
			copy(l[i:], l[i+1:])
			return l[:len(l)-1]
		}
	}
	return l
}

// khoVmallocSize is KHO_VMALLOC_SIZE: the page addresses one
// kho_vmalloc_chunk holds.
const khoVmallocSize = (PageSize - 8) / 8

// folioSerSize is sizeof(struct memfd_luo_folio_ser).
const folioSerSize = 16

// khoAllocPreserve is the failure half of kho_alloc_preserve(): the
// folio's allocation (alloc_pages), then kho_preserve_folio(). The
// kho_alloc_preserve site comes first (folio_alloc() failing).
func (s *State) khoAllocPreserve() syscall.Errno {
	if s.failAt(FaultKHOAllocPreserve) || s.failAt(FaultAllocPages) || s.failAt(FaultKHOPreserveFolio) {
		return syscall.ENOMEM
	}
	return 0
}

// memfdPreserve is the failure half of mm/memfd_luo.c:memfd_luo_preserve()
// for in: the struct memfd_luo_ser (kho_alloc_preserve()), then
// memfd_luo_preserve_folios(): memfd_pin_folios() over the whole size,
// which gives every hole a folio that stays in the file whatever follows;
// the vcalloc()ed folio array; kho_preserve_folio() of each folio; and
// kho_preserve_vmalloc() of the array (kho_preserve_pages() of its first
// chunk, then of each of its pages, with a new chunk after every
// KHO_VMALLOC_SIZE of them). Every failure is ENOMEM and undoes all but
// the filled holes.
//
// The alloc_pages calls are counted up to the array's pages only: the
// preserved-memory tracker allocates its bitmaps as physical addresses
// dictate, which the model cannot know, so ApplyFault predicts alloc_pages
// only for the first call of an operation.
func (s *State) memfdPreserve(in *Inode) syscall.Errno {
	if e := s.khoAllocPreserve(); e != 0 {
		return e
	}
	nr := pagesFor(int64(len(in.Data)))
	if nr == 0 {
		return 0
	}
	for i := range nr {
		if !in.hasPage(i) {
			if s.failAt(FaultAllocPages) {
				return syscall.ENOMEM
			}
			in.Pages = filledPages(in.Pages, i, i+1)
		}
	}
	arrayPages := pagesFor(nr * folioSerSize)
	for range arrayPages {
		if s.failAt(FaultAllocPages) {
			return syscall.ENOMEM
		}
	}
	// Each folio preserved is dirtied (mm: memfd_luo: always dirty all
	// folios), and stays dirty if a later one fails.
	for i := range nr {
		if s.failAt(FaultKHOPreserveFolio) {
			in.Pages = dirtyPages(in.Pages, 0, i)
			return syscall.ENOMEM
		}
	}
	in.Pages = dirtyPages(in.Pages, 0, nr)
	if s.failAt(FaultKHOPreservePages) {
		return syscall.ENOMEM
	}
	idx := 0
	for range arrayPages {
		if s.failAt(FaultKHOPreservePages) {
			return syscall.ENOMEM
		}
		if idx++; idx == khoVmallocSize {
			if s.failAt(FaultKHOPreservePages) {
				return syscall.ENOMEM
			}
			idx = 0
		}
	}
	return 0
}
