package kernel

import "luomodel/kernel/liveupdate"

// liveupdateInit runs LUO's initcalls for this kernel, in Linux's order:
// early_param("liveupdate") (parsed into k.cmdline), liveupdate_early_init()
// (an error there is a boot panic: luo_restore_fail()), then the late
// initcalls luo_late_startup() and liveupdate_ioctl_init(). A late-initcall
// failure only leaves LUO disabled without /dev/liveupdate, as Linux
// ignores initcall return values; LUO logs it.
func (k *Kernel) liveupdateInit() error {
	l, err := liveupdate.EarlyInit(liveupdate.Config{
		Enabled:  k.cmdline.LiveUpdate,
		Domain:   k.dom,
		Reporter: k.rep,
		MM:       k.mm,
		VFS:      k.vfs,
		KHO:      k.kho,
		Faults:   k.faults,
		Calls:    k.calls,
	})
	if err != nil {
		return err
	}
	k.luo = l
	_ = l.LateInit()
	return nil
}
