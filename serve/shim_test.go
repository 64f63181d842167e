package serve

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// shimBins are the C programs a test builds: the shim and the two test
// programs of shim/test.
type shimBins struct {
	lib, test, probe string
}

// buildShim compiles the shim and the test programs with the system C
// compiler ($CC, else cc). Without one the test is skipped, unless
// LUOMODEL_REQUIRE_CC is set (CI installs gcc).
func buildShim(t *testing.T) shimBins {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the shim is Linux-only")
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		if os.Getenv("LUOMODEL_REQUIRE_CC") != "" {
			t.Fatalf("no C compiler (%s) and LUOMODEL_REQUIRE_CC is set", cc)
		}
		t.Skipf("no C compiler (%s): the shim tests need one", cc)
	}
	dir := t.TempDir()
	b := shimBins{
		lib:   filepath.Join(dir, "libluoshim.so"),
		test:  filepath.Join(dir, "luoshim_test"),
		probe: filepath.Join(dir, "luoshim_probe"),
	}
	build := func(args ...string) {
		out, err := exec.Command(cc, args...).CombinedOutput()
		require.NoError(t, err, "%s %v:\n%s", cc, args, out)
	}
	build(append(strings.Fields(shimCFlags), "-o", b.lib, "../shim/libluoshim.c", "-ldl", "-lpthread")...)
	build("-O2", "-g", "-Wall", "-Wextra", "-Werror", "-o", b.test, "../shim/test/luoshim_test.c")
	build("-O2", "-g", "-Wall", "-Wextra", "-Werror", "-o", b.probe, "../shim/test/luoshim_probe.c")
	return b
}

// shimCFlags are the Makefile's flags for libluoshim.so.
const shimCFlags = "-O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden"

// startServer serves a fresh machine on a socket in a temporary
// directory. At cleanup it closes the server and requires that every
// client task exited and that the kernel filed no report.
func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Socket: filepath.Join(t.TempDir(), "luo.sock"), Log: &logWriter{t: t}})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.NoError(t, <-done)
		require.Zero(t, s.LiveTasks(), "tasks left after every connection closed")
		require.Zero(t, s.Panics(), "the server recovered from a panic (logged above)")
		require.Zero(t, s.Reports(), "kernel reports (logged above)")
	})
	return s
}

// logWriter sends the server's log to the test's.
type logWriter struct{ t *testing.T }

func (w *logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// shimmed runs a program under the shim against s.
func shimmed(ctx context.Context, s *Server, b shimBins, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), "LUO_SOCKET="+s.Addr(), "LD_PRELOAD="+b.lib)
	return cmd
}

// waitIdle waits until no client task is left.
func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	require.Eventually(t, func() bool { return s.LiveTasks() == 0 }, 10*time.Second, time.Millisecond,
		"%d tasks still live", s.LiveTasks())
}

// TestShimProgram runs shim/test/luoshim_test, a real C program, against
// the server: every interposed call and LUO ioctl on one boot, then the
// two-stage live update: stage 1 preserves and leaves a forked daemon
// holding the sessions, a reboot(LINUX_REBOOT_CMD_KEXEC) from a shimmed
// process kexecs (and kills the daemon and the caller), stage 2 retrieves
// and verifies on the new kernel.
func TestShimProgram(t *testing.T) {
	b := buildShim(t)
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out, err := shimmed(ctx, s, b, b.test, "single").CombinedOutput()
	require.NoError(t, err, "luoshim_test single:\n%s", out)
	waitIdle(t, s)

	var stdout, stderr bytes.Buffer
	stage1 := shimmed(ctx, s, b, b.test, "stage1")
	stage1.Stdout, stage1.Stderr = &stdout, &stderr
	require.NoError(t, stage1.Run(), "luoshim_test stage1:\n%s", stderr.String())
	daemon, err := strconv.Atoi(strings.TrimSpace(stdout.String()))
	require.NoError(t, err, "stage1 printed %q", stdout.String())
	// The stage's own task goes when the server sees its connection end
	// (the Go test waits for it without the shim's reap); the daemon's stays.
	require.Eventually(t, func() bool { return s.LiveTasks() == 1 }, 10*time.Second, time.Millisecond,
		"the daemon's task holds the sessions: %d tasks", s.LiveTasks())

	out, err = shimmed(ctx, s, b, b.test, "kexec").CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "luoshim_test kexec: %v\n%s", err, out)
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the caller of reboot(2) must be killed: %v\n%s", err, out)
	require.Equal(t, 1, s.Machine().Kexecs())
	waitIdle(t, s) // the daemon was killed with its kernel

	out, err = shimmed(ctx, s, b, b.test, "stage2", strconv.Itoa(daemon)).CombinedOutput()
	require.NoError(t, err, "luoshim_test stage2:\n%s", out)
	waitIdle(t, s)
}

// TestKexecControl is `luo kexec`: a control client kexecs the machine and
// the clients of the old kernel lose their connection (the process would be
// killed; this one is the test itself, which the server never kills).
func TestKexecControl(t *testing.T) {
	s := startServer(t)
	task, err := DialAs(s.Addr(), HelloTask, 0)
	require.NoError(t, err)
	defer task.Close()
	p, err := task.Call(&Request{Op: OpMemfd, Data: []byte("x")})
	require.NoError(t, err)
	require.Zero(t, p.Errno)

	c, err := Dial(s.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Kexec())
	n, err := c.Kexecs()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = task.Call(&Request{Op: OpMemfd, Data: []byte("y")})
	require.Error(t, err, "a client of the old kernel is cut off")
	waitIdle(t, s)

	// A new client talks to the new kernel.
	task2, err := DialAs(s.Addr(), HelloTask, 0)
	require.NoError(t, err)
	defer task2.Close()
	p, err = task2.Call(&Request{Op: OpOpen, Data: []byte("/dev/liveupdate"), Arg: [4]int64{int64(os.O_RDWR)}})
	require.NoError(t, err)
	require.Zero(t, p.Errno)
	require.Equal(t, int64(0), p.Ret)
}

// TestProtocolHeader checks that shim/luoshim_proto.h and this package
// agree on every constant of the wire format.
func TestProtocolHeader(t *testing.T) {
	h, err := os.ReadFile("../shim/luoshim_proto.h")
	require.NoError(t, err)
	defines := map[string]int64{}
	for _, line := range strings.Split(string(h), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "#define" {
			v := strings.Trim(strings.Join(f[2:], ""), "()")
			if sh := strings.SplitN(v, "<<", 2); len(sh) == 2 {
				a, _ := strconv.ParseInt(sh[0], 0, 64)
				b, _ := strconv.ParseInt(sh[1], 0, 64)
				defines[f[1]] = a << b
				continue
			}
			if n, err := strconv.ParseInt(v, 0, 64); err == nil {
				defines[f[1]] = n
			}
		}
	}
	want := map[string]int64{
		"LUOSHIM_OP_HELLO": OpHello, "LUOSHIM_OP_OPEN": OpOpen, "LUOSHIM_OP_CLOSE": OpClose,
		"LUOSHIM_OP_MEMFD": OpMemfd, "LUOSHIM_OP_READ": OpRead, "LUOSHIM_OP_WRITE": OpWrite,
		"LUOSHIM_OP_PREAD": OpPread, "LUOSHIM_OP_PWRITE": OpPwrite, "LUOSHIM_OP_LSEEK": OpLseek,
		"LUOSHIM_OP_FTRUNCATE": OpFtruncate, "LUOSHIM_OP_FSTAT": OpFstat, "LUOSHIM_OP_FCNTL": OpFcntl,
		"LUOSHIM_OP_DUP": OpDup, "LUOSHIM_OP_IOCTL": OpIoctl, "LUOSHIM_OP_MMAP": OpMmap,
		"LUOSHIM_OP_MSYNC": OpMsync, "LUOSHIM_OP_MUNMAP": OpMunmap, "LUOSHIM_OP_FORK": OpFork,
		"LUOSHIM_OP_FORKWAIT": OpForkWait, "LUOSHIM_OP_EXIT": OpExit, "LUOSHIM_OP_KEXEC": OpKexec,
		"LUOSHIM_OP_REAP": OpReap, "LUOSHIM_OP_SETRLIMIT": OpSetrlimit, "LUOSHIM_OP_STATUS": OpStatus,
		"LUOSHIM_HELLO_TASK": HelloTask, "LUOSHIM_HELLO_FORK": HelloFork, "LUOSHIM_HELLO_CONTROL": HelloControl,
		"LUOSHIM_REQ_HEADER": reqHeaderLen, "LUOSHIM_REP_HEADER": repHeaderLen,
		"LUOSHIM_MAX_DATA": MaxData, "LUOSHIM_STAT_LEN": wireStatLen,
	}
	for name, v := range want {
		got, ok := defines[name]
		require.True(t, ok, "%s missing from luoshim_proto.h", name)
		require.Equal(t, v, got, name)
	}
	for name := range defines {
		if strings.HasPrefix(name, "LUOSHIM_") && name != "LUOSHIM_PROTO_H" {
			_, ok := want[name]
			require.True(t, ok, "%s of luoshim_proto.h is not checked against Go", name)
		}
	}
}
