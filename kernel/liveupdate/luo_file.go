package liveupdate

import (
	"syscall"

	"luomodel/kernel/fault"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/module"
	"luomodel/kernel/vfs"
)

// This file ports kernel/liveupdate/luo_file.c: the per-session set of
// preserved files, the handler registry, and the preserve / freeze /
// unfreeze / retrieve / finish state machine of one preserved file.
//
// Every function ending in Locked requires the owning session's mutex. A
// ctx argument is the calling syscall's context: file references dropped
// under LUO's locks go through ctx.Fput, so a last reference is released at
// syscall exit with no lock held; it is nil in a release hook, where they
// are dropped at once.

// fileLock takes f.mutex, reporting a use-after-free if f was freed,
// before the acquisition or while the task waited in it (see lockChecked).
func (l *LUO) fileLock(f *luoFile) {
	l.lockChecked(&f.mutex, "luo_file", &f.freed)
}

// fileFree poisons a luo_file that left its set and drops its pin on the
// handler: the registry's user count and the owner module's reference
// (M18), dropped after LUO's last use of the handler (M16).
func (l *LUO) fileFree(f *luoFile) {
	if f.freed.Swap(true) {
		reportUAF(l.rep, "luo_file (double free)", &f.freed)
		return
	}
	f.reg.users.Add(-1)
	module.Put(f.fh.Ops.Owner)
}

// allocFilesMemLocked ports luo_file.c:luo_alloc_files_mem(): allocate the
// set's preserved luo_file_ser array on first use.
func (l *LUO) allocFilesMemLocked(fs *fileSet) error {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if fs.filesPA != 0 {
		return nil
	}
	l.rep.WarnOn(fs.count != 0, "liveupdate: file set has %d files but no array", fs.count)
	pa, err := l.kho.AllocPreserve(FileBlockSize)
	if err != nil {
		return err
	}
	fs.filesPA = pa
	return nil
}

// freeFilesMemLocked ports luo_file.c:luo_free_files_mem(): release the
// array once the set is empty.
func (l *LUO) freeFilesMemLocked(fs *fileSet) {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if fs.count != 0 || fs.filesPA == 0 {
		return
	}
	l.kho.UnpreserveFree(fs.filesPA)
	fs.filesPA = 0
}

// tokenIsUsedLocked ports luo_file.c:luo_token_is_used().
func (l *LUO) tokenIsUsedLocked(fs *fileSet, token uint64) bool {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	for _, f := range fs.files {
		if f.token == token {
			return true
		}
	}
	return false
}

// newLuoFile allocates a luo_file (kzalloc + mutex_init).
func (l *LUO) newLuoFile(reg *registeredHandler, file *vfs.File, data uint64, token uint64) *luoFile {
	f := &luoFile{fh: reg.fh, reg: reg, file: file, serializedData: data, token: token}
	f.mutex.Init(l.dom, "luo_file.mutex")
	return f
}

// preserveFileLocked ports luo_file.c:luo_preserve_file(): preserve the
// file at fd in fs under token. Errors, in this order: EEXIST (token in
// use), ENOSPC (set full), EBADF, the array allocation's error, ENOENT (no
// handler can preserve it, or the first that can has a going owner
// module), EBUSY (the file is preserved already, in any set: M17), the
// FLBs' preserve error (luo_flb_file_preserve()), ENOMEM (the luo_file
// allocation), the handler's Preserve error (LUO does not call Unpreserve
// for a failed Preserve). LUO keeps a reference on the file, and the
// handler's owner module pinned, until it is unpreserved or finished. A
// failure unwinds every step done, newest first.
//
// Requires: the session mutex held; takes luo_register_rwlock for read
// around the handler lookup (M18) and in the FLB calls.
func (l *LUO) preserveFileLocked(ctx *vfs.Context, fs *fileSet, token uint64, fd int) error {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if l.tokenIsUsedLocked(fs, token) {
		return syscall.EEXIST
	}
	if fs.count == FileMax {
		return syscall.ENOSPC
	}
	file, err := ctx.FDs.Get(fd)
	if err != nil {
		return syscall.EBADF
	}

	// The steps, in order; on failure the unwind below undoes those
	// done (the goto ladder of C: err_kfree, err_flb_unpreserve,
	// err_erase_xa, err_module_put, err_free_files_mem, err_fput).
	const (
		stepFget = iota
		stepFilesMem
		stepModuleGet
		stepInsert
		stepFLB
		stepAlloc
	)
	done := stepFget
	var reg *registeredHandler
	var key preservedKey
	err = func() error {
		if err := l.allocFilesMemLocked(fs); err != nil {
			return err
		}
		done = stepFilesMem

		l.registerRwsem.DownRead()
		for _, r := range l.handlerList() {
			if l.callCanPreserve(fs, token, r.fh, file) {
				// Pin the handler and its module while the
				// lookup's lock is held; a going module is no
				// handler at all.
				if module.TryGet(r.fh.Ops.Owner) {
					reg = r
					reg.users.Add(1)
				}
				break
			}
		}
		l.registerRwsem.UpRead()
		if reg == nil {
			return syscall.ENOENT
		}
		done = stepModuleGet

		key = l.callGetID(fs, token, reg.fh, file)
		if err := l.preserved.insert(key, file); err != nil {
			return err
		}
		done = stepInsert

		if err := l.flbFilePreserve(reg); err != nil {
			return err
		}
		done = stepFLB

		// kzalloc() of the luo_file.
		if err := l.faults.Fail(fault.LUOFileAlloc); err != nil {
			return err
		}
		done = stepAlloc
		return nil
	}()
	var f *luoFile
	if err == nil {
		fh := reg.fh
		f = l.newLuoFile(reg, file, 0, token)
		f.key = key
		args := FileOpArgs{Handler: fh, File: file}
		// The fault site stands for the handler's preserve() failing;
		// the handler is then not called, as a failing one cleans up
		// itself.
		err = l.faults.Fail(fault.HandlerPreserve)
		if err == nil {
			err = l.callPreserve(fs, f, &args)
		}
		if err == nil {
			f.serializedData = args.SerializedData
			f.privateData = args.PrivateData
			fs.files = append(fs.files, f)
			fs.count++
			return nil
		}
		err = toErrno(err)
	}
	if done >= stepFLB {
		l.flbFileUnpreserve(reg)
	}
	if done >= stepInsert {
		l.preserved.erase(l.callGetID(fs, token, reg.fh, file))
	}
	if done >= stepModuleGet {
		reg.users.Add(-1)
		module.Put(reg.fh.Ops.Owner)
	}
	if done >= stepFilesMem {
		l.freeFilesMemLocked(fs)
	}
	ctx.Fput(file)
	return err
}

// fileUnpreserveFilesLocked ports luo_file.c:luo_file_unpreserve_files():
// abort every preserved file, newest first: the handler's Unpreserve, its
// FLBs' (luo_flb_file_unpreserve()), out of the global map, out of the
// set, LUO's file reference dropped, and last the handler's module pin
// (M16); then the array is freed.
func (l *LUO) fileUnpreserveFilesLocked(ctx *vfs.Context, fs *fileSet) {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	for len(fs.files) > 0 {
		f := fs.files[len(fs.files)-1]
		args := FileOpArgs{
			Handler:        f.fh,
			File:           f.file,
			SerializedData: f.serializedData,
			PrivateData:    f.privateData,
		}
		l.callUnpreserve(fs, f, &args)
		l.flbFileUnpreserve(f.reg)
		l.preserved.erase(l.callGetID(fs, f.token, f.fh, f.file))
		fs.files = fs.files[:len(fs.files)-1]
		fs.count--
		ctx.Fput(f.file)
		l.fileFree(f)
	}
	l.freeFilesMemLocked(fs)
}

// fileFreezeOne ports luo_file.c:luo_file_freeze_one(): the handler's
// optional Freeze, which may update the serialized data.
//
// Requires: the session mutex held; takes f.mutex.
func (l *LUO) fileFreezeOne(fs *fileSet, f *luoFile) error {
	l.fileLock(f)
	defer f.mutex.Unlock()
	// The fault site stands for a freeze() that fails, with or without
	// a handler callback.
	if err := l.faults.Fail(fault.HandlerFreeze); err != nil {
		return toErrno(err)
	}
	args := FileOpArgs{
		Handler:        f.fh,
		File:           f.file,
		SerializedData: f.serializedData,
		PrivateData:    f.privateData,
	}
	if err := l.callFreeze(fs, f, &args); err != nil {
		return toErrno(err)
	}
	f.serializedData = args.SerializedData
	return nil
}

// fileUnfreezeOne ports luo_file.c:luo_file_unfreeze_one(): the handler's
// optional Unfreeze. The serialized data is kept (M7): the handler still
// needs it to unpreserve or to freeze again.
//
// Requires: the session mutex held; takes f.mutex.
func (l *LUO) fileUnfreezeOne(fs *fileSet, f *luoFile) {
	l.fileLock(f)
	defer f.mutex.Unlock()
	args := FileOpArgs{
		Handler:        f.fh,
		File:           f.file,
		SerializedData: f.serializedData,
		PrivateData:    f.privateData,
	}
	l.callUnfreeze(fs, f, &args)
}

// fileUnfreezeFirstLocked ports luo_file.c:__luo_file_unfreeze(): unfreeze
// the first n files in list order (those frozen before the failed one, or
// all), then zero the whole file array.
func (l *LUO) fileUnfreezeFirstLocked(fs *fileSet, n int) {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	for _, f := range fs.files[:n] {
		l.fileUnfreezeOne(fs, f)
	}
	l.clearPA(fs.filesPA, FileBlockSize)
}

// fileFreezeLocked ports luo_file.c:luo_file_freeze(): freeze every file
// in preservation order and write its luo_file_ser entry, then the set's
// luo_file_set_ser at fssPA. An empty set writes nothing. If a Freeze
// fails, the files frozen before it are unfrozen, the array is zeroed and
// the error returned.
func (l *LUO) fileFreezeLocked(fs *fileSet, fssPA mm.PhysAddr) error {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if fs.count == 0 {
		return nil
	}
	if l.rep.WarnOn(fs.filesPA == 0, "liveupdate: freezing %d files without an array", fs.count) {
		return syscall.EINVAL
	}
	var b [FileSerSize]byte
	for i, f := range fs.files {
		if err := l.fileFreezeOne(fs, f); err != nil {
			l.log.printf("warn", "Freeze failed for token[%#x] handler[%s] err[%v]", f.token, f.fh.Compatible, err)
			l.fileUnfreezeFirstLocked(fs, i)
			return err
		}
		ser := FileSer{Data: f.serializedData, Token: f.token}
		copy(ser.Compatible[:HandlerCompatLength-1], f.fh.Compatible) // strscpy()
		ser.Encode(b[:])
		if err := l.mem.Write(fileSerPA(fs.filesPA, i), b[:]); err != nil {
			l.rep.WarnOn(true, "liveupdate: cannot write file entry %d: %v", i, err)
			l.fileUnfreezeFirstLocked(fs, i+1)
			return err
		}
	}
	var sb [FileSetSerSize]byte
	(&FileSetSer{Files: uint64(fs.filesPA), Count: uint64(fs.count)}).Encode(sb[:])
	if err := l.mem.Write(fssPA, sb[:]); err != nil {
		l.rep.WarnOn(true, "liveupdate: cannot write file set: %v", err)
		l.fileUnfreezeFirstLocked(fs, len(fs.files))
		return err
	}
	return nil
}

// fileUnfreezeLocked ports luo_file.c:luo_file_unfreeze(): roll a frozen
// set back and clear its serialized form (the array and the
// luo_file_set_ser at fssPA).
func (l *LUO) fileUnfreezeLocked(fs *fileSet, fssPA mm.PhysAddr) {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if fs.count == 0 {
		return
	}
	l.fileUnfreezeFirstLocked(fs, len(fs.files))
	l.clearPA(fssPA, FileSetSerSize)
}

// retrieveFileLocked ports luo_file.c:luo_retrieve_file(): the file
// preserved under token, with a new reference for the caller. The first
// successful call runs the handler's Retrieve and keeps a reference for
// LUO until finish; later calls return the same file. A failed Retrieve is
// remembered and its error returned again without calling the handler
// (M6). ENOENT for an unknown token (explicit found flag, M5).
//
// Requires: the session mutex held; takes f.mutex.
func (l *LUO) retrieveFileLocked(fs *fileSet, token uint64) (*vfs.File, error) {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if len(fs.files) == 0 {
		return nil, syscall.ENOENT
	}
	var f *luoFile
	found := false
	for _, it := range fs.files {
		if it.token == token {
			f, found = it, true
			break
		}
	}
	if !found {
		return nil, syscall.ENOENT
	}

	l.fileLock(f)
	defer f.mutex.Unlock()
	if f.retrieveStatus < 0 {
		// Retrieve was attempted and failed: the same error again.
		return nil, syscall.Errno(-f.retrieveStatus)
	}
	if f.retrieveStatus > 0 {
		// Asked again: one more reference for the new fd.
		return f.file.Get(), nil
	}

	args := FileOpArgs{Handler: f.fh, SerializedData: f.serializedData}
	err := l.callRetrieve(fs, f, &args)
	if err == nil && l.rep.WarnOn(args.File == nil, "liveupdate: handler %s retrieved no file", f.fh.Compatible) {
		err = syscall.EIO
	}
	if err == nil {
		// The fault site stands for the handler's retrieve() failing
		// at its last step: the handler drops the file it built (and
		// with it what it restored) and returns the error.
		if err = l.faults.Fail(fault.HandlerRetrieve); err != nil {
			args.File.Put()
		}
	}
	if err != nil {
		e := toErrno(err)
		f.retrieveStatus = -int(e)
		return nil, e
	}
	f.file = args.File
	// A reference for LUO, kept until finish; the handler's goes to the
	// caller.
	f.file.Get()
	f.key = l.callGetID(fs, token, f.fh, f.file)
	ierr := l.preserved.insert(f.key, f.file)
	l.rep.WarnOn(ierr != nil, "liveupdate: retrieved file of token %#x is already preserved", token)
	f.retrieveStatus = 1
	return f.file, nil
}

// fileCanFinishOne ports luo_file.c:luo_file_can_finish_one(): the
// handler's optional CanFinish; false is EBUSY.
//
// Requires: the session mutex held; takes f.mutex.
func (l *LUO) fileCanFinishOne(fs *fileSet, f *luoFile) error {
	l.fileLock(f)
	defer f.mutex.Unlock()
	// The fault site stands for can_finish() saying no, with or without
	// a handler callback.
	if l.faults.Should(fault.HandlerCanFinish) {
		return syscall.EBUSY
	}
	args := FileOpArgs{
		Handler:        f.fh,
		File:           f.file,
		SerializedData: f.serializedData,
		RetrieveStatus: f.retrieveStatus,
	}
	if !l.callCanFinish(fs, f, &args) {
		return syscall.EBUSY
	}
	return nil
}

// fileFinishOne ports luo_file.c:luo_file_finish_one(): the handler's
// Finish, told the retrieve status, then the file's reference to the
// incoming state of the handler's FLBs is dropped (luo_flb_file_finish()).
//
// Requires: the session mutex held; takes f.mutex, and under it
// luo_register_rwlock (read) and the FLBs' incoming locks.
func (l *LUO) fileFinishOne(fs *fileSet, f *luoFile) {
	l.fileLock(f)
	defer f.mutex.Unlock()
	args := FileOpArgs{
		Handler:        f.fh,
		File:           f.file,
		SerializedData: f.serializedData,
		RetrieveStatus: f.retrieveStatus,
	}
	l.callFinish(fs, f, &args)
	l.flbFileFinish(f.reg)
}

// fileFinishLocked ports luo_file.c:luo_file_finish(): first ask every
// file whether it can finish (one "no" is EBUSY with nothing changed),
// then finish them newest first, dropping LUO's references (the handler's
// module pin last, M16), and free the incoming array. Unretrieved files are
// finished too.
func (l *LUO) fileFinishLocked(ctx *vfs.Context, fs *fileSet) error {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if fs.count == 0 {
		return nil
	}
	for _, f := range fs.files {
		if err := l.fileCanFinishOne(fs, f); err != nil {
			return err
		}
	}
	for len(fs.files) > 0 {
		f := fs.files[len(fs.files)-1]
		l.fileFinishOne(fs, f)
		if f.file != nil {
			l.preserved.erase(l.callGetID(fs, f.token, f.fh, f.file))
			ctx.Fput(f.file)
		}
		fs.files = fs.files[:len(fs.files)-1]
		fs.count--
		l.fileFree(f)
	}
	if fs.filesPA != 0 {
		l.kho.RestoreFree(fs.filesPA)
		fs.filesPA = 0
	}
	return nil
}

// fileDeserializeLocked ports luo_file.c:luo_file_deserialize(): rebuild
// an incoming set from its luo_file_set_ser, binding each entry to the
// registered handler with the same compatible string (read lock on the
// registry, M18). The data is untrusted: the array must be a block the
// previous kernel preserved, the count is bounded by the array,
// compatibles must be NUL-terminated and tokens unique (EINVAL otherwise).
// An unknown compatible, or one whose handler's module is going, is ENOENT.
// Each deserialized file pins its handler's module until it is finished.
//
// Unlike C, count grows with the list, so count == len(files) holds even
// during a failure. On failure the set is unwound, as in the newest
// upstream form ("liveupdate: Remove limit on the number of files per
// session", 1d1153097f4d, 7.2: err_destroy_blocks), where 6.19
// (b2135d1cb0e3) left it half built (M26): every luo_file made so far is
// freed, dropping its pin on the handler (the module reference), and the
// array, once claimed, is freed. The error then fails the whole
// deserialization (see sessionDeserializeAll).
func (l *LUO) fileDeserializeLocked(fs *fileSet, fss *FileSetSer) error {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if fss.Files == 0 {
		if fss.Count != 0 {
			l.log.printf("warn", "File set has %d files but no array", fss.Count)
			return syscall.EINVAL
		}
		return nil
	}
	filesPA := mm.PhysAddr(fss.Files)
	if !l.kho.incoming(filesPA, FileBlockSize) {
		l.log.printf("warn", "File array %#x is not a preserved block", fss.Files)
		return syscall.EINVAL
	}
	fs.filesPA = filesPA
	err := l.fileDeserializeEntriesLocked(fs, fss)
	if err != nil {
		for _, f := range fs.files {
			l.fileFree(f)
		}
		fs.files, fs.count = nil, 0
		l.kho.RestoreFree(fs.filesPA)
		fs.filesPA = 0
	}
	return err
}

// fileDeserializeEntriesLocked builds fs's luo_files from the entries of
// its claimed array: the loop of luo_file_deserialize() with
// luo_file_deserialize_one().
func (l *LUO) fileDeserializeEntriesLocked(fs *fileSet, fss *FileSetSer) error {
	fs.assertSetLocked() // instrumentation: session->mutex, not asserted upstream
	if fss.Count == 0 || fss.Count > FileMax {
		l.log.printf("warn", "File set count %d out of range", fss.Count)
		return syscall.EINVAL
	}
	buf := make([]byte, int(fss.Count)*FileSerSize)
	if err := l.mem.readIncoming(fs.filesPA, buf); err != nil {
		l.log.printf("warn", "Failed to read file array %#x: %v", fss.Files, err)
		return syscall.EINVAL
	}

	l.registerRwsem.DownRead()
	defer l.registerRwsem.UpRead()
	for i := 0; i < int(fss.Count); i++ {
		ser := DecodeFileSer(buf[i*FileSerSize:])
		compatible, ok := cString(ser.Compatible[:])
		if !ok {
			l.log.printf("warn", "Unterminated compatible '%s'", printable(ser.Compatible[:]))
			return syscall.EINVAL
		}
		if l.tokenIsUsedLocked(fs, ser.Token) {
			l.log.printf("warn", "Duplicate token %#x", ser.Token)
			return syscall.EINVAL
		}
		var reg *registeredHandler
		for _, r := range l.handlerList() {
			checkHandlerOwner(r.fh, ".compatible")
			if r.fh.Compatible == compatible {
				// A handler whose module is going is no handler.
				if module.TryGet(r.fh.Ops.Owner) {
					reg = r
				}
				break
			}
		}
		if reg == nil {
			l.log.printf("warn", "No registered handler for compatible '%s'", printable(ser.Compatible[:]))
			return syscall.ENOENT
		}
		if err := l.faults.Fail(fault.LUOFileAlloc); err != nil {
			module.Put(reg.fh.Ops.Owner)
			return err // kzalloc() of the luo_file
		}
		reg.users.Add(1)
		fs.files = append(fs.files, l.newLuoFile(reg, nil, ser.Data, ser.Token))
		fs.count++
	}
	return nil
}

// fileSetInit ports luo_file.c:luo_file_set_init(); owner is the session
// the set belongs to (its name set already) and lock its mutex.
func (l *LUO) fileSetInit(fs *fileSet, owner *session, lock *locking.Mutex) {
	*fs = fileSet{lock: lock, owner: owner}
	if l.calls != nil {
		fs.name, _ = cString(owner.name[:])
	}
}

// assertSetLocked asserts that the session mutex guarding fs is held.
// Instrumentation: luo_file.c asserts no lock; its callers in
// luo_session.c hold session->mutex around every call on a set.
func (fs *fileSet) assertSetLocked() { fs.lock.AssertHeld() }

// fileSetDestroy ports luo_file.c:luo_file_set_destroy(): the set must be
// empty; it frees nothing.
func (l *LUO) fileSetDestroy(fs *fileSet) {
	l.rep.WarnOn(fs.count != 0, "liveupdate: destroying a file set with count %d", fs.count)
	l.rep.WarnOn(len(fs.files) != 0, "liveupdate: destroying a file set with %d files", len(fs.files))
}

// RegisterFileHandler ports luo_file.c:liveupdate_register_file_handler().
// Errors, in order: EOPNOTSUPP when LUO is disabled; EINVAL when a
// required op (CanPreserve, Preserve, Unpreserve, Retrieve, Finish) is
// missing or the compatible string does not fit (at most
// HandlerCompatLength-1 bytes, no NUL); EEXIST when the compatible string
// is registered already. Registration takes luo_register_rwlock for write
// (M18) instead of 6.19's quiesce, so it is allowed while sessions exist.
func (l *LUO) RegisterFileHandler(fh *FileHandler) error {
	if !l.Enabled() {
		return syscall.EOPNOTSUPP
	}
	if fh == nil || fh.Ops == nil {
		return syscall.EINVAL
	}
	ops := fh.Ops
	if ops.Preserve == nil || ops.Unpreserve == nil || ops.Retrieve == nil ||
		ops.Finish == nil || ops.CanPreserve == nil {
		return syscall.EINVAL
	}
	if len(fh.Compatible) > HandlerCompatLength-1 {
		return syscall.EINVAL
	}
	for i := 0; i < len(fh.Compatible); i++ {
		if fh.Compatible[i] == 0 {
			return syscall.EINVAL
		}
	}

	l.registerRwsem.DownWrite()
	defer l.registerRwsem.UpWrite()
	for _, r := range l.handlerList() {
		if r.fh.Compatible == fh.Compatible {
			l.log.printf("err", "File handler registration failed: Compatible string '%s' already registered.", fh.Compatible)
			return syscall.EEXIST
		}
	}
	l.handlers = append(l.handlers, &registeredHandler{fh: fh})
	return nil
}

// UnregisterFileHandler ports luo_file.c:liveupdate_unregister_file_handler().
// EOPNOTSUPP when LUO is disabled, ENOENT when fh is not registered, EBUSY
// while preserved or deserialized files still use it (upstream's is void:
// the module reference each such file holds keeps the owner from being
// unloaded, M18; the port keeps the check for built-in handlers). Every FLB
// of the handler is unregistered with it (luo_flb_unregister_all()).
func (l *LUO) UnregisterFileHandler(fh *FileHandler) error {
	if !l.Enabled() {
		return syscall.EOPNOTSUPP
	}
	l.registerRwsem.DownWrite()
	defer l.registerRwsem.UpWrite()
	for i, r := range l.handlerList() {
		if r.fh != fh {
			continue
		}
		if r.users.Load() != 0 {
			return syscall.EBUSY
		}
		l.flbUnregisterAllLocked(r)
		l.handlers = append(l.handlers[:i], l.handlers[i+1:]...)
		return nil
	}
	return syscall.ENOENT
}
