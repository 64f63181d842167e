package kernel

import "luomodel/kernel/lib/liveupdatetest"

// liveupdateTestInit registers the built-in device /dev/liveupdate_test
// and installs the LUO test module (lib/tests/liveupdate.c built as a
// module, CONFIG_LIVEUPDATE_TEST=m, extended with a test file handler) as a
// loadable image: it is not loaded at boot; init_module("liveupdate_test")
// (Task.InitModule) loads it and delete_module() unloads it. The device
// and the handler live apart as vfio's device files and vfio_pci's
// handler do, so the test files never pin the handler's module.
func (k *Kernel) liveupdateTestInit() error {
	k.ltest = liveupdatetest.New(liveupdatetest.Config{
		LUO:      k.luo,
		Domain:   k.dom,
		VFS:      k.vfs,
		MM:       k.mm,
		KHO:      k.kho,
		Reporter: k.rep,
	})
	if err := k.ltest.DeviceInit(); err != nil {
		return err
	}
	return k.modules.AddImage(k.ltest.Image())
}

// LiveupdateTest returns the test module's driver: its trace, its failure
// directives and the module once loaded.
func (k *Kernel) LiveupdateTest() *liveupdatetest.Driver { return k.ltest }
