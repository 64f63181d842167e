package mm

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemfdCreateNameAndFlags(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "hello", MFD_CLOEXEC)
	require.Equal(t, "memfd:hello", m.f.Name())
	require.Equal(t, syscall.O_RDWR|OLargefile, m.f.Flags())
	require.Equal(t, MemfdFileFlags, m.f.Flags())
	require.True(t, IsMemfd(m.f))
	require.True(t, IsShmemFile(m.f))
	si := ShmemInodeOf(m.f)
	require.NotNil(t, si)
	require.Zero(t, si.Nlink())
	require.EqualValues(t, 0, si.Size())
	require.Same(t, si.Inode(), m.f.Inode())
	require.Equal(t, m.f.Inode().Ino(), si.ID())
	require.False(t, si.Hugetlb())
	m.f.Put()

	// The name ends at a NUL, as a C string does; the empty name is fine.
	m = mustMemfd(t, s, "a\x00bc", 0)
	require.Equal(t, "memfd:a", m.f.Name())
	m.f.Put()
	m = mustMemfd(t, s, "", 0)
	require.Equal(t, "memfd:", m.f.Name())
	m.f.Put()

	// Name length limit: 249 bytes.
	m = mustMemfd(t, s, strings.Repeat("x", MemfdNameMaxLen), 0)
	require.Len(t, m.f.Name(), 255)
	m.f.Put()
	_, err := s.MemfdCreate(strings.Repeat("x", MemfdNameMaxLen+1), 0)
	require.ErrorIs(t, err, syscall.EINVAL)

	for _, bad := range []uint{0x20, 0x80000000, MFD_EXEC | MFD_NOEXEC_SEAL, 1 << MFD_HUGE_SHIFT} {
		_, err := s.MemfdCreate("bad", bad)
		require.ErrorIs(t, err, syscall.EINVAL, "flags %#x", bad)
	}
	for _, good := range []uint{0, MFD_CLOEXEC | MFD_ALLOW_SEALING, MFD_NOEXEC_SEAL, MFD_EXEC,
		MFD_HUGETLB, MFD_HUGETLB | 21<<MFD_HUGE_SHIFT} {
		f, err := s.MemfdCreate("good", good)
		require.NoError(t, err, "flags %#x", good)
		f.Put()
	}
	require.EqualValues(t, 0, s.LiveInodes())
}

func TestMemfdDistinctIDs(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	a, b := mustMemfd(t, s, "a", 0), mustMemfd(t, s, "b", 0)
	require.NotEqual(t, ShmemInodeOf(a.f).ID(), ShmemInodeOf(b.f).ID())
	a.f.Put()
	b.f.Put()
}

func TestMemfdSeals(t *testing.T) {
	s := newTestShmem(t, 4*mib)

	// Without MFD_ALLOW_SEALING, F_SEAL_SEAL is set from the start.
	m := mustMemfd(t, s, "s", 0)
	si := ShmemInodeOf(m.f)
	require.EqualValues(t, F_SEAL_SEAL, si.Seals())
	require.ErrorIs(t, si.AddSeals(F_SEAL_GROW), syscall.EPERM)
	m.f.Put()

	m = mustMemfd(t, s, "s", MFD_ALLOW_SEALING)
	si = ShmemInodeOf(m.f)
	require.EqualValues(t, 0, si.Seals())
	require.ErrorIs(t, si.AddSeals(0x40), syscall.EINVAL)
	_, err := m.write([]byte("0123456789"))
	require.NoError(t, err)
	require.NoError(t, si.AddSeals(F_SEAL_SHRINK))
	require.ErrorIs(t, m.truncate(5), syscall.EPERM)
	require.NoError(t, m.truncate(20))
	require.NoError(t, si.AddSeals(F_SEAL_GROW))
	require.ErrorIs(t, m.truncate(21), syscall.EPERM)
	m.pos = 19
	n, err := m.write([]byte("ab")) // would grow
	require.ErrorIs(t, err, syscall.EPERM)
	require.Zero(t, n)
	m.pos = 0
	_, err = m.write([]byte("ok")) // inside the size
	require.NoError(t, err)
	require.NoError(t, si.AddSeals(F_SEAL_WRITE|F_SEAL_SEAL))
	_, err = m.write([]byte("no"))
	require.ErrorIs(t, err, syscall.EPERM)
	require.ErrorIs(t, si.AddSeals(F_SEAL_EXEC), syscall.EPERM)
	m.f.Put()

	// MFD_NOEXEC_SEAL: sealable, with F_SEAL_EXEC already set.
	m = mustMemfd(t, s, "s", MFD_NOEXEC_SEAL)
	require.EqualValues(t, F_SEAL_EXEC, ShmemInodeOf(m.f).Seals())
	m.f.Put()

	// F_SEAL_EXEC on an executable memfd implies the write seals.
	m = mustMemfd(t, s, "s", MFD_ALLOW_SEALING|MFD_EXEC)
	si = ShmemInodeOf(m.f)
	require.NoError(t, si.AddSeals(F_SEAL_EXEC))
	require.EqualValues(t, F_SEAL_EXEC|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_FUTURE_WRITE, si.Seals())
	m.f.Put()
}

func TestMemfdSealWriteBusyWhilePinned(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "s", MFD_ALLOW_SEALING)
	si := ShmemInodeOf(m.f)
	_, err := m.write(pattern(PageSize, 1))
	require.NoError(t, err)
	si.Lock()
	folios, err := si.PinFoliosLocked(0, si.Size()-1)
	si.Unlock()
	require.NoError(t, err)
	require.ErrorIs(t, si.AddSeals(F_SEAL_WRITE), syscall.EBUSY)
	UnpinFolios(folios)
	require.NoError(t, si.AddSeals(F_SEAL_WRITE))
	m.f.Put()
}

func TestMemfdHugetlb(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "huge", MFD_HUGETLB)
	require.True(t, IsMemfd(m.f))
	require.False(t, IsShmemFile(m.f), "a hugetlb memfd is not a shmem file")
	require.Nil(t, ShmemInodeOf(m.f))
	_, err := m.write([]byte("x"))
	require.ErrorIs(t, err, syscall.EINVAL)
	require.ErrorIs(t, m.truncate(4096), syscall.EINVAL)
	require.NoError(t, m.truncate(HugePageSize))
	got := make([]byte, 16)
	n, err := m.read(got)
	require.NoError(t, err)
	require.Equal(t, 16, n)
	require.Equal(t, make([]byte, 16), got)
	m.f.Put()
	require.EqualValues(t, 0, s.LiveInodes())
}
