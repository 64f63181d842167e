package kernel

import (
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm/memfdluo"
)

// memfdLUOInit ports mm/memfd_luo.c:memfd_luo_init(), a late_initcall:
// register the memfd file handler with LUO. A disabled LUO refuses it
// with EOPNOTSUPP, which counts as success, as in Linux; any other error
// fails the boot.
func (k *Kernel) memfdLUOInit() error {
	if k.luo == nil {
		return nil
	}
	h := memfdluo.New(k.shmem, k.kho, k.rep)
	k.memfdFH = h.FileHandler()
	return h.Register(k.luo)
}

// MemfdHandler returns the memfd file handler of k (nil without LUO), as
// a module would hold its own: to register and unregister it again.
func (k *Kernel) MemfdHandler() *liveupdate.FileHandler { return k.memfdFH }
