package liveupdatetest

import (
	"encoding/binary"
	"syscall"

	"luomodel/kernel/locking"
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// testFile is the private data of one open of /dev/liveupdate_test: a
// file with a small writable payload.
type testFile struct {
	id uint64 // immutable
	// mu is "liveupdate_test_file.lock"; it guards the fields below.
	// Taken under luo_file.mutex by the LUO callbacks.
	mu      locking.Mutex
	payload []byte
	// frozen is set by freeze and cleared by unfreeze.
	frozen bool
}

// newTestFile makes the file object of a test file for the handler's
// retrieve (anon_inode_getfile() with the device's fops, which are built
// in: no module reference, as vfio_pci's retrieve makes a file with vfio's
// fops).
func (d *Driver) newTestFile(id uint64, payload []byte) (*vfs.File, *testFile, error) {
	if !d.claimID(id) {
		return nil, nil, syscall.EINVAL // another file has this id
	}
	tf := &testFile{id: id, payload: payload}
	tf.mu.Init(d.dom, "liveupdate_test_file.lock")
	f := d.vfs.NewFile(DevicePath, syscall.O_RDWR, &d.fops, d.misc.Inode(), tf)
	return f, tf, nil
}

// open is the misc device's open: each open is a new, empty test file.
// The device is built in, so an open pins no module (fops_get() of a
// built-in fops).
func (d *Driver) open(f *vfs.File) error {
	tf := &testFile{id: d.nextID()}
	tf.mu.Init(d.dom, "liveupdate_test_file.lock")
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

// fileOps is the test file's file_operations (built in: owner NULL).
type fileOps struct {
	vfs.NoFileOperations
	d *Driver
}

// Release forgets the file's id.
func (o *fileOps) Release(f *vfs.File) {
	o.d.releaseID(testFileOf(f).id)
}

// Read copies from the payload at *pos.
func (o *fileOps) Read(_ *vfs.Context, f *vfs.File, dst []byte, pos *int64) (int, error) {
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
