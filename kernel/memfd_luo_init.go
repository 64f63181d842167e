package kernel

import "luomodel/kernel/mm/memfdluo"

// memfdLUOInit ports mm/memfd_luo.c:memfd_luo_init(), a late_initcall:
// register the memfd file handler with LUO. A disabled LUO refuses it
// with EOPNOTSUPP, which counts as success, as in Linux; any other error
// fails the boot.
func (k *Kernel) memfdLUOInit() error {
	if k.luo == nil {
		return nil
	}
	return memfdluo.New(k.shmem, k.kho, k.rep).Register(k.luo)
}
