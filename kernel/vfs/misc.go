package vfs

import (
	"strings"
	"syscall"
)

// MiscDevice ports struct miscdevice: a character device under /dev.
type MiscDevice struct {
	Name string
	Fops FileOperations
	// Open ports fops->open(); an error fails open(2) and Release is not
	// called. It runs with misc_mtx held, before the file is installed in
	// any fd table. The file's private data is the MiscDevice on entry, as
	// misc_open() leaves it; Open may replace it.
	Open func(f *File) error

	// inode is the device node's inode, set at registration. Guarded by
	// the registering VFS's miscMtx.
	inode *Inode
	// vfs is where the device is registered, nil when it is not. Guarded
	// by that VFS's miscMtx.
	vfs *VFS
}

// Inode is the device node's inode (nil until registered).
func (d *MiscDevice) Inode() *Inode { return d.inode }

// MiscRegister ports drivers/char/misc.c:misc_register(): make the device
// openable as /dev/NAME. EINVAL for an empty or invalid name or no file
// operations, EBUSY if the name is taken or the device already registered.
func (v *VFS) MiscRegister(dev *MiscDevice) error {
	if dev == nil || dev.Name == "" || strings.Contains(dev.Name, "/") || dev.Fops == nil {
		return syscall.EINVAL
	}
	v.miscMtx.Lock()
	defer v.miscMtx.Unlock()
	return v.miscRegisterLocked(dev)
}

// miscRegisterLocked is MiscRegister with misc_mtx held (asserted;
// instrumentation: misc_register() takes misc_mtx itself).
func (v *VFS) miscRegisterLocked(dev *MiscDevice) error {
	v.miscMtx.AssertHeld()
	if _, taken := v.misc[dev.Name]; taken || dev.vfs != nil {
		return syscall.EBUSY
	}
	dev.inode = v.NewInode(dev)
	dev.vfs = v
	v.misc[dev.Name] = dev
	return nil
}

// MiscDeregister ports drivers/char/misc.c:misc_deregister(): remove the device from /dev.
// Files already open on it keep working. Deregistering a device that is not
// registered here is a WARN.
func (v *VFS) MiscDeregister(dev *MiscDevice) {
	v.miscMtx.Lock()
	defer v.miscMtx.Unlock()
	if v.rep.WarnOn(dev == nil || dev.vfs != v || v.misc[dev.Name] != dev, "misc_deregister of a device that is not registered") {
		return
	}
	delete(v.misc, dev.Name)
	dev.vfs = nil
}

// miscOpenLocked ports drivers/char/misc.c:misc_open(): a new file with the device's
// operations, then the device's open hook. If the hook fails the file is
// discarded without its release running. Requires misc_mtx (asserted;
// instrumentation: misc_open() takes misc_mtx itself around the lookup and
// the hook).
func (v *VFS) miscOpenLocked(dev *MiscDevice, flags int) (*File, error) {
	v.miscMtx.AssertHeld()
	f := v.NewFile(devPrefix+dev.Name, flags, dev.Fops, dev.inode, dev)
	if dev.Open != nil {
		if err := dev.Open(f); err != nil {
			f.Discard()
			return nil, err
		}
	}
	return f, nil
}
