package kernel

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/mm"
)

// TestPreadPwrite: pread/pwrite work at an offset and leave the file
// position alone; a negative offset is EINVAL before the fd is looked at.
func TestPreadPwrite(t *testing.T) {
	k := strictKernel(t)
	tk := k.NewTask()
	defer tk.Exit()
	fd, err := tk.MemfdCreate("p", 0)
	require.NoError(t, err)
	n, err := tk.Pwrite(fd, []byte("abc"), 10)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	pos, err := tk.Lseek(fd, 0, mm.SeekCur)
	require.NoError(t, err)
	require.Zero(t, pos)
	buf := make([]byte, 20)
	n, err = tk.Pread(fd, buf, 8)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 'a', 'b', 'c'}, buf[:n])
	_, err = tk.Pread(99, buf, -1)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = tk.Pwrite(99, buf, 0)
	require.ErrorIs(t, err, syscall.EBADF)
	dev, err := tk.Open("/dev/null", syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = tk.Pwrite(dev, buf, 0)
	require.ErrorIs(t, err, syscall.EBADF)
}

// TestFstat: a memfd is a regular file with its size and pages; /dev/null
// is a character device; a closed fd is EBADF.
func TestFstat(t *testing.T) {
	k := strictKernel(t)
	tk := k.NewTask()
	defer tk.Exit()
	fd, err := tk.MemfdCreate("s", 0)
	require.NoError(t, err)
	_, err = tk.Write(fd, make([]byte, mm.PageSize+1))
	require.NoError(t, err)
	st, err := tk.Fstat(fd)
	require.NoError(t, err)
	require.Equal(t, uint32(syscall.S_IFREG|0o777), st.Mode)
	require.Equal(t, int64(mm.PageSize+1), st.Size)
	require.Equal(t, int64(2*mm.PageSize/512), st.Blocks)
	require.Zero(t, st.Nlink)
	dev, err := tk.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	st, err = tk.Fstat(dev)
	require.NoError(t, err)
	require.Equal(t, uint32(syscall.S_IFCHR|0o666), st.Mode)
	require.Equal(t, mkdev(1, 3), st.Rdev)
	require.NoError(t, tk.Close(dev))
	_, err = tk.Fstat(dev)
	require.ErrorIs(t, err, syscall.EBADF)
}

// TestMmap: a shared writable mapping stores its bytes back at msync and
// munmap (not past the end of file), holds its file after close, and the
// errors come in Linux's order.
func TestMmap(t *testing.T) {
	k := strictKernel(t)
	tk := k.NewTask()
	defer tk.Exit()
	fd, err := tk.MemfdCreate("m", 0)
	require.NoError(t, err)
	require.NoError(t, tk.Ftruncate(fd, 100))
	_, err = tk.Pwrite(fd, []byte("old"), 0)
	require.NoError(t, err)

	m, data, err := tk.Mmap(fd, 10, ProtRead|ProtWrite, MapShared, 0)
	require.NoError(t, err)
	require.Len(t, data, mm.PageSize)
	require.Equal(t, "old", string(data[:3]))
	require.True(t, m.SharedWritable())
	copy(data, "new")
	data[200] = 'x' // past i_size: dropped
	require.NoError(t, tk.Msync(m, 0, data))
	keep, err := tk.Dup(fd)
	require.NoError(t, err)
	require.NoError(t, tk.Close(fd)) // the mapping keeps the file
	copy(data[1:], "EW")
	require.NoError(t, tk.Munmap(m, data))
	got := make([]byte, 200)
	n, err := tk.Pread(keep, got, 0)
	require.NoError(t, err)
	require.Equal(t, 100, n, "write-back never extends the file")
	require.Equal(t, "nEW", string(got[:3]))
	require.NoError(t, tk.Close(keep))
	require.NoError(t, tk.Munmap(m, data), "a second munmap does nothing")
	require.ErrorIs(t, tk.Msync(m, 0, data), syscall.ENOMEM)

	fd, err = tk.MemfdCreate("m2", 0)
	require.NoError(t, err)
	_, _, err = tk.Mmap(fd, 10, ProtRead, MapShared, 1)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, _, err = tk.Mmap(99, 10, ProtRead, MapShared, 1)
	require.ErrorIs(t, err, syscall.EINVAL, "the offset is checked before the fd")
	_, _, err = tk.Mmap(99, 10, ProtRead, MapShared, 0)
	require.ErrorIs(t, err, syscall.EBADF)
	_, _, err = tk.Mmap(fd, 0, ProtRead, MapShared, 0)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, _, err = tk.Mmap(fd, 10, ProtRead, 0, 0)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, _, err = tk.Mmap(fd, MaxMappingBytes+1, ProtRead, MapShared, 0)
	require.ErrorIs(t, err, syscall.ENOMEM)
	dev, err := tk.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	_, _, err = tk.Mmap(dev, 10, ProtRead, MapShared, 0)
	require.ErrorIs(t, err, syscall.ENODEV)
	wo, err := tk.Open("/dev/null", syscall.O_WRONLY)
	require.NoError(t, err)
	_, _, err = tk.Mmap(wo, 10, ProtRead, MapPrivate, 0)
	require.ErrorIs(t, err, syscall.EACCES)

	// A private mapping never writes back.
	p, data, err := tk.Mmap(fd, 10, ProtRead|ProtWrite, MapPrivate, 0)
	require.NoError(t, err)
	require.NoError(t, tk.Ftruncate(fd, 10))
	copy(data, "private")
	require.NoError(t, tk.Munmap(p, data))
	buf := make([]byte, 10)
	_, err = tk.Pread(fd, buf, 0)
	require.NoError(t, err)
	require.Equal(t, make([]byte, 10), buf)

	// A sealed memfd refuses a shared writable mapping.
	sfd, err := tk.MemfdCreate("sealed", mm.MFD_ALLOW_SEALING)
	require.NoError(t, err)
	f, err := tk.fds.Get(sfd)
	require.NoError(t, err)
	require.NoError(t, mm.ShmemInodeOf(f).AddSeals(mm.F_SEAL_WRITE))
	f.Put()
	_, _, err = tk.Mmap(sfd, 10, ProtRead|ProtWrite, MapShared, 0)
	require.ErrorIs(t, err, syscall.EPERM)
	c, _, err := tk.Mmap(sfd, 10, ProtRead, MapShared, 0)
	require.NoError(t, err)
	cl := c.Clone()
	require.NoError(t, tk.Munmap(c, nil))
	cl.Unmap()
}
