package liveupdatetest

import (
	"encoding/binary"
	"syscall"

	"luomodel/kernel/locking"
	"luomodel/kernel/module"
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// testFile is the private data of one open of /dev/liveupdate_test: a
// file with a small writable payload.
type testFile struct {
	id uint64    // immutable
	in *instance // the module instance whose code runs it; immutable
	// mu is "liveupdate_test_file.lock"; it guards the fields below.
	// Taken under luo_file.mutex by the LUO callbacks.
	mu      locking.Mutex
	payload []byte
	// frozen is set by freeze and cleared by unfreeze.
	frozen bool
}

// newTestFile makes the file object of a test file and pins the module for
// it (fops_get() of an open, try_module_get() of anon_inode_getfile()):
// ENODEV once the module is going.
func (in *instance) newTestFile(id uint64, payload []byte) (*vfs.File, *testFile, error) {
	in.mod.Check("liveupdate_test file creation")
	if !in.d.claimID(id) {
		return nil, nil, syscall.EINVAL // another file has this id
	}
	if !module.TryGet(in.mod) {
		in.d.releaseID(id)
		return nil, nil, syscall.ENODEV
	}
	tf := &testFile{id: id, in: in, payload: payload}
	tf.mu.Init(in.d.dom, "liveupdate_test_file.lock")
	f := in.d.vfs.NewFile(DevicePath, syscall.O_RDWR, &in.fops, in.misc.Inode(), tf)
	return f, tf, nil
}

// open is the misc device's open: each open is a new, empty test file.
func (in *instance) open(f *vfs.File) error {
	in.mod.Check("liveupdate_test_open")
	if !module.TryGet(in.mod) {
		return syscall.ENODEV // fops_get() failed: the module is going
	}
	tf := &testFile{id: in.d.nextID(), in: in}
	tf.mu.Init(in.d.dom, "liveupdate_test_file.lock")
	f.SetPrivateData(tf)
	return nil
}

// testFileOf returns f's test file, nil if f is not one.
func testFileOf(f *vfs.File) *testFile {
	if f == nil {
		return nil
	}
	tf, _ := f.PrivateData().(*testFile)
	return tf
}

// FileID returns the id of f if it is a test file (of any instance of
// the module), for a checker naming the file a callback is about.
func FileID(f *vfs.File) (uint64, bool) {
	if tf := testFileOf(f); tf != nil {
		return tf.id, true
	}
	return 0, false
}

// fileOps is the test file's file_operations.
type fileOps struct {
	vfs.NoFileOperations
	in *instance
}

// Release forgets the file's id and drops its module reference
// (fops_put()).
func (o *fileOps) Release(f *vfs.File) {
	o.in.mod.Check("liveupdate_test_release")
	o.in.d.releaseID(testFileOf(f).id)
	module.Put(o.in.mod)
}

// Read copies from the payload at *pos.
func (o *fileOps) Read(_ *vfs.Context, f *vfs.File, dst []byte, pos *int64) (int, error) {
	o.in.mod.Check("liveupdate_test_read")
	tf := testFileOf(f)
	tf.mu.Lock()
	defer tf.mu.Unlock()
	if *pos >= int64(len(tf.payload)) {
		return 0, nil
	}
	n := copy(dst, tf.payload[*pos:])
	*pos += int64(n)
	return n, nil
}

// Write copies into the payload at *pos, growing it (zero-filled) up to
// PayloadMax; ENOSPC if nothing fits.
func (o *fileOps) Write(_ *vfs.Context, f *vfs.File, src []byte, pos *int64) (int, error) {
	o.in.mod.Check("liveupdate_test_write")
	tf := testFileOf(f)
	tf.mu.Lock()
	defer tf.mu.Unlock()
	if len(src) == 0 {
		return 0, nil
	}
	if *pos >= PayloadMax {
		return 0, syscall.ENOSPC
	}
	n := min(len(src), PayloadMax-int(*pos))
	end := int(*pos) + n
	if end > len(tf.payload) {
		tf.payload = append(tf.payload, make([]byte, end-len(tf.payload))...)
	}
	copy(tf.payload[*pos:], src[:n])
	*pos += int64(n)
	return n, nil
}

// Llseek moves *pos (SEEK_SET, SEEK_CUR, SEEK_END); EINVAL outside
// [0, PayloadMax] or for another whence.
func (o *fileOps) Llseek(f *vfs.File, pos *int64, off int64, whence int) (int64, error) {
	o.in.mod.Check("liveupdate_test_llseek")
	tf := testFileOf(f)
	tf.mu.Lock()
	size := int64(len(tf.payload))
	tf.mu.Unlock()
	var np int64
	switch whence {
	case 0:
		np = off
	case 1:
		np = *pos + off
	case 2:
		np = size + off
	default:
		return 0, syscall.EINVAL
	}
	if np < 0 || np > PayloadMax {
		return 0, syscall.EINVAL
	}
	*pos = np
	return np, nil
}

// Ioctl answers IoctlGetID with the file's id (a u64).
func (o *fileOps) Ioctl(_ *vfs.Context, f *vfs.File, cmd uint32, arg usermem.Buffer) error {
	o.in.mod.Check("liveupdate_test_ioctl")
	if cmd != IoctlGetID {
		return syscall.ENOTTY
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], testFileOf(f).id)
	if err := arg.CopyOut(0, b[:]); err != nil {
		return syscall.EFAULT
	}
	return nil
}
