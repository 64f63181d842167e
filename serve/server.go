package serve

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/machine"
)

// ForkTimeout is how long the parent of a fork waits for its child to
// claim the forked task before the task is dropped (the child died before
// it could connect).
const ForkTimeout = 10 * time.Second

// ReapTimeout bounds OpReap's wait for a dead process's task to exit.
const ReapTimeout = 5 * time.Second

// Server serves one machine's syscalls to client processes.
type Server struct {
	m   *machine.Machine // immutable
	ln  *net.UnixListener
	log io.Writer // immutable; nil for silence

	// kexecMu serializes kexecs.
	kexecMu sync.Mutex

	mu sync.Mutex
	// conns holds every open connection. Guarded by mu.
	conns map[*conn]struct{}
	// pending holds the tasks forked for children that have not claimed
	// them yet, by token. Guarded by mu.
	pending map[uint64]*pendingFork
	// live counts tasks created and not yet exited. Guarded by mu.
	live int
	// closed is set by Close. Guarded by mu.
	closed bool
	// panics counts Go panics in the server's own request handling, each
	// of which closed its connection. Guarded by mu.
	panics int

	wg sync.WaitGroup
}

// pendingFork is a task forked for a child process that has not claimed
// it yet.
type pendingFork struct {
	task    *kernel.Task
	maps    map[int64]*kernel.Mapping
	parent  *conn
	claimed chan struct{} // closed by the claim
}

// Config configures a server.
type Config struct {
	Socket    string    // the Unix socket's path; an existing socket there is replaced
	MemoryMiB int       // the machine's memory (0: machine's default)
	Log       io.Writer // one line per connection event and kexec; nil for none
}

// New boots a machine with LUO enabled and listens on cfg.Socket. Serve
// must be called to accept clients.
func New(cfg Config) (*Server, error) {
	s := &Server{log: cfg.Log, conns: make(map[*conn]struct{}), pending: make(map[uint64]*pendingFork)}
	// A kernel report (WARN, lockdep, KASAN, ...) is logged and the
	// syscall goes on, as on a machine without panic_on_warn.
	report := func(r *bug.Report) { s.logf("kernel report:\n%s", r) }
	m, err := machine.New(machine.Config{LiveUpdate: true, MemoryMiB: cfg.MemoryMiB, Report: report})
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(cfg.Socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(cfg.Socket)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	if err != nil {
		return nil, err
	}
	s.m, s.ln = m, ln
	return s, nil
}

// Panics is the number of Go panics the server recovered from in its own
// request handling (a server bug; the connection was closed).
func (s *Server) Panics() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.panics
}

// Reports is the number of kernel reports filed on the machine so far.
func (s *Server) Reports() int { return s.m.Reporter().Total() }

// Machine is the served machine.
func (s *Server) Machine() *machine.Machine { return s.m }

// Addr is the socket's path.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// LiveTasks is the number of tasks created for clients that have not
// exited: connected processes and forks not yet claimed.
func (s *Server) LiveTasks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// Conns is the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) logf(format string, args ...any) {
	if s.log != nil {
		fmt.Fprintf(s.log, "luo serve: "+format+"\n", args...)
	}
}

// Serve accepts clients until Close; it returns nil after Close.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		cn := &conn{s: s, c: c, maps: make(map[int64]*kernel.Mapping)}
		cn.cred = peerCred(c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[cn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go cn.serve()
	}
}

// Close stops accepting, closes every connection (their tasks exit) and
// waits for their goroutines; the socket file is removed.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		_ = c.c.Close()
	}
	s.wg.Wait()
	return err
}

// peerCred is the connecting process's credentials (SO_PEERCRED); a zero
// Ucred when the socket cannot tell.
func peerCred(c *net.UnixConn) syscall.Ucred {
	var cred syscall.Ucred
	raw, err := c.SyscallConn()
	if err != nil {
		return cred
	}
	_ = raw.Control(func(fd uintptr) {
		if u, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			cred = *u
		}
	})
	return cred
}

// newTask creates a task of the running kernel for a client.
func (s *Server) newTask() (*kernel.Task, error) {
	k := s.m.Kernel()
	if k == nil {
		return nil, syscall.EIO // the machine halted: its kexec panicked
	}
	t := k.NewTask()
	s.mu.Lock()
	s.live++
	s.mu.Unlock()
	return t, nil
}

// exitTask ends a client's task and drops its mappings.
func (s *Server) exitTask(t *kernel.Task, maps map[int64]*kernel.Mapping) {
	for id, m := range maps {
		m.Unmap()
		delete(maps, id)
	}
	t.Exit()
	s.mu.Lock()
	s.live--
	s.mu.Unlock()
}

// fork forks parent's task and mappings for a child process that will
// claim them with the returned token.
func (s *Server) fork(parent *conn) (uint64, error) {
	child, err := parent.task.Fork()
	if err != nil {
		return 0, err
	}
	pf := &pendingFork{task: child, maps: make(map[int64]*kernel.Mapping, len(parent.maps)), parent: parent, claimed: make(chan struct{})}
	for id, m := range parent.maps {
		pf.maps[id] = m.Clone()
	}
	var b [8]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live++
	for {
		_, _ = rand.Read(b[:])
		tok := binary.LittleEndian.Uint64(b[:]) >> 1 // positive as an s64
		if _, dup := s.pending[tok]; tok != 0 && !dup {
			s.pending[tok] = pf
			return tok, nil
		}
	}
}

// claim hands the task forked under tok to the child's connection.
func (s *Server) claim(tok uint64) (*pendingFork, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pf, ok := s.pending[tok]
	if !ok {
		return nil, false
	}
	delete(s.pending, tok)
	close(pf.claimed)
	return pf, true
}

// forkWait waits until the child claims the fork under tok (parent's
// call after its real fork), or drops the fork when abort is set, the wait
// times out or tok is not parent's.
func (s *Server) forkWait(parent *conn, tok uint64, abort bool) error {
	s.mu.Lock()
	pf, ok := s.pending[tok]
	s.mu.Unlock()
	if !ok {
		return nil // claimed already, or never issued
	}
	if pf.parent != parent {
		return syscall.EINVAL
	}
	if !abort {
		select {
		case <-pf.claimed:
			return nil
		case <-time.After(ForkTimeout):
		}
	}
	s.dropPending(tok, pf)
	if abort {
		return nil
	}
	return syscall.ECHILD
}

// dropPending exits the task of an unclaimed fork.
func (s *Server) dropPending(tok uint64, pf *pendingFork) {
	s.mu.Lock()
	if s.pending[tok] != pf {
		s.mu.Unlock()
		return // claimed meanwhile
	}
	delete(s.pending, tok)
	s.mu.Unlock()
	s.exitTask(pf.task, pf.maps)
}

// dropPendingOf exits the unclaimed forks of a parent that went away.
func (s *Server) dropPendingOf(parent *conn) {
	s.mu.Lock()
	var toks []uint64
	for tok, pf := range s.pending {
		if pf.parent == parent {
			toks = append(toks, tok)
		}
	}
	s.mu.Unlock()
	for _, tok := range toks {
		s.mu.Lock()
		pf := s.pending[tok]
		s.mu.Unlock()
		if pf != nil {
			s.dropPending(tok, pf)
		}
	}
}

// Kexec live-updates the machine (reboot(LINUX_REBOOT_CMD_KEXEC)). On
// success every client process of the old kernel is killed and its
// connection closed; clients that connect afterwards get the new kernel.
// On failure the old kernel keeps running and nobody is killed.
func (s *Server) Kexec() error { return s.kexec(0) }

// kexec is Kexec; a requester pid other than 0 is killed too, as the
// process that calls reboot(2) does not survive it either.
func (s *Server) kexec(requester int32) error {
	s.kexecMu.Lock()
	defer s.kexecMu.Unlock()
	old := s.m.Kernel()
	if err := s.m.Kexec(); err != nil {
		s.logf("kexec failed: %v", err)
		return err
	}
	s.mu.Lock()
	var victims []*conn
	for c := range s.conns {
		if c.kernel != nil && c.kernel == old {
			victims = append(victims, c)
		}
	}
	s.mu.Unlock()
	self := os.Getpid()
	if requester > 0 && int(requester) != self {
		_ = syscall.Kill(int(requester), syscall.SIGKILL)
	}
	for _, c := range victims {
		if pid := int(c.cred.Pid); pid > 0 && pid != self {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = c.c.Close()
	}
	s.logf("kexec: kernel %d running; %d client process(es) of the old kernel killed", s.m.Kexecs(), len(victims))
	return nil
}

// reap waits until no connection of process pid other than the asker's is
// left (its task has exited), as a parent's wait() returns only after the
// child's exit_files().
func (s *Server) reap(pid int32, asker *conn) {
	deadline := time.Now().Add(ReapTimeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		found := false
		for c := range s.conns {
			if c != asker && c.cred.Pid == pid && c.task != nil {
				found = true
				break
			}
		}
		s.mu.Unlock()
		if !found {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
