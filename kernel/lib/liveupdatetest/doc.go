// Package liveupdatetest is the LUO test module: upstream's in-kernel test
// (lib/tests/liveupdate.c: test FLBs registered with a handler, retrieved
// at registration) built as a loadable module and extended with a file
// type of its own, so that user space can drive every handler callback.
//
// The misc device /dev/liveupdate_test is built into the kernel
// (Driver.DeviceInit at boot); the LUO side is the module. Loaded with
// init_module("liveupdate_test") (kernel.Task.InitModule), the module
// registers the file handler "liveupdate-test-v1" (owner: the module) and
// NumFLBs FLBs "liveupdate-test-flb-vN" the handler depends on, then
// retrieves the incoming state of each FLB (FLBGetIncoming +
// FLBPutIncoming). Its exit (delete_module(), refused with EWOULDBLOCK
// while LUO pins the module: a preserved or deserialized test file, an FLB
// in use) unregisters them. This is upstream vfio's split: the device
// files' fops belong to vfio, the LUO handler to vfio_pci, so an open test
// file does not pin the handler's module and LUO's per-file
// try_module_get() is what keeps the handler's code alive while LUO calls
// it (the window of M16).
//
// Each open of /dev/liveupdate_test is a new test file with an id
// (live-update number << 32 | per-kernel sequence from 1; ioctl IoctlGetID
// returns it) and an empty payload of at most PayloadMax bytes (read,
// write, lseek). Preserved, a file owns a preserved page (Ser: magic, id,
// size, position, payload) written at preserve and at freeze; an FLB owns
// one (FLBSer: its state, Driver.SetFLBState). Both cross kexec byte for
// byte.
//
// # Driving it (Driver, from kernel.Kernel.LiveupdateTest)
//
//	Trace() / TakeTrace()       every callback received, in order: Call
//	                            {Op, File, FLB, Result}, C-like String()
//	FailNth(Directive{Op, File, FLB, Nth, Errno})
//	                            the Nth matching call of Op (on File, or on
//	                            FLB for FLB ops; 0 / -1: any) fails with
//	                            Errno; can_preserve/can_finish answer false
//	RefuseCanFinish(id, on)     can_finish of file id says no until off
//	ClearDirectives()           disarm all of the above
//	SetFLBState(i, state)       what FLB i's next preserve saves
//	Module(), FileHandler(), FLB(i), Loaded()
//
// Which callbacks run, in which order, with which arguments, is LUO's
// (see the package doc of kernel/liveupdate); the module only records
// them. Notes for predicting the trace: can_preserve is recorded for every
// file LUO asks about once memfd's said no (File 0 if it is not a test
// file); get_id is recorded each time LUO keys the double-preservation map
// (preserve, its unwind, unpreserve, retrieve, finish of a retrieved
// file; the key is the id tagged apart from memfd's inode numbers);
// retrieve and flb_retrieve consult the directives before restoring their
// page (a directed failure leaves it: finish frees a file's page no
// retrieve restored, an FLB's stays for a retry); a retrieved file whose
// id is taken by a live test file (a corrupt hand-over) is EINVAL. A module
// reloaded in the kernel that retrieved its FLBs retrieves them again at
// load (its FLB objects are new, LUO's incoming entries are not, as
// upstream): flb_retrieve = -EINVAL, as the pages are gone.
package liveupdatetest
