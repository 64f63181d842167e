package mm

import "encoding/binary"

// Checked access to physical memory: what a running kernel's
// phys_to_virt() pointers become. Every access is checked by the KASAN-like
// checker (kasan.go) before it touches RAM; a bad access copies nothing and
// fails with EFAULT. Multi-byte values are little-endian, as the hand-over
// ABI is.

// Read copies bytes from allocated memory at pa; an access to memory that
// is not allocated is reported (KASAN) and fails with EFAULT.
func (m *MM) Read(pa PhysAddr, dst []byte) error {
	if err := m.checkAccess(pa, uint64(len(dst)), false); err != nil {
		return err
	}
	m.ram.readRaw(pa, dst)
	return nil
}

// Write copies bytes into allocated memory at pa, checked like Read.
func (m *MM) Write(pa PhysAddr, src []byte) error {
	if err := m.checkAccess(pa, uint64(len(src)), true); err != nil {
		return err
	}
	m.ram.writeRaw(pa, src)
	return nil
}

// Zero ports memset(phys_to_virt(pa), 0, n), checked like Write.
func (m *MM) Zero(pa PhysAddr, n uint64) error {
	if err := m.checkAccess(pa, n, true); err != nil {
		return err
	}
	m.ram.setRaw(pa, n, 0)
	return nil
}

// ReadU8 reads the byte at pa.
func (m *MM) ReadU8(pa PhysAddr) (uint8, error) {
	var b [1]byte
	err := m.Read(pa, b[:])
	return b[0], err
}

// ReadU16 reads a little-endian u16 at pa.
func (m *MM) ReadU16(pa PhysAddr) (uint16, error) {
	var b [2]byte
	err := m.Read(pa, b[:])
	return binary.LittleEndian.Uint16(b[:]), err
}

// ReadU32 reads a little-endian u32 at pa.
func (m *MM) ReadU32(pa PhysAddr) (uint32, error) {
	var b [4]byte
	err := m.Read(pa, b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

// ReadU64 reads a little-endian u64 at pa.
func (m *MM) ReadU64(pa PhysAddr) (uint64, error) {
	var b [8]byte
	err := m.Read(pa, b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

// WriteU8 writes the byte v at pa.
func (m *MM) WriteU8(pa PhysAddr, v uint8) error {
	return m.Write(pa, []byte{v})
}

// WriteU16 writes v at pa, little-endian.
func (m *MM) WriteU16(pa PhysAddr, v uint16) error {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	return m.Write(pa, b[:])
}

// WriteU32 writes v at pa, little-endian.
func (m *MM) WriteU32(pa PhysAddr, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return m.Write(pa, b[:])
}

// WriteU64 writes v at pa, little-endian.
func (m *MM) WriteU64(pa PhysAddr, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return m.Write(pa, b[:])
}
