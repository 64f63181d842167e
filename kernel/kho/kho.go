// Package kho ports Kexec HandOver (kernel/liveupdate/kexec_handover.c):
// marking memory to keep across kexec, handing named FDT subtrees to the
// next kernel, and restoring both there.
package kho

import (
	"syscall"

	"luomodel/kernel/mm"
)

// KHO is one kernel's hand-over state: what it preserves for the next
// kernel (outgoing) and what the previous kernel handed to it (incoming).
type KHO struct {
	mm      *mm.MM
	enabled bool
}

// IsEnabled ports kho_is_enabled().
func (k *KHO) IsEnabled() bool { return k.enabled }

// AllocPreserve ports kho_alloc_preserve(): zeroed, contiguous, preserved.
func (k *KHO) AllocPreserve(size uint64) (mm.PhysAddr, error) { return 0, syscall.ENOMEM }

// UnpreserveFree ports kho_unpreserve_free(); pa 0 is a no-op.
func (k *KHO) UnpreserveFree(pa mm.PhysAddr) {}

// RestoreFree ports kho_restore_free(); pa 0 is a no-op.
func (k *KHO) RestoreFree(pa mm.PhysAddr) {}

// AddSubtree ports kho_add_subtree(): fdt is the PA of a preserved FDT.
func (k *KHO) AddSubtree(name string, fdt mm.PhysAddr) error { return nil }

// RetrieveSubtree ports kho_retrieve_subtree(); ENOENT without hand-over data.
func (k *KHO) RetrieveSubtree(name string) (mm.PhysAddr, error) { return 0, syscall.ENOENT }

// Finalize ports kho_finalize().
func (k *KHO) Finalize() error { return nil }
