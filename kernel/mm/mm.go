package mm

import (
	"syscall"

	"luomodel/kernel/bug"
)

// MM is one kernel's page allocator over RAM.
type MM struct {
	ram *RAM
	rep *bug.Reporter
}

// Range is a physically contiguous range.
type Range struct {
	Start PhysAddr
	Size  uint64
}

// New builds the allocator of a booting kernel over ram; reserved ranges
// (memory handed over by the previous kernel) are not handed out.
func New(ram *RAM, rep *bug.Reporter, reserved []Range) *MM { return &MM{ram: ram, rep: rep} }

// AllocPages ports alloc_pages(): 2^order contiguous pages.
func (m *MM) AllocPages(order uint, zeroed bool) (PhysAddr, error) { return 0, syscall.ENOMEM }

// FreePages ports __free_pages().
func (m *MM) FreePages(pa PhysAddr, order uint) {}

// Read copies bytes from allocated memory at pa; an access to memory that
// is not allocated is reported (KASAN) and fails with EFAULT.
func (m *MM) Read(pa PhysAddr, dst []byte) error { return syscall.EFAULT }

// Write copies bytes into allocated memory at pa, checked like Read.
func (m *MM) Write(pa PhysAddr, src []byte) error { return syscall.EFAULT }
