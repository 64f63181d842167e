// Package kho ports Kexec HandOver (kernel/liveupdate/kexec_handover.c,
// include/linux/kexec_handover.h and include/linux/kho/abi/kexec_handover.h
// as of Linux 6.19): marking memory to keep across kexec, handing named FDT
// subtrees to the next kernel, and restoring both there.
//
// # Outgoing (the running kernel)
//
// New (kho_init()) allocates the root FDT in preserved memory. Users mark
// memory with PreserveFolio, PreservePages, PreserveVmalloc or
// AllocPreserve, and register subtrees with AddSubtree. Finalize
// (kho_finalize()) serializes the tracker into a chain of khoser_mem_chunk
// pages and stores its PA in the root FDT's "preserved-memory-map"
// property. The PA of the root FDT (FDTAddr) is the hand-over descriptor
// kexec passes to the next kernel.
//
// # Incoming (the next kernel)
//
// Populate (kho_populate() + kho_mem_deserialize()) runs before the next
// kernel's allocator exists. It reads the root FDT and the chunk chain from
// raw RAM given only the descriptor, and returns the preserved blocks: the
// new MM is built with them reserved, and each block's head is marked with
// KHO_PAGE_MAGIC and its order (page->private upstream; a table of the KHO
// instance here). RestoreFolio / RestorePages / RestoreFree /
// RestoreVmalloc claim a marked block into the allocator and clear the
// mark, so restoring twice, or restoring what was not preserved, fails with
// EINVAL and a WARN report.
//
// The chunk and bitmap pages are ordinary memory of the previous kernel:
// they survive the kexec scrub (Handover.Keep), are read once by Populate
// and are free memory in the new kernel, as upstream frees them once the
// scratch-only phase of early boot ends. Scratch areas themselves are not
// modelled: Populate runs before any allocation, so nothing can overwrite
// preserved memory.
//
// # Preserved memory nobody restores
//
// A preserved block the next kernel never restores stays reserved for that
// kernel's whole life: it is neither allocated nor free, MM stats count it
// as reserved, and any access to it through MM is a KASAN report. It is
// not carried to the kernel after, because only what this kernel preserves
// again is handed over. This is upstream's behaviour (the pages stay
// memblock-reserved and are never given to the buddy allocator); LUO's
// accounting counts such blocks as leaks.
//
// # Locking
//
// kho_out.lock (KHO.outMu) guards the root FDT and the finalized state;
// kho_mem_track.lock (memTrack.mu) guards the tracker; kho_in.lock
// (KHO.inMu) guards the incoming head-page marks. The only nesting is
// kho_out.lock -> kho_mem_track.lock (Finalize serializes the tracker),
// and MM's allocator lock, a leaf, may be taken under either.
package kho
