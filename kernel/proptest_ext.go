package kernel

import "luomodel/kernel/vfs"

// This file is not a port: it is the checker's read-only access to the
// kernel's file layer (the leak check of proptest and `luo check`).

// VFS returns the kernel's file layer.
func (k *Kernel) VFS() *vfs.VFS { return k.vfs }
