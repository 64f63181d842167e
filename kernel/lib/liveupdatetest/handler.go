package liveupdatetest

import (
	"syscall"

	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// The test file handler ("liveupdate-test-v1"): every callback of struct
// liveupdate_file_ops. A preserved test file owns one preserved page, a
// struct liveupdate_test_ser written at preserve and rewritten at freeze
// with the payload, size and position; its PA is the serialized data.
// Retrieve restores the page, rebuilds the file byte for byte under the
// same id and frees the page; finish of a file never retrieved frees it.
// Every callback is recorded (Driver.Trace) and may be directed to fail
// (Driver.FailNth, Driver.RefuseCanFinish).

// b2i is a bool callback's recorded result.
func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// errResult is an int callback's recorded result.
func errResult(err error) int64 {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return -int64(e)
	}
	return -int64(syscall.EIO)
}

// writeSerLocked writes tf's current state into its preserved page at pa.
//
// Requires tf.mu (asserted; instrumentation: the test file's lock guards
// the payload it serializes).
func (in *instance) writeSerLocked(tf *testFile, pa mm.PhysAddr, pos int64) error {
	tf.mu.AssertHeld()
	buf := make([]byte, mm.PageSize)
	s := Ser{Magic: SerMagic, ID: tf.id, Size: uint64(len(tf.payload)), Pos: uint64(pos), Payload: tf.payload}
	s.Encode(buf)
	return in.d.mm.Write(pa, buf)
}

// peekSer reads the header of an incoming preserved page without claiming
// it (phys_to_virt() of memory the previous kernel preserved): pa must lie
// in an incoming preserved block.
func (in *instance) peekSer(pa mm.PhysAddr, n int) ([]byte, bool) {
	h := in.d.kho.Incoming()
	if h == nil || pa.PageOffset() != 0 {
		return nil, false
	}
	b, ok := h.BlockAt(pa)
	if !ok || uint64(pa-b.PA)+uint64(n) > b.Size() {
		return nil, false
	}
	buf := make([]byte, n)
	if err := in.d.mm.RAM().ReadRaw(pa, buf); err != nil {
		return nil, false
	}
	return buf, true
}

// fileID is the id of the file a callback is about: the test file's, or
// for a file not retrieved yet the one in its serialized page (0 if
// unreadable).
func (in *instance) fileID(a *liveupdate.FileOpArgs) uint64 {
	if tf := testFileOf(a.File); tf != nil {
		return tf.id
	}
	in.d.mu.Lock()
	id, ok := in.d.paID[a.SerializedData]
	in.d.mu.Unlock()
	if ok {
		return id
	}
	if b, ok := in.peekSer(mm.PhysAddr(a.SerializedData), SerOffPayload); ok {
		id = DecodeSer(b).ID
		in.d.mu.Lock()
		if in.d.paID == nil {
			in.d.paID = map[uint64]uint64{}
		}
		in.d.paID[a.SerializedData] = id
		in.d.mu.Unlock()
		return id
	}
	return 0
}

func (in *instance) canPreserve(_ *liveupdate.FileHandler, f *vfs.File) bool {
	tf := testFileOf(f)
	if tf == nil {
		in.d.record(Call{Op: OpCanPreserve, FLB: -1})
		return false
	}
	ok := in.d.decide(OpCanPreserve, tf.id, -1) == 0
	in.d.record(Call{Op: OpCanPreserve, File: tf.id, FLB: -1, Result: b2i(ok)})
	return ok
}

func (in *instance) preserve(a *liveupdate.FileOpArgs) error {
	tf := testFileOf(a.File)
	err := in.doPreserve(tf, a)
	in.d.record(Call{Op: OpPreserve, File: tf.id, FLB: -1, Result: errResult(err)})
	return err
}

func (in *instance) doPreserve(tf *testFile, a *liveupdate.FileOpArgs) error {
	if e := in.d.decide(OpPreserve, tf.id, -1); e != 0 {
		return e
	}
	pa, err := in.d.kho.AllocPreserve(mm.PageSize)
	if err != nil {
		return err
	}
	pos := a.File.Pos()
	tf.mu.Lock()
	err = in.writeSerLocked(tf, pa, pos)
	tf.mu.Unlock()
	if err != nil {
		in.d.kho.UnpreserveFree(pa)
		return syscall.EIO
	}
	a.SerializedData = uint64(pa)
	a.PrivateData = tf
	return nil
}

func (in *instance) unpreserve(a *liveupdate.FileOpArgs) {
	tf := testFileOf(a.File)
	in.d.kho.UnpreserveFree(mm.PhysAddr(a.SerializedData))
	in.d.record(Call{Op: OpUnpreserve, File: tf.id, FLB: -1})
}

func (in *instance) freeze(a *liveupdate.FileOpArgs) error {
	tf := testFileOf(a.File)
	err := func() error {
		if e := in.d.decide(OpFreeze, tf.id, -1); e != 0 {
			return e
		}
		pos := a.File.Pos()
		tf.mu.Lock()
		defer tf.mu.Unlock()
		if err := in.writeSerLocked(tf, mm.PhysAddr(a.SerializedData), pos); err != nil {
			return syscall.EIO
		}
		tf.frozen = true
		return nil
	}()
	in.d.record(Call{Op: OpFreeze, File: tf.id, FLB: -1, Result: errResult(err)})
	return err
}

func (in *instance) unfreeze(a *liveupdate.FileOpArgs) {
	tf := testFileOf(a.File)
	tf.mu.Lock()
	tf.frozen = false
	tf.mu.Unlock()
	in.d.record(Call{Op: OpUnfreeze, File: tf.id, FLB: -1})
}

// retrieve consults the directives first (a directed failure leaves the
// page for finish to free), then restores the page and rebuilds the file.
func (in *instance) retrieve(a *liveupdate.FileOpArgs) error {
	id := in.fileID(a)
	err := func() error {
		if e := in.d.decide(OpRetrieve, id, -1); e != 0 {
			return e
		}
		f, err := in.d.kho.RestoreFolio(mm.PhysAddr(a.SerializedData))
		if err != nil {
			return syscall.EINVAL
		}
		in.d.mu.Lock()
		if in.d.restored == nil {
			in.d.restored = map[uint64]bool{}
		}
		in.d.restored[a.SerializedData] = true
		in.d.mu.Unlock()
		buf := make([]byte, mm.PageSize)
		rerr := f.Read(0, buf)
		f.Put()
		if rerr != nil {
			return syscall.EINVAL
		}
		s := DecodeSer(buf)
		if s.Magic != SerMagic || s.Size > PayloadMax || s.Pos > PayloadMax || s.ID != id {
			return syscall.EINVAL
		}
		file, _, err := in.d.newTestFile(s.ID, s.Payload)
		if err != nil {
			return err
		}
		_, _ = file.Llseek(int64(s.Pos), 0)
		a.File = file
		return nil
	}()
	in.d.record(Call{Op: OpRetrieve, File: id, FLB: -1, Result: errResult(err)})
	return err
}

func (in *instance) canFinish(a *liveupdate.FileOpArgs) bool {
	id := in.fileID(a)
	ok := !in.d.refused(id) && in.d.decide(OpCanFinish, id, -1) == 0
	in.d.record(Call{Op: OpCanFinish, File: id, FLB: -1, Result: b2i(ok)})
	return ok
}

// finish frees the page of a file whose page no retrieve restored; a retrieve,
// good or failed, has freed it already.
func (in *instance) finish(a *liveupdate.FileOpArgs) {
	id := in.fileID(a)
	in.d.mu.Lock()
	restored := in.d.restored[a.SerializedData]
	in.d.mu.Unlock()
	if !restored {
		in.d.kho.RestoreFree(mm.PhysAddr(a.SerializedData))
	}
	in.d.record(Call{Op: OpFinish, File: id, FLB: -1})
}

func (in *instance) getID(f *vfs.File) uint64 {
	tf := testFileOf(f)
	// luo_preserved_files' keys are every handler's ids: memfd's are
	// small inode numbers, as the test ids' low halves are; a tag keeps
	// the two apart (a collision is a false EBUSY on PRESERVE_FD).
	// The trace records the file's id, of which the key is a function.
	in.d.record(Call{Op: OpGetID, File: tf.id, FLB: -1, Result: int64(tf.id)})
	return tf.id | 0x7e57<<48
}
