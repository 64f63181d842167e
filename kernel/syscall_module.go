package kernel

import "luomodel/kernel/vfs"

// InitModule is the init_module syscall for the module image called name
// (the port's modules are built into the kernel image as loadable images;
// see module.Modules.Load): ENOENT for an unknown image, EEXIST if it is
// loaded, EBUSY while it is still initialising, or its init's error.
func (t *Task) InitModule(name string) error {
	_, err := doSyscall(t, "init_module", struct{}{}, func(*vfs.Context) (struct{}, error) {
		_, err := t.k.modules.Load(name)
		return struct{}{}, err
	})
	return err
}

// DeleteModule ports the delete_module syscall (module.Modules.Delete):
// ENOENT, EBUSY (not live, or no exit function), EWOULDBLOCK while the
// module is in use.
func (t *Task) DeleteModule(name string, flags uint) error {
	_, err := doSyscall(t, "delete_module", struct{}{}, func(*vfs.Context) (struct{}, error) {
		return struct{}{}, t.k.modules.Delete(name, flags)
	})
	return err
}
