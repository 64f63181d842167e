package kernel

// memfdLUOInit ports mm/memfd_luo.c's late_initcall: register the memfd
// file handler with LUO.
func (k *Kernel) memfdLUOInit() error { return nil }
