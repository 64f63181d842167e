// Package memfdluo ports mm/memfd_luo.c and include/linux/kho/abi/memfd.h:
// the Live Update Orchestrator's file handler for memfd files
// ("memfd-v1"). It preserves a memfd's contents, size and file position
// across a kexec by pinning and preserving every folio of the file with
// KHO and describing them in a struct memfd_luo_ser in preserved memory;
// the next kernel rebuilds a new memfd from that description.
//
// Layering: this is the one mm package above liveupdate in the import
// graph (locking ← vfs ← mm ← kho ← liveupdate ← mm/memfdluo ← kernel). It
// needs both shmem (kernel/mm) and the LUO file-handler API
// (kernel/liveupdate), as mm/memfd_luo.c does; package kernel registers
// it at boot (memfd_luo_init, a late_initcall).
//
// Preserved: contents, size, position, and the O_RDWR|O_LARGEFILE status
// flags every memfd has. Not preserved: the name, FD_CLOEXEC and seals;
// the retrieved memfd is unsealed and unnamed. Hugetlb memfds are refused.
//
// Locking: preserve and unpreserve hold the shmem inode lock (inode_lock())
// while they freeze or unfreeze the inode and pin or release its folios.
// The LUO core calls every callback with its per-file mutex held; the
// handler keeps no state of its own between calls other than what LUO
// stores for it (serialized_data, private_data), so it needs no lock.
package memfdluo
