package liveupdate

import (
	"bytes"
	"encoding/binary"
	"syscall"

	"luomodel/kernel/fault"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// This file ports kernel/liveupdate/luo_session.c: named sessions, their
// two global lists, the session file and its ioctls, and the
// (de)serialization of the session block.

// sessionHeader ports struct luo_session_header.
type sessionHeader struct {
	// count is the number of sessions in list; guarded by rwsem. Kept apart
	// from len(list) as in C (invariant S1).
	count int
	// list is in insertion order; guarded by rwsem.
	list []*session
	// rwsem is luo_session_header.rwsem.
	rwsem locking.RWSem
	// headerSer is the PA of the luo_session_header_ser block and ser the
	// PA of its entry array (headerSer + 8); 0 for NULL. Set at boot; for
	// the incoming list cleared by sessionDeserialize under rwsem (W).
	headerSer mm.PhysAddr
	ser       mm.PhysAddr
	// active is set at boot once the block exists; it stays false for the
	// incoming list when the previous kernel sent nothing.
	active bool
}

// reset forgets the serialization block (boot-time failure path).
func (sh *sessionHeader) reset() {
	sh.headerSer, sh.ser, sh.active = 0, 0, false
}

// sessionGlobal ports struct luo_session_global.
type sessionGlobal struct {
	incoming sessionHeader // sessions handed over by the previous kernel
	outgoing sessionHeader // sessions to hand to the next kernel
}

// sessionLock takes s.mutex, reporting a use-after-free if s was freed,
// before the acquisition or while the task waited in it (see lockChecked).
func (l *LUO) sessionLock(s *session) {
	l.lockChecked(&s.mutex, "luo_session", &s.freed)
}

// sessionAlloc ports luo_session.c:luo_session_alloc(): the name is copied
// with strscpy() semantics (at most 63 bytes, NUL-terminated).
func (l *LUO) sessionAlloc(name [SessionNameLength]byte) *session {
	s := &session{}
	n := bytes.IndexByte(name[:], 0)
	if n < 0 || n > SessionNameLength-1 {
		n = SessionNameLength - 1
	}
	copy(s.name[:n], name[:n])
	l.fileSetInit(&s.fileSet, s, &s.mutex)
	s.mutex.Init(l.dom, "luo_session.mutex")
	return s
}

// sessionFree ports luo_session.c:luo_session_free(). The object is
// poisoned: any later lock of it is reported as a use-after-free.
func (l *LUO) sessionFree(s *session) {
	if s.freed.Swap(true) {
		reportUAF(l.rep, "luo_session (double free)", &s.freed)
		return
	}
	l.fileSetDestroy(&s.fileSet)
}

// sessionInsert ports luo_session.c:luo_session_insert(). The outgoing
// list is bounded by the session block (ENOMEM, checked before the
// duplicate test); names are unique per list (EEXIST).
//
// Requires: sh.rwsem not held (taken for write).
func (l *LUO) sessionInsert(sh *sessionHeader, s *session) error {
	sh.rwsem.DownWrite()
	defer sh.rwsem.UpWrite()

	// For outgoing we should make sure there is room in the
	// serialization array for the new session.
	if sh == &l.sessions.outgoing && sh.count == SessionMax {
		return syscall.ENOMEM
	}
	for _, it := range sh.list {
		if bytes.Equal(l.sessionName(it), l.sessionName(s)) {
			return syscall.EEXIST
		}
	}
	l.preemptPoint() // between the duplicate check and list_add_tail()
	sh.list = append(sh.list, s)
	sh.count++
	return nil
}

// sessionRemove ports luo_session.c:luo_session_remove().
//
// Requires: sh.rwsem not held (taken for write).
func (l *LUO) sessionRemove(sh *sessionHeader, s *session) {
	sh.rwsem.DownWrite()
	defer sh.rwsem.UpWrite()
	for i, it := range sh.list {
		if it == s {
			sh.list = append(sh.list[:i], sh.list[i+1:]...)
			sh.count--
			return
		}
	}
	l.rep.WarnOn(true, "liveupdate: removing session [%s] that is not in its list", l.sessionNameString(s))
}

// sessionFinishOne ports luo_session.c:luo_session_finish_one().
//
// Requires: s.mutex not held.
func (l *LUO) sessionFinishOne(ctx *vfs.Context, s *session) error {
	l.sessionLock(s)
	defer s.mutex.Unlock()
	return l.fileFinishLocked(ctx, &s.fileSet)
}

// sessionUnfreezeOne ports luo_session.c:luo_session_unfreeze_one(): ser
// is the PA of the session's luo_session_ser entry.
//
// Requires: s.mutex not held.
func (l *LUO) sessionUnfreezeOne(s *session, ser mm.PhysAddr) {
	l.sessionLock(s)
	defer s.mutex.Unlock()
	l.fileUnfreezeLocked(&s.fileSet, ser+SessionSerOffFileSetSer)
}

// sessionFreezeOne ports luo_session.c:luo_session_freeze_one().
//
// Requires: s.mutex not held.
func (l *LUO) sessionFreezeOne(s *session, ser mm.PhysAddr) error {
	l.sessionLock(s)
	defer s.mutex.Unlock()
	return l.fileFreezeLocked(&s.fileSet, ser+SessionSerOffFileSetSer)
}

// sessionRelease ports luo_session.c:luo_session_release(): the last
// reference to a session file dropped. An outgoing session is aborted
// (every file unpreserved, then removed and freed); a retrieved incoming
// session is finished, and if finishing fails it stays listed with no
// file: stranded until the next reboot.
//
// Requires: no LUO lock held. Takes the serialize rwsem for read (M13),
// then s.mutex, then (not nested) the list rwsem for write.
func (l *LUO) sessionRelease(s *session) {
	l.serializeRwsem.DownRead()
	defer l.serializeRwsem.UpRead()

	var sh *sessionHeader
	// If retrieved is set, this session is from the incoming list.
	if s.retrieved {
		if err := l.sessionFinishOne(nil, s); err != nil {
			l.log.printf("warn", "Unable to finish session [%s] on release", l.sessionNameString(s))
			return
		}
		sh = &l.sessions.incoming
	} else {
		l.sessionLock(s)
		l.fileUnpreserveFilesLocked(nil, &s.fileSet)
		s.mutex.Unlock()
		sh = &l.sessions.outgoing
	}
	l.sessionRemove(sh, s)
	l.sessionFree(s)
}

// sessionPreserveFD ports luo_session.c:luo_session_preserve_fd(). If the
// response cannot be written the file stays preserved and the ioctl fails
// with EFAULT.
//
// Requires: the serialize rwsem held for read; s.mutex not held.
func (l *LUO) sessionPreserveFD(ctx *vfs.Context, s *session, ucmd *luoUcmd) error {
	argp := DecodeFDArg(ucmd.cmd)

	l.sessionLock(s)
	defer s.mutex.Unlock()
	if err := l.preserveFileLocked(ctx, &s.fileSet, argp.Token, int(argp.FD)); err != nil {
		return err
	}
	if err := ucmd.respond(FDArgSize); err != nil {
		l.log.printf("warn", "The file was successfully preserved, but response to user failed")
		return err
	}
	return nil
}

// sessionRetrieveFD ports luo_session.c:luo_session_retrieve_fd() in its
// 6.19 form (16cec0d26521): s.mutex is held from the lookup through the
// response and fd_install(). The newest upstream form holds it around
// luo_retrieve_file() only; that came with "liveupdate: avoid mixing
// cleanup guards with goto in luo_session_retrieve_fd" (6af06e11bd48,
// 7.2), a coding-style refactor, not a correctness fix, so the reference
// profile keeps 6.19's scope (TestRetrieveFDHoldsSessionMutexThroughInstall).
//
// Requires: the serialize rwsem held for read; s.mutex not held.
func (l *LUO) sessionRetrieveFD(ctx *vfs.Context, s *session, ucmd *luoUcmd) error {
	argp := DecodeFDArg(ucmd.cmd)

	fd, err := ctx.FDs.GetUnusedFD(syscall.O_CLOEXEC)
	if err != nil {
		return err
	}
	argp.FD = int32(fd)

	l.sessionLock(s)
	defer s.mutex.Unlock()
	file, err := l.retrieveFileLocked(&s.fileSet, argp.Token)
	if err != nil {
		ctx.FDs.PutUnusedFD(fd)
		return err
	}
	argp.Encode(ucmd.cmd)
	if err := ucmd.respond(FDArgSize); err != nil {
		ctx.Fput(file) // the caller's reference; LUO keeps its own
		ctx.FDs.PutUnusedFD(fd)
		return err
	}
	ctx.FDs.Install(fd, file)
	return nil
}

// sessionFinish ports luo_session.c:luo_session_finish(). A non-zero
// reserved field is rejected (M21).
//
// Requires: the serialize rwsem held for read; s.mutex not held.
func (l *LUO) sessionFinish(ctx *vfs.Context, s *session, ucmd *luoUcmd) error {
	argp := DecodeFinishArg(ucmd.cmd)
	if argp.Reserved != 0 {
		return syscall.EINVAL
	}
	if err := l.sessionFinishOne(ctx, s); err != nil {
		return err
	}
	return ucmd.respond(FinishArgSize)
}

// sessionGetName ports luo_session.c:luo_session_get_name() (7.2): the
// full name, which the anon-inode name may truncate. A non-zero reserved
// field is rejected (M22).
//
// Requires: the serialize rwsem held for read. The name is immutable.
func (l *LUO) sessionGetName(_ *vfs.Context, s *session, ucmd *luoUcmd) error {
	argp := DecodeGetNameArg(ucmd.cmd)
	if argp.Reserved != 0 {
		return syscall.EINVAL
	}
	// strscpy() writes the name and its NUL but, unlike strscpy_pad(),
	// leaves the caller's bytes after the NUL in place.
	name := l.sessionName(s)
	n := bytes.IndexByte(name, 0)
	copy(argp.Name[:n+1], name[:n+1])
	argp.Encode(ucmd.cmd)
	return ucmd.respond(GetNameArgSize)
}

// sessionIoctlOps ports luo_session.c's luo_session_ioctl_ops[], indexed
// by nr - CmdSessionBase; typ is the session kind the op requires (M11).
var sessionIoctlOps = [...]struct {
	luoIoctlOp
	typ     sessionType
	execute func(l *LUO, ctx *vfs.Context, s *session, ucmd *luoUcmd) error
}{
	CmdSessionPreserveFD - CmdSessionBase: {
		luoIoctlOp{size: FDArgSize, minSize: FDArgOffToken + 8, ioctlNum: IoctlSessionPreserveFD},
		sessionOutgoing, (*LUO).sessionPreserveFD,
	},
	CmdSessionRetrieveFD - CmdSessionBase: {
		luoIoctlOp{size: FDArgSize, minSize: FDArgOffToken + 8, ioctlNum: IoctlSessionRetrieveFD},
		sessionIncoming, (*LUO).sessionRetrieveFD,
	},
	CmdSessionFinish - CmdSessionBase: {
		luoIoctlOp{size: FinishArgSize, minSize: FinishArgOffReserved + 4, ioctlNum: IoctlSessionFinish},
		sessionIncoming, (*LUO).sessionFinish,
	},
	CmdSessionGetName - CmdSessionBase: {
		luoIoctlOp{size: GetNameArgSize, minSize: GetNameArgOffName + SessionNameLength, ioctlNum: IoctlSessionGetName},
		sessionAny, (*LUO).sessionGetName,
	},
}

// sessionIoctl ports luo_session.c:luo_session_ioctl(), the session-file
// dispatcher: EINVAL for an unknown nr, EFAULT reading the size, ENOTTY for
// a mismatched command, EINVAL for the wrong session kind (M11), EINVAL
// below the minimum size, E2BIG for a non-zero tail; then the op runs under
// the serialize rwsem (read, M13).
//
// Requires: no LUO lock held.
func (l *LUO) sessionIoctl(ctx *vfs.Context, s *session, cmd uint32, arg usermem.Buffer) error {
	nr := ioctlNR(cmd)
	if nr < CmdSessionBase || nr-CmdSessionBase >= uint32(len(sessionIoctlOps)) {
		return syscall.EINVAL
	}
	ucmd := luoUcmd{ubuffer: arg}
	size, err := ucmdUserSize(arg)
	if err != nil {
		return err
	}
	ucmd.userSize = size
	op := &sessionIoctlOps[nr-CmdSessionBase]
	if op.ioctlNum != cmd {
		return vfs.ENOIOCTLCMD // ENOTTY for user space
	}
	// retrieved tells incoming from outgoing; it was set before the
	// session's file was published.
	switch op.typ {
	case sessionOutgoing:
		if s.retrieved {
			return syscall.EINVAL
		}
	case sessionIncoming:
		if !s.retrieved {
			return syscall.EINVAL
		}
	}
	if err := ucmdLoad(&op.luoIoctlOp, &ucmd); err != nil {
		return err
	}

	l.serializeRwsem.DownRead()
	defer l.serializeRwsem.UpRead()
	return op.execute(l, ctx, s, &ucmd)
}

// sessionFileOps ports luo_session.c's luo_session_fops.
type sessionFileOps struct {
	vfs.NoFileOperations
	l *LUO
}

func (o *sessionFileOps) Release(f *vfs.File) {
	o.l.sessionRelease(f.PrivateData().(*session))
}

func (o *sessionFileOps) Ioctl(ctx *vfs.Context, f *vfs.File, cmd uint32, arg usermem.Buffer) error {
	return o.l.sessionIoctl(ctx, f.PrivateData().(*session), cmd, arg)
}

// sessionGetfileLocked ports luo_session.c:luo_session_getfile(): an
// anon-inode file "[luo_session] NAME", O_RDWR, private data s.
//
// Requires: s.mutex held (asserted: upstream's
// lockdep_assert_held(&session->mutex), M2).
func (l *LUO) sessionGetfileLocked(s *session) (*vfs.File, error) {
	s.mutex.AssertHeld()
	name := "[luo_session] " + l.sessionNameString(s)
	if len(name) > 127 { // snprintf() into char name_buf[128]
		name = name[:127]
	}
	return l.vfs.AnonInodeGetfile(name, &l.sessionFops, s, syscall.O_RDWR)
}

// sessionNameValid is the M10 check: strnlen(name, 64) must be 1..63.
func sessionNameValid(name *[SessionNameLength]byte) bool {
	n := bytes.IndexByte(name[:], 0)
	return n >= 1
}

// sessionCreate ports luo_session.c:luo_session_create(): a new outgoing
// session and its file (one reference, for the caller's fd).
//
// Requires: no LUO lock held. Takes the serialize rwsem for read (M13),
// the outgoing rwsem for write (inside sessionInsert), then s.mutex.
func (l *LUO) sessionCreate(name [SessionNameLength]byte) (*vfs.File, error) {
	if !sessionNameValid(&name) {
		return nil, syscall.EINVAL
	}
	l.serializeRwsem.DownRead()
	defer l.serializeRwsem.UpRead()

	if err := l.faults.Fail(fault.LUOSessionAlloc); err != nil {
		return nil, err // kzalloc() in luo_session_alloc()
	}
	s := l.sessionAlloc(name)
	if err := l.sessionInsert(&l.sessions.outgoing, s); err != nil {
		l.sessionFree(s)
		return nil, err
	}
	l.sessionLock(s)
	file, err := l.sessionGetfileLocked(s)
	s.mutex.Unlock()
	if err != nil {
		l.sessionRemove(&l.sessions.outgoing, s)
		l.sessionFree(s)
		return nil, err
	}
	return file, nil
}

// sessionRetrieve ports luo_session.c:luo_session_retrieve(): the file of
// an incoming session. The serialize rwsem and the incoming list rwsem
// (both read) are held for the whole call (M12), and s.mutex across the
// retrieved check, the file creation and the flag update (M1), so a
// session yields at most one file. ENOENT if no session has this name
// (compared over 64 bytes, so an unterminated name never matches), EINVAL
// if it was retrieved already.
//
// Requires: no LUO lock held.
func (l *LUO) sessionRetrieve(name [SessionNameLength]byte) (*vfs.File, error) {
	sh := &l.sessions.incoming

	l.serializeRwsem.DownRead()
	defer l.serializeRwsem.UpRead()
	sh.rwsem.DownRead()
	defer sh.rwsem.UpRead()

	var s *session
	for _, it := range sh.list {
		if strncmpEqual(l.sessionName(it), name[:]) {
			s = it
			break
		}
	}
	if s == nil {
		return nil, syscall.ENOENT
	}

	l.sessionLock(s)
	defer s.mutex.Unlock()
	if s.retrieved {
		return nil, syscall.EINVAL
	}
	file, err := l.sessionGetfileLocked(s)
	if err != nil {
		return nil, err
	}
	s.retrieved = true
	return file, nil
}

// strncmpEqual is strncmp(a, b, len) == 0 for equal-length arrays.
func strncmpEqual(a, b []byte) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
		if a[i] == 0 {
			return true
		}
	}
	return true
}

// sessionSetupOutgoing ports luo_session.c:luo_session_setup_outgoing():
// the zeroed, preserved 16-page session block and the "luo-session" node
// pointing at it. It returns the block's PA.
//
// Requires: boot time (no concurrency).
func (l *LUO) sessionSetupOutgoing(w *fdt.Writer) (mm.PhysAddr, error) {
	headerSer, err := l.kho.AllocPreserve(SessionBlockSize)
	if err != nil {
		return 0, err
	}
	var pa [8]byte
	binary.LittleEndian.PutUint64(pa[:], uint64(headerSer))

	err = w.BeginNode(FDTSessionNodeName)
	if err == nil {
		err = w.PropertyString("compatible", FDTSessionCompatible)
	}
	if err == nil {
		err = w.Property(FDTSessionHeader, pa[:])
	}
	if err == nil {
		err = w.EndNode()
	}
	if err != nil {
		l.kho.UnpreserveFree(headerSer)
		return 0, err
	}

	sh := &l.sessions.outgoing
	sh.headerSer = headerSer
	sh.ser = headerSer + SessionHeaderSerSize
	sh.active = true
	return headerSer, nil
}

// sessionSetupIncoming ports luo_session.c:luo_session_setup_incoming():
// find the "luo-session" node, check "luo-session-v2" and read the block's
// PA, which must be a block the previous kernel preserved. Every failure
// is EINVAL.
//
// Requires: boot time (no concurrency).
func (l *LUO) sessionSetupIncoming(f *fdt.FDT) error {
	offset, err := f.SubnodeOffset(0, FDTSessionNodeName)
	if err != nil {
		l.log.printf("err", "Unable to get session node: [%s]", FDTSessionNodeName)
		return syscall.EINVAL
	}
	if err := f.NodeCheckCompatible(offset, FDTSessionCompatible); err != nil {
		l.log.printf("err", "Session node incompatible [%s]", FDTSessionCompatible)
		return syscall.EINVAL
	}
	ptr, err := f.GetProp(offset, FDTSessionHeader)
	if err != nil || len(ptr) != 8 {
		l.log.printf("err", "Unable to get session header '%s' [%d]", FDTSessionHeader, len(ptr))
		return syscall.EINVAL
	}
	headerSer := mm.PhysAddr(binary.LittleEndian.Uint64(ptr))
	if !l.kho.incoming(headerSer, SessionBlockSize) {
		l.log.printf("err", "Session header %#x is not a preserved block", uint64(headerSer))
		return syscall.EINVAL
	}

	sh := &l.sessions.incoming
	sh.headerSer = headerSer
	sh.ser = headerSer + SessionHeaderSerSize
	sh.active = true
	return nil
}

// sessionDeserialize ports luo_session.c:luo_session_deserialize(): build
// the incoming sessions from the session block, once. Its result, success
// or any failure, is cached and returned by every later call (M3, M9).
//
// Requires: the caller owns /dev/liveupdate's in_use flag, which
// serializes the calls; no LUO lock held.
func (l *LUO) sessionDeserialize() error {
	if l.deser.done.Load() {
		if e := syscall.Errno(l.deser.err.Load()); e != 0 {
			return e
		}
		return nil
	}
	err := l.sessionDeserializeAll()
	var e syscall.Errno
	if err != nil {
		e = toErrno(err)
	}
	l.deser.err.Store(int32(e))
	l.deser.done.Store(true)
	if e != 0 {
		return e
	}
	return nil
}

// sessionDeserializeAll is the body of luo_session_deserialize() with the
// single exit of the newest upstream form.
//
// Note on error handling (as upstream): if deserialization fails, the
// sessions already restored are not cleaned up. A partial failure leaves
// the preserved state inconsistent, and a safe undo across sessions, files
// and devices is error-prone and of little value: the resources are
// treated as leaked, and user space is expected to detect the failure
// (every open of /dev/liveupdate fails with EIO) and reboot.
//
// The session block itself is freed on failure as on success (M26): the
// newest upstream form ("liveupdate: Remove limit on the number of
// sessions", 2a441a14c2c0, 7.2: kho_block_set_destroy() on the save_err
// path too), where 6.19 (7f790dd21a93) returned early and left it
// reserved. The sessions restored before the failure do not point into
// it.
func (l *LUO) sessionDeserializeAll() error {
	sh := &l.sessions.incoming
	if !sh.active {
		return nil
	}

	err := l.sessionDeserializeEntries(sh)
	l.kho.RestoreFree(sh.headerSer)
	sh.rwsem.DownWrite()
	sh.headerSer, sh.ser = 0, 0
	sh.rwsem.UpWrite()
	return err
}

// sessionDeserializeEntries restores every session of the incoming session
// block, stopping at the first failure: the loop of
// luo_session_deserialize().
//
// Requires: no LUO lock held.
func (l *LUO) sessionDeserializeEntries(sh *sessionHeader) error {
	var hb [SessionHeaderSerSize]byte
	if err := l.mem.readIncoming(sh.headerSer, hb[:]); err != nil {
		l.log.printf("warn", "Failed to read session header: %v", err)
		return syscall.EINVAL
	}
	hdr := DecodeSessionHeaderSer(hb[:])
	if hdr.Count > SessionMax {
		l.log.printf("warn", "Session count %d exceeds the maximum %d", hdr.Count, SessionMax)
		return syscall.EINVAL
	}
	for i := 0; i < int(hdr.Count); i++ {
		var b [SessionSerSize]byte
		if err := l.mem.readIncoming(sessionSerPA(sh.headerSer, i), b[:]); err != nil {
			l.log.printf("warn", "Failed to read session %d: %v", i, err)
			return syscall.EINVAL
		}
		ser := DecodeSessionSer(b[:])
		if err := l.sessionDeserializeOne(sh, &ser); err != nil {
			return err
		}
	}
	return nil
}

// sessionDeserializeOne is the body of luo_session_deserialize()'s loop
// (luo_session_deserialize_one() in the newest form): restore one incoming
// session and its files. Failures are logged with the untrusted name
// printed bounded (M23), before the session is freed (M4); file failures
// propagate (M8), and a session whose files failed stays listed, with none
// (its set was unwound by fileDeserializeLocked, M26).
//
// The name is not validated beyond its terminating NUL, as upstream: 6.19
// (0153094d03df, 7f790dd21a93) and the newest form (be9d10d16765) copy it
// unchecked, and the name check of M10 is CREATE_SESSION's only. An empty
// name, which a 6.19 kernel without M10 could create and hand over, is
// restored and RETRIEVE_SESSION with an all-zero name finds it. An
// unterminated name cannot come from any upstream kernel (it serializes
// with strscpy()); it is corrupt data, EINVAL (docs/README.md).
//
// Requires: no LUO lock held.
func (l *LUO) sessionDeserializeOne(sh *sessionHeader, ser *SessionSer) error {
	if _, ok := cString(ser.Name[:]); !ok {
		l.log.printf("warn", "Unterminated session name [%s] during deserialization", printable(ser.Name[:]))
		return syscall.EINVAL
	}
	if err := l.faults.Fail(fault.LUOSessionAlloc); err != nil {
		l.log.printf("warn", "Failed to allocate session [%s] %v", printable(ser.Name[:]), err)
		return err // kzalloc() in luo_session_alloc()
	}
	s := l.sessionAlloc(ser.Name)
	if err := l.sessionInsert(sh, s); err != nil {
		l.log.printf("warn", "Failed to insert session [%s] %v", printable(l.sessionName(s)), err)
		l.sessionFree(s)
		return err
	}
	l.sessionLock(s)
	err := l.fileDeserializeLocked(&s.fileSet, &ser.FileSetSer)
	s.mutex.Unlock()
	if err != nil {
		l.log.printf("warn", "Failed to deserialize files of session [%s] %v", printable(l.sessionName(s)), err)
		return err
	}
	return nil
}

// sessionSerialize ports luo_session.c:luo_session_serialize(): freeze
// every outgoing session in list order, writing its name and file set into
// the session block, then the header count. On failure the sessions frozen
// so far are unfrozen in reverse order and their entries cleared (the
// failing one was rolled back by the file layer), the header count is left
// alone, and every lock is released. On success the serialize rwsem stays
// held for write: no session operation can run until the kexec (M13/M14).
//
// Requires: no LUO lock held.
func (l *LUO) sessionSerialize() error {
	sh := &l.sessions.outgoing

	l.serializeRwsem.DownWrite()
	sh.rwsem.DownWrite()

	var err error
	i := 0
	for ; i < len(sh.list); i++ {
		if i > 0 {
			// Between sessions: a controlled scheduler may run
			// another task here (it finds every other LUO path
			// waiting on the rwsems held).
			l.dom.Yield(locking.PointPhase)
		}
		s := sh.list[i]
		ser := sessionSerPA(sh.headerSer, i)
		if err = l.sessionFreezeOne(s, ser); err != nil {
			break
		}
		if err = l.mem.Write(ser+SessionSerOffName, l.sessionName(s)); err != nil {
			l.rep.WarnOn(true, "liveupdate: cannot write session entry %d: %v", i, err)
			l.sessionUnfreezeOne(s, ser)
			break
		}
	}
	if err == nil {
		var hb [SessionHeaderSerSize]byte
		(&SessionHeaderSer{Count: uint64(sh.count)}).Encode(hb[:])
		if err = l.mem.Write(sh.headerSer, hb[:]); err != nil {
			l.rep.WarnOn(true, "liveupdate: cannot write session header: %v", err)
		}
	}
	if err != nil {
		for i--; i >= 0; i-- {
			ser := sessionSerPA(sh.headerSer, i)
			l.sessionUnfreezeOne(sh.list[i], ser)
			l.clearPA(ser+SessionSerOffName, SessionNameLength)
		}
		sh.rwsem.UpWrite()
		l.serializeRwsem.UpWrite()
		return err
	}
	sh.rwsem.UpWrite()
	l.serialized.Store(true)
	return nil
}

// sessionUnserialize undoes a successful sessionSerialize(): the repair
// for a kho_finalize() failure that 6.19's liveupdate_reboot() comment
// promises but its code does not do. Every session is unfrozen (reverse
// order) and its entry cleared, the header count is reset, and the
// serialize rwsem is released.
//
// Requires: the serialize rwsem held for write by sessionSerialize.
func (l *LUO) sessionUnserialize() {
	sh := &l.sessions.outgoing
	l.serializeRwsem.AssertHeldWrite()

	sh.rwsem.DownWrite()
	for i := len(sh.list) - 1; i >= 0; i-- {
		ser := sessionSerPA(sh.headerSer, i)
		l.sessionUnfreezeOne(sh.list[i], ser)
		l.clearPA(ser+SessionSerOffName, SessionNameLength)
	}
	l.clearPA(sh.headerSer, SessionHeaderSerSize)
	sh.rwsem.UpWrite()

	l.serialized.Store(false)
	l.serializeRwsem.UpWrite()
}

// clearPA zeroes n bytes of LUO-owned memory at pa (memset()).
func (l *LUO) clearPA(pa mm.PhysAddr, n int) {
	if pa == 0 {
		return
	}
	err := l.mem.Write(pa, make([]byte, n))
	l.rep.WarnOn(err != nil, "liveupdate: cannot clear %d bytes at %#x: %v", n, uint64(pa), err)
}
