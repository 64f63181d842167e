package liveupdate

// Live-update tests beyond the upstream selftests: a full-limits round
// trip, the liveupdate number, the fate of closed and same-named sessions,
// what of a memfd survives, and that unretrieved files are discarded.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	lu "luomodel/userspace/libliveupdate"
)

// memfdSpec describes one memfd of the round trip: its size, a written
// extent (the rest is a hole) and its file position.
type memfdSpec struct {
	size     int64
	dataOff  int64
	dataLen  int64
	pos      int64
	contents []byte // the whole file as it must read back
}

// variedMemfd returns the i-th memfd of the round trip: empty, 1 byte,
// page-sized and multi-page files, some with holes before and after the
// written part.
func variedMemfd(i int) memfdSpec {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	var s memfdSpec
	switch i % 8 {
	case 0: // empty
	case 1:
		s.size, s.dataLen = 1, 1
	case 2:
		s.size, s.dataLen = 4096, 4096
	case 3:
		s.size, s.dataLen = 4097, 4097
	case 4: // hole, data, hole
		s.size, s.dataOff, s.dataLen = 5*4096+100, 2*4096+7, 300
	case 5: // hole at the start only
		s.size, s.dataOff, s.dataLen = 3*4096, 2*4096, 4096
	case 6: // all hole
		s.size = 2*4096 + 1
	default:
		s.size = int64(1 + r.IntN(6*4096))
		s.dataLen = s.size
	}
	s.contents = make([]byte, s.size)
	for j := s.dataOff; j < s.dataOff+s.dataLen; j++ {
		s.contents[j] = byte(r.Uint32()) | 1 // never 0, so holes show
	}
	if s.size > 0 {
		s.pos = int64(r.IntN(int(s.size) + 1))
	}
	return s
}

// createMemfd builds the memfd of spec in task.
func createMemfd(t *testing.T, task *kernel.Task, spec memfdSpec) int {
	t.Helper()
	fd, err := task.MemfdCreate("varied", 0)
	require.NoError(t, err)
	require.NoError(t, task.Ftruncate(fd, spec.size))
	if spec.dataLen > 0 {
		_, err = task.Lseek(fd, spec.dataOff, 0)
		require.NoError(t, err)
		n, err := task.Write(fd, spec.contents[spec.dataOff:spec.dataOff+spec.dataLen])
		require.NoError(t, err)
		require.Equal(t, int(spec.dataLen), n)
	}
	_, err = task.Lseek(fd, spec.pos, 0)
	require.NoError(t, err)
	return fd
}

// TestKexecRoundTripFullLimits: 819 sessions, one holding 128 memfds of
// varied sizes (empty, 1 byte, multi-page, with holes), survive a live
// update with every name, token, byte, size and position.
func TestKexecRoundTripFullLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("full-limits round trip")
	}
	m := newMachine(t)
	task, dev := openDevice(t, m)
	name := func(i int) string { return fmt.Sprintf("session-%03d-%s", i, bytes.Repeat([]byte{'n'}, i%40)) }
	token := func(j int) uint64 { return uint64(j)*0x9E3779B97F4A7C15 + 1 }
	const full = 417 // the session that holds the files
	for i := 0; i < sessionMax; i++ {
		sess, err := lu.CreateSession(task, dev, name(i))
		require.NoError(t, err, "session %d", i)
		if i != full {
			continue
		}
		for j := 0; j < fileMax; j++ {
			fd := createMemfd(t, task, variedMemfd(j))
			require.NoError(t, lu.PreserveFD(task, sess, fd, token(j)), "file %d", j)
			require.NoError(t, task.Close(fd))
		}
	}

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	for i := 0; i < sessionMax; i++ {
		sess, err := lu.RetrieveSession(task2, dev2, name(i))
		require.NoError(t, err, "session %d", i)
		got, err := lu.SessionName(task2, sess)
		require.NoError(t, err)
		require.Equal(t, name(i), got)
		if i == full {
			for j := 0; j < fileMax; j++ {
				spec := variedMemfd(j)
				fd, err := lu.RetrieveFD(task2, sess, token(j))
				require.NoError(t, err, "file %d", j)
				require.Equal(t, spec.pos, filePos(t, task2, fd), "file %d position", j)
				require.Equal(t, spec.size, fileSize(t, task2, fd), "file %d size", j)
				require.True(t, bytes.Equal(spec.contents, readAll(t, task2, fd)), "file %d contents", j)
				require.NoError(t, task2.Close(fd))
			}
			_, err = lu.RetrieveFD(task2, sess, token(fileMax))
			require.ErrorIs(t, err, syscall.ENOENT)
		}
		require.NoError(t, lu.FinishSession(task2, sess))
		require.NoError(t, task2.Close(sess))
	}
	task2.Exit()
}

// TestLiveupdateNumberIncrements: liveupdate-number is 1 in the first
// hand-over and grows by one with every live update.
func TestLiveupdateNumberIncrements(t *testing.T) {
	m := newMachine(t)
	require.Zero(t, incomingLiveupdateNum(t, m), "cold boot has no hand-over")
	for n := uint64(1); n <= 3; n++ {
		kexec(t, m)
		require.Equal(t, n, incomingLiveupdateNum(t, m))
	}
}

// TestClosedSessionGoneAfterKexec: a session closed before the reboot
// (abort: its files unpreserved) is absent in the next kernel.
func TestClosedSessionGoneAfterKexec(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	gone, err := lu.CreateSession(task, dev, "gone")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, gone, 1, "lost"))
	_, err = lu.CreateSession(task, dev, "kept")
	require.NoError(t, err)
	require.NoError(t, task.Close(gone))

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	_, err = lu.RetrieveSession(task2, dev2, "gone")
	require.ErrorIs(t, err, syscall.ENOENT)
	kept, err := lu.RetrieveSession(task2, dev2, "kept")
	require.NoError(t, err)
	require.NoError(t, task2.Close(kept))
}

// TestSameNameIncomingAndOutgoing: names are unique per list, so a new
// outgoing session may take the name of an incoming one, and the pattern
// "retrieve vm1, re-preserve its memory in a new vm1" survives a second
// live update.
func TestSameNameIncomingAndOutgoing(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "vm1")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, s, 7, "generation 1"))

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	out, err := lu.CreateSession(task2, dev2, "vm1") // incoming "vm1" not yet retrieved
	require.NoError(t, err)
	_, err = lu.CreateSession(task2, dev2, "vm1")
	require.ErrorIs(t, err, syscall.EEXIST)
	in, err := lu.RetrieveSession(task2, dev2, "vm1")
	require.NoError(t, err)
	for _, fd := range []int{in, out} {
		name, err := lu.SessionName(task2, fd)
		require.NoError(t, err)
		require.Equal(t, "vm1", name)
	}
	mfd, err := lu.RestoreAndVerifyMemfd(task2, in, 7, "generation 1")
	require.NoError(t, err)
	require.NoError(t, lu.FinishSession(task2, in))
	require.NoError(t, task2.Close(in))
	// Re-preserve the retrieved memfd, updated, in the new outgoing "vm1".
	_, err = task2.Write(mfd, []byte("generation 2\x00"))
	require.NoError(t, err)
	_, err = task2.Lseek(mfd, 0, 0)
	require.NoError(t, err)
	require.NoError(t, lu.PreserveFD(task2, out, mfd, 7))
	require.NoError(t, task2.Close(mfd))

	kexec(t, m)

	task3, dev3 := openDevice(t, m)
	in3, err := lu.RetrieveSession(task3, dev3, "vm1")
	require.NoError(t, err)
	restoreAndVerify(t, task3, in3, 7, "generation 2")
	require.NoError(t, lu.FinishSession(task3, in3))
	require.NoError(t, task3.Close(in3))
}

// TestMemfdWhatSurvives: contents, size and position survive; the name and
// the fd's close-on-exec flag do not (the retrieved fd is always
// close-on-exec, as RETRIEVE_FD reserves it with O_CLOEXEC). Seals are not
// preserved either; the memfdluo unit tests check that, as no syscall here
// reads them.
func TestMemfdWhatSurvives(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "survive")
	require.NoError(t, err)
	fd, err := task.MemfdCreate("named", 0)
	require.NoError(t, err)
	name, err := task.Readlink(fd)
	require.NoError(t, err)
	require.Equal(t, "memfd:named", name)
	cloexec, err := task.FcntlGetFD(fd)
	require.NoError(t, err)
	require.Zero(t, cloexec)
	data := bytes.Repeat([]byte("0123456789abcdef"), 700) // 11200 bytes, 3 pages
	_, err = task.Write(fd, data)
	require.NoError(t, err)
	_, err = task.Lseek(fd, 1234, 0)
	require.NoError(t, err)
	require.NoError(t, lu.PreserveFD(task, s, fd, 1))
	// The position may move after preserve: freeze records the latest.
	_, err = task.Lseek(fd, 4321, 0)
	require.NoError(t, err)

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	in, err := lu.RetrieveSession(task2, dev2, "survive")
	require.NoError(t, err)
	fd2, err := lu.RetrieveFD(task2, in, 1)
	require.NoError(t, err)
	require.Equal(t, int64(4321), filePos(t, task2, fd2))
	require.Equal(t, int64(len(data)), fileSize(t, task2, fd2))
	require.Equal(t, data, readAll(t, task2, fd2))
	name, err = task2.Readlink(fd2)
	require.NoError(t, err)
	require.NotContains(t, name, "named")
	cloexec, err = task2.FcntlGetFD(fd2)
	require.NoError(t, err)
	require.Equal(t, 1, cloexec)
	// Retrieving the same token again gives a new fd on the same file.
	fd3, err := lu.RetrieveFD(task2, in, 1)
	require.NoError(t, err)
	require.NotEqual(t, fd2, fd3)
	_, err = task2.Lseek(fd3, 17, 0)
	require.NoError(t, err)
	require.Equal(t, int64(17), filePos(t, task2, fd2), "shared open file")
	require.NoError(t, task2.Close(fd3))

	require.NoError(t, lu.FinishSession(task2, in))
	require.NoError(t, task2.Close(in))
	// No longer preserved anywhere: the size is free to change.
	require.NoError(t, task2.Ftruncate(fd2, 10))
	require.Equal(t, data[:10], readAll(t, task2, fd2))
	require.NoError(t, task2.Close(fd2))
}

// TestSizeFrozenWhilePreserved: a preserved memfd cannot change size
// (shmem_freeze()); unpreserving it thaws it.
func TestSizeFrozenWhilePreserved(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "frozen")
	require.NoError(t, err)
	fd := memfdWith(t, task, "f", []byte("abc"), 0)
	require.NoError(t, lu.PreserveFD(task, s, fd, 1))
	require.ErrorIs(t, task.Ftruncate(fd, 4096), syscall.EPERM)
	require.ErrorIs(t, task.Ftruncate(fd, 0), syscall.EPERM)
	require.Equal(t, int64(3), fileSize(t, task, fd))
	// Writing inside the file is still allowed.
	n, err := task.Write(fd, []byte("xy"))
	require.NoError(t, err)
	require.Equal(t, 2, n)

	require.NoError(t, task.Close(s))
	require.NoError(t, task.Ftruncate(fd, 4096))
	require.NoError(t, task.Close(fd))
}

// TestUnretrievedFilesDiscardedAtFinish: FINISH frees the preserved memory
// of files that were never retrieved (memfd_luo_finish() discards them).
func TestUnretrievedFilesDiscardedAtFinish(t *testing.T) {
	const pages = 64
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "discard")
	require.NoError(t, err)
	fd := memfdWith(t, task, "big", bytes.Repeat([]byte{0xAB}, pages*4096), 0)
	require.NoError(t, lu.PreserveFD(task, s, fd, 1))
	require.NoError(t, lu.PreserveFD(task, s, memfdWith(t, task, "small", []byte("x"), 0), 2))

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	in, err := lu.RetrieveSession(task2, dev2, "discard")
	require.NoError(t, err)
	small, err := lu.RetrieveFD(task2, in, 2)
	require.NoError(t, err)
	before := freePages(m)
	require.NoError(t, lu.FinishSession(task2, in))
	after := freePages(m)
	// The 64 data pages, plus the memfd_luo_ser and folio array pages.
	require.GreaterOrEqual(t, after-before, uint64(pages+2), "unretrieved memfd not discarded")
	// After FINISH the token is gone; the retrieved file lives on.
	_, err = lu.RetrieveFD(task2, in, 1)
	require.Error(t, err)
	require.Equal(t, []byte("x"), readAll(t, task2, small))
	require.NoError(t, task2.Close(small))
	require.NoError(t, task2.Close(in))
}

// TestUnretrievedSessionCloseFinishes: closing a retrieved session without
// FINISH finishes it implicitly, discarding its unretrieved files.
func TestUnretrievedSessionCloseFinishes(t *testing.T) {
	const pages = 32
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "implicit")
	require.NoError(t, err)
	require.NoError(t, lu.PreserveFD(task, s, memfdWith(t, task, "big", bytes.Repeat([]byte{1}, pages*4096), 0), 1))

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	in, err := lu.RetrieveSession(task2, dev2, "implicit")
	require.NoError(t, err)
	before := freePages(m)
	require.NoError(t, task2.Close(in))
	require.GreaterOrEqual(t, freePages(m)-before, uint64(pages))
	// The session is gone: neither retrievable nor listed.
	_, err = lu.RetrieveSession(task2, dev2, "implicit")
	require.ErrorIs(t, err, syscall.ENOENT)
}
