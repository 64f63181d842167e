package liveupdate

// Ports of the two-stage kexec selftests: luo_kexec_simple.c,
// luo_multi_session.c, luo_stress_sessions.c and luo_stress_files.c. Each
// runs stage 1, a live update and stage 2 in one test. The stage-1 task
// stays alive across machine.Kexec(), holding the session fds, as the
// selftests' daemonize_and_wait() child does; luo_test()'s stage detection
// runs in both kernels.

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// twoStage ports luo_test(): detect the stage through the state session,
// run stage 1, kexec, detect stage 2 and run it. stage1 returns with its
// session fds still open.
func twoStage(t *testing.T, stateName string, stateToken uint64,
	stage1 func(task *kernel.Task, dev int),
	stage2 func(task *kernel.Task, dev, stateSess int)) *machine.Machine {
	t.Helper()
	m := newMachine(t)
	task, dev := openDevice(t, m)
	stage, _, err := lu.DetectStage(task, dev, stateName)
	require.NoError(t, err)
	require.Equal(t, 1, stage)
	_, err = lu.CreateStateFile(task, dev, stateName, stateToken, 2)
	require.NoError(t, err)
	stage1(task, dev)
	require.NoError(t, task.Close(dev))

	kexec(t, m)

	// The old kernel's tasks are dead.
	require.ErrorIs(t, task.Close(dev), syscall.ESRCH)

	task2, dev2 := openDevice(t, m)
	stage, stateSess, err := lu.DetectStage(task2, dev2, stateName)
	require.NoError(t, err)
	require.Equal(t, 2, stage)
	got, err := lu.RestoreAndReadStage(task2, stateSess, stateToken)
	require.NoError(t, err)
	require.Equal(t, 2, got)
	stage2(task2, dev2, stateSess)
	require.NoError(t, lu.FinishSession(task2, stateSess))
	require.NoError(t, task2.Close(stateSess))
	require.NoError(t, task2.Close(dev2))
	return m
}

// restoreAndVerify is restore_and_verify_memfd() + close().
func restoreAndVerify(t *testing.T, task *kernel.Task, sess int, token uint64, want string) {
	t.Helper()
	fd, err := lu.RestoreAndVerifyMemfd(task, sess, token, want)
	require.NoError(t, err, "token %#x", token)
	require.NoError(t, task.Close(fd))
}

// TestKexecSimple ports luo_kexec_simple.c.
func TestKexecSimple(t *testing.T) {
	const (
		sessionName = "test-session"
		token       = 0x1A
		data        = "hello kexec world"
	)
	twoStage(t, "kexec_simple_state", 999,
		func(task *kernel.Task, dev int) {
			sess, err := lu.CreateSession(task, dev, sessionName)
			require.NoError(t, err)
			require.NoError(t, lu.CreateAndPreserveMemfd(task, sess, token, data))
		},
		func(task *kernel.Task, dev, _ int) {
			sess, err := lu.RetrieveSession(task, dev, sessionName)
			require.NoError(t, err)
			restoreAndVerify(t, task, sess, token, data)
			require.NoError(t, lu.FinishSession(task, sess))
			require.NoError(t, task.Close(sess))
		})
}

// TestKexecMultiSession ports luo_multi_session.c: empty sessions and
// sessions with one and two files.
func TestKexecMultiSession(t *testing.T) {
	const (
		empty1, empty2 = "multi-test-empty-1", "multi-test-empty-2"
		files1, files2 = "multi-test-files-1", "multi-test-files-2"
		tok1, tok2     = 0x1001, 0x2002
		tok3           = 0x3003
		data1          = "Data for session files 1"
		data2          = "First file for session files 2"
		data3          = "Second file for session files 2"
	)
	twoStage(t, "kexec_multi_state", 998,
		func(task *kernel.Task, dev int) {
			for _, name := range []string{empty1, empty2} {
				_, err := lu.CreateSession(task, dev, name)
				require.NoError(t, err)
			}
			s1, err := lu.CreateSession(task, dev, files1)
			require.NoError(t, err)
			require.NoError(t, lu.CreateAndPreserveMemfd(task, s1, tok1, data1))
			s2, err := lu.CreateSession(task, dev, files2)
			require.NoError(t, err)
			require.NoError(t, lu.CreateAndPreserveMemfd(task, s2, tok2, data2))
			require.NoError(t, lu.CreateAndPreserveMemfd(task, s2, tok3, data3))
		},
		func(task *kernel.Task, dev, _ int) {
			fds := map[string]int{}
			for _, name := range []string{empty1, empty2, files1, files2} {
				fd, err := lu.RetrieveSession(task, dev, name)
				require.NoError(t, err, name)
				fds[name] = fd
			}
			restoreAndVerify(t, task, fds[files1], tok1, data1)
			restoreAndVerify(t, task, fds[files2], tok2, data2)
			restoreAndVerify(t, task, fds[files2], tok3, data3)
			for _, name := range []string{empty1, empty2, files1, files2} {
				require.NoError(t, lu.FinishSession(task, fds[name]), name)
				require.NoError(t, task.Close(fds[name]))
			}
		})
}

// TestKexecStressSessions ports luo_stress_sessions.c at the profile's
// limit: the state session plus 818 test sessions fill all 819 slots.
func TestKexecStressSessions(t *testing.T) {
	const n = sessionMax - 1
	twoStage(t, "kexec_many_state", 999,
		func(task *kernel.Task, dev int) {
			for i := 0; i < n; i++ {
				_, err := lu.CreateSession(task, dev, fmt.Sprintf("many-test-%d", i))
				require.NoError(t, err, "session %d", i)
			}
		},
		func(task *kernel.Task, dev, _ int) {
			for i := 0; i < n; i++ {
				fd, err := lu.RetrieveSession(task, dev, fmt.Sprintf("many-test-%d", i))
				require.NoError(t, err, "session %d", i)
				require.NoError(t, lu.FinishSession(task, fd))
				require.NoError(t, task.Close(fd))
			}
		})
}

// TestKexecStressFiles ports luo_stress_files.c at the profile's limit:
// 128 files in one session.
func TestKexecStressFiles(t *testing.T) {
	const session = "many_files_session"
	twoStage(t, "kexec_many_files_state", 9999,
		func(task *kernel.Task, dev int) {
			sess, err := lu.CreateSession(task, dev, session)
			require.NoError(t, err)
			for i := 0; i < fileMax; i++ {
				require.NoError(t, lu.CreateAndPreserveMemfd(task, sess, uint64(i), fmt.Sprintf("file-data-%d", i)), "file %d", i)
			}
		},
		func(task *kernel.Task, dev, _ int) {
			sess, err := lu.RetrieveSession(task, dev, session)
			require.NoError(t, err)
			for i := 0; i < fileMax; i++ {
				restoreAndVerify(t, task, sess, uint64(i), fmt.Sprintf("file-data-%d", i))
			}
			require.NoError(t, lu.FinishSession(task, sess))
			require.NoError(t, task.Close(sess))
		})
}
