package kernel

import "luomodel/kernel/lib/liveupdatetest"

// liveupdateTestInit installs the LUO test module (lib/tests/liveupdate.c
// built as a module, CONFIG_LIVEUPDATE_TEST=m, extended with a test file
// handler and /dev/liveupdate_test) as a loadable image: it is not loaded
// at boot; init_module("liveupdate_test") (Task.InitModule) loads it and
// delete_module() unloads it.
func (k *Kernel) liveupdateTestInit() error {
	k.ltest = liveupdatetest.New(liveupdatetest.Config{
		LUO:      k.luo,
		Domain:   k.dom,
		VFS:      k.vfs,
		MM:       k.mm,
		KHO:      k.kho,
		Reporter: k.rep,
	})
	return k.modules.AddImage(k.ltest.Image())
}

// LiveupdateTest returns the test module's driver: its trace, its failure
// directives and the module once loaded.
func (k *Kernel) LiveupdateTest() *liveupdatetest.Driver { return k.ltest }
