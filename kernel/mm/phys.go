package mm

// Page geometry.
const (
	PageShift = 12
	PageSize  = 1 << PageShift
)

// PhysAddr is a physical address.
type PhysAddr uint64

// PFN is a page frame number.
type PFN uint64

// PFN returns the frame containing pa.
func (pa PhysAddr) PFN() PFN { return PFN(pa >> PageShift) }

// Addr returns the first byte of the frame.
func (p PFN) Addr() PhysAddr { return PhysAddr(p) << PageShift }

// RAM is the machine's physical memory.
type RAM struct {
	size uint64
}

// NewRAM returns size bytes of physical memory.
func NewRAM(size uint64) *RAM { return &RAM{size: size} }

// Size is the amount of physical memory in bytes.
func (r *RAM) Size() uint64 { return r.size }
