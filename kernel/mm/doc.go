// Package mm ports the slice of Linux's mm/ that LUO and KHO stand on:
// simulated physical memory, a page/folio allocator, and shmem-backed memfd.
//
// RAM is the machine's memory: bytes at physical addresses, and nothing
// else, so it is the one thing that crosses a kexec. MM is one kernel's
// view of it (which pages are allocated, free or reserved) and is rebuilt
// at every boot.
package mm
