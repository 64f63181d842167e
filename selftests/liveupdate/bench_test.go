package liveupdate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	lu "luomodel/userspace/libliveupdate"
)

// BenchmarkCreateSession measures LIVEUPDATE_IOCTL_CREATE_SESSION through
// libliveupdate; every 800 sessions are closed to stay under the limit.
func BenchmarkCreateSession(b *testing.B) {
	m := newMachine(b)
	task, dev := openDevice(b, m)
	fds := make([]int, 0, 800)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fd, err := lu.CreateSession(task, dev, fmt.Sprintf("bench-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		fds = append(fds, fd)
		if len(fds) == cap(fds) {
			b.StopTimer()
			for _, fd := range fds {
				require.NoError(b, task.Close(fd))
			}
			fds = fds[:0]
			b.StartTimer()
		}
	}
	b.StopTimer()
	task.Exit()
}

// BenchmarkRetrieveFD measures LIVEUPDATE_SESSION_RETRIEVE_FD of an
// already retrieved token (the idempotent path: a new fd on the same
// file), closing each fd.
func BenchmarkRetrieveFD(b *testing.B) {
	m := newMachine(b)
	task, dev := openDevice(b, m)
	s, err := lu.CreateSession(task, dev, "bench")
	require.NoError(b, err)
	require.NoError(b, lu.CreateAndPreserveMemfd(task, s, 1, "bench"))
	kexec(b, m)
	task2, dev2 := openDevice(b, m)
	in, err := lu.RetrieveSession(task2, dev2, "bench")
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fd, err := lu.RetrieveFD(task2, in, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := task2.Close(fd); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	task2.Exit()
}

// BenchmarkKexec819Sessions measures a live update carrying 819 empty
// sessions (serialize, hand-over, boot, deserialize on first open).
func BenchmarkKexec819Sessions(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m := newMachine(b)
		task, dev := openDevice(b, m)
		for j := 0; j < sessionMax; j++ {
			_, err := lu.CreateSession(task, dev, fmt.Sprintf("s%d", j))
			require.NoError(b, err)
		}
		b.StartTimer()
		kexec(b, m)
		_, dev2 := openDevice(b, m)
		_ = dev2
	}
}

// BenchmarkKexec128Memfds measures a live update of one session holding
// 128 one-page memfds, including retrieving every file.
func BenchmarkKexec128Memfds(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m := newMachine(b)
		task, dev := openDevice(b, m)
		s, err := lu.CreateSession(task, dev, "files")
		require.NoError(b, err)
		for j := 0; j < fileMax; j++ {
			require.NoError(b, lu.CreateAndPreserveMemfd(task, s, uint64(j), "data"))
		}
		b.StartTimer()
		kexec(b, m)
		task2, dev2 := openDevice(b, m)
		in, err := lu.RetrieveSession(task2, dev2, "files")
		require.NoError(b, err)
		for j := 0; j < fileMax; j++ {
			fd, err := lu.RetrieveFD(task2, in, uint64(j))
			require.NoError(b, err)
			require.NoError(b, task2.Close(fd))
		}
		require.NoError(b, lu.FinishSession(task2, in))
	}
}
