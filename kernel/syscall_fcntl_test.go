package kernel

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/mm"
)

// TestFcntlSeals: F_ADD_SEALS and F_GET_SEALS reach memfd_fcntl(): a
// memfd's seals, EINVAL for a file without seals, EPERM first for a file
// not open for writing.
func TestFcntlSeals(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	fd, err := task.MemfdCreate("s", mm.MFD_ALLOW_SEALING)
	require.NoError(t, err)
	seals, err := task.Fcntl(fd, mm.F_GET_SEALS, 0)
	require.NoError(t, err)
	require.Zero(t, seals)
	_, err = task.Fcntl(fd, mm.F_ADD_SEALS, mm.F_SEAL_WRITE)
	require.NoError(t, err)
	seals, err = task.Fcntl(fd, mm.F_GET_SEALS, 0)
	require.NoError(t, err)
	require.Equal(t, mm.F_SEAL_WRITE, seals)
	_, err = task.Write(fd, []byte("x"))
	require.ErrorIs(t, err, syscall.EPERM)
	_, err = task.Fcntl(fd, mm.F_ADD_SEALS, -1)
	require.ErrorIs(t, err, syscall.EINVAL, "unknown seals")

	plain, err := task.MemfdCreate("p", 0)
	require.NoError(t, err)
	_, err = task.Fcntl(plain, mm.F_ADD_SEALS, mm.F_SEAL_GROW)
	require.ErrorIs(t, err, syscall.EPERM, "F_SEAL_SEAL without MFD_ALLOW_SEALING")

	rw, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	_, err = task.Fcntl(rw, mm.F_ADD_SEALS, mm.F_SEAL_GROW)
	require.ErrorIs(t, err, syscall.EINVAL, "no seals")
	_, err = task.Fcntl(rw, mm.F_GET_SEALS, 0)
	require.ErrorIs(t, err, syscall.EINVAL)
	ro, err := task.Open("/dev/null", syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = task.Fcntl(ro, mm.F_ADD_SEALS, 0x40)
	require.ErrorIs(t, err, syscall.EPERM, "FMODE_WRITE is checked first")
}
