package vfs

// nullFileOperations ports drivers/char/mem.c:null_fops.
type nullFileOperations struct{ NoFileOperations }

// Read ports drivers/char/mem.c:read_null(): always end of file.
func (nullFileOperations) Read(*Context, *File, []byte, *int64) (int, error) { return 0, nil }

// Write ports drivers/char/mem.c:write_null(): everything is written.
func (nullFileOperations) Write(_ *Context, _ *File, src []byte, _ *int64) (int, error) {
	return len(src), nil
}

// Llseek ports drivers/char/mem.c:null_lseek(): the position is always 0.
func (nullFileOperations) Llseek(_ *File, pos *int64, _ int64, _ int) (int64, error) {
	*pos = 0
	return 0, nil
}

// registerMemDevices ports drivers/char/mem.c:chr_dev_init() for the one memory device the
// model has: /dev/null. It shares the /dev namespace with misc devices.
func (v *VFS) registerMemDevices() {
	v.miscMtx.Lock()
	defer v.miscMtx.Unlock()
	err := v.miscRegisterLocked(&MiscDevice{Name: "null", Fops: nullFileOperations{}})
	v.rep.WarnOn(err != nil, "registering /dev/null: %v", err)
}
