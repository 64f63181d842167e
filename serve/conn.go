package serve

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"syscall"

	"luomodel/kernel"
)

// conn is one client connection: a process's task, or a control client.
type conn struct {
	s    *Server
	c    *net.UnixConn
	cred syscall.Ucred // immutable: the peer's credentials at connect

	// task and kernel are the process's task and the kernel it runs on,
	// nil before its hello and for a control client. Written by the
	// connection's goroutine under s.mu; read by it freely and by others
	// under s.mu.
	task   *kernel.Task
	kernel *kernel.Kernel
	// control marks a control client. Owned by the goroutine.
	control bool
	// maps holds the task's mappings by id. Owned by the goroutine.
	maps    map[int64]*kernel.Mapping
	nextMap int64
}

// serve reads and answers requests until the client goes away or sends
// something malformed, then ends the task as the process's exit would.
func (c *conn) serve() {
	defer c.s.wg.Done()
	defer c.finish()
	r := bufio.NewReader(c.c)
	for {
		q, err := ReadRequest(r)
		if err != nil {
			if errors.Is(err, errMalformed) {
				c.s.logf("pid %d: %v: connection closed", c.cred.Pid, err)
			}
			return
		}
		p, err := c.handle(q)
		if p != nil {
			if _, werr := c.c.Write(p.Encode()); werr != nil {
				return
			}
		}
		if err != nil {
			if err != errExited {
				c.s.logf("pid %d: %v: connection closed", c.cred.Pid, err)
			}
			return
		}
	}
}

// finish closes the connection and exits the task: the process is gone.
func (c *conn) finish() {
	_ = c.c.Close()
	c.s.dropPendingOf(c)
	if c.task != nil {
		c.s.exitTask(c.task, c.maps)
	}
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.task = nil
	c.s.mu.Unlock()
}

// errnoOf turns a syscall error into the reply's errno.
func errnoOf(err error) int32 {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return int32(e)
	}
	return int32(syscall.EIO)
}

func result(ret int64, err error) *Reply {
	if err != nil {
		return &Reply{Errno: errnoOf(err), Ret: -1}
	}
	return &Reply{Ret: ret}
}

// handle answers one request. A reply is sent if not nil; an error then
// closes the connection (a protocol violation, or errExited). Panics in the
// server's own code are turned into a protocol error, never a crash.
func (c *conn) handle(q *Request) (p *Reply, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.s.mu.Lock()
			c.s.panics++
			c.s.mu.Unlock()
			p, err = nil, fmt.Errorf("panic serving op %d: %v\n%s", q.Op, r, debug.Stack())
		}
	}()
	if q.Op == OpHello {
		return c.hello(q)
	}
	if c.task == nil && !c.control {
		return nil, fmt.Errorf("op %d before hello", q.Op)
	}
	switch q.Op {
	case OpKexec:
		var requester int32
		if q.Arg[0] != 0 {
			requester = c.cred.Pid
		}
		return result(0, c.s.kexec(requester)), nil
	case OpReap:
		c.s.reap(int32(q.Arg[0]), c)
		return &Reply{}, nil
	case OpStatus:
		d := make([]byte, 8)
		le.PutUint64(d, uint64(c.s.m.Kexecs()))
		return &Reply{Ret: int64(c.s.LiveTasks()), Data: d}, nil
	}
	if c.control {
		return nil, fmt.Errorf("op %d on a control connection", q.Op)
	}
	return c.syscall(q)
}

// hello identifies the client: a new process, the child of a fork, or a
// control client.
func (c *conn) hello(q *Request) (*Reply, error) {
	if c.task != nil || c.control {
		return nil, errors.New("second hello")
	}
	switch q.Arg[0] {
	case HelloTask:
		t, err := c.s.newTask()
		if err != nil {
			return result(0, err), nil
		}
		c.setTask(t)
	case HelloFork:
		pf, ok := c.s.claim(uint64(q.Arg[1]))
		if !ok {
			return result(0, syscall.ESRCH), nil
		}
		c.maps = pf.maps
		c.setTask(pf.task)
		for id := range c.maps {
			c.nextMap = max(c.nextMap, id)
		}
	case HelloControl:
		c.control = true
	default:
		return nil, fmt.Errorf("hello kind %d", q.Arg[0])
	}
	return &Reply{}, nil
}

func (c *conn) setTask(t *kernel.Task) {
	c.s.mu.Lock()
	c.task, c.kernel = t, t.Kernel()
	c.s.mu.Unlock()
}

// maxCount bounds a read's buffer.
func maxCount(n int64) (int, error) {
	if n < 0 {
		return 0, syscall.EINVAL
	}
	return int(min(n, MaxData)), nil
}

// syscall runs one syscall of the task.
func (c *conn) syscall(q *Request) (*Reply, error) {
	t := c.task
	a := q.Arg
	fd := int(int32(a[0]))
	switch q.Op {
	case OpOpen:
		r, err := t.Open(string(q.Data), int(int32(a[0])))
		return result(int64(r), err), nil
	case OpClose:
		return result(0, t.Close(fd)), nil
	case OpMemfd:
		r, err := t.MemfdCreate(string(q.Data), uint(uint32(a[0])))
		return result(int64(r), err), nil
	case OpRead, OpPread:
		n, err := maxCount(a[1])
		if err != nil {
			return result(0, err), nil
		}
		buf := make([]byte, n)
		if q.Op == OpRead {
			n, err = t.Read(fd, buf)
		} else {
			n, err = t.Pread(fd, buf, a[2])
		}
		if err != nil {
			return result(0, err), nil
		}
		return &Reply{Ret: int64(n), Data: buf[:n]}, nil
	case OpWrite:
		n, err := t.Write(fd, q.Data)
		return result(int64(n), err), nil
	case OpPwrite:
		n, err := t.Pwrite(fd, q.Data, a[1])
		return result(int64(n), err), nil
	case OpLseek:
		r, err := t.Lseek(fd, a[1], int(int32(a[2])))
		return result(r, err), nil
	case OpFtruncate:
		return result(0, t.Ftruncate(fd, a[1])), nil
	case OpFstat:
		st, err := t.Fstat(fd)
		if err != nil {
			return result(0, err), nil
		}
		d := make([]byte, wireStatLen)
		le.PutUint64(d[0:], st.Ino)
		le.PutUint32(d[8:], st.Mode)
		le.PutUint32(d[12:], st.Nlink)
		le.PutUint64(d[16:], st.Rdev)
		le.PutUint64(d[24:], uint64(st.Size))
		le.PutUint64(d[32:], uint64(st.Blksize))
		le.PutUint64(d[40:], uint64(st.Blocks))
		return &Reply{Data: d}, nil
	case OpFcntl:
		r, err := t.Fcntl(fd, int(int32(a[1])), int(a[2]))
		return result(int64(r), err), nil
	case OpDup:
		r, err := t.Dup(fd)
		return result(int64(r), err), nil
	case OpIoctl:
		p := result(0, t.Ioctl(fd, uint32(a[1]), q.Data))
		p.Data = q.Data
		return p, nil
	case OpMmap:
		m, data, err := t.Mmap(fd, a[1], int(uint32(a[2])), int(uint32(a[2]>>32)), a[3])
		if err != nil {
			return result(0, err), nil
		}
		c.nextMap++
		c.maps[c.nextMap] = m
		return &Reply{Ret: c.nextMap, Data: data}, nil
	case OpMsync:
		m, ok := c.maps[a[0]]
		if !ok {
			return result(0, syscall.ENOMEM), nil
		}
		return result(0, t.Msync(m, a[1], q.Data)), nil
	case OpMunmap:
		m, ok := c.maps[a[0]]
		if !ok {
			return result(0, syscall.EINVAL), nil
		}
		delete(c.maps, a[0])
		var data []byte
		if m.SharedWritable() {
			data = q.Data
		}
		err := t.Munmap(m, data)
		m.Unmap() // a task of a dead kernel could not: drop the file anyway
		return result(0, err), nil
	case OpFork:
		tok, err := c.s.fork(c)
		return result(int64(tok), err), nil
	case OpForkWait:
		return result(0, c.s.forkWait(c, uint64(a[0]), a[1] != 0)), nil
	case OpExit:
		c.s.exitTask(t, c.maps)
		c.s.mu.Lock()
		c.task = nil
		c.s.mu.Unlock()
		return &Reply{}, errExited
	case OpSetrlimit:
		return result(0, t.Setrlimit(int(a[0]), uint64(a[1]), uint64(a[2]))), nil
	}
	return nil, fmt.Errorf("op %d", q.Op)
}

// errExited ends the connection of a process that said it exits; the reply
// is sent first.
var errExited = errors.New("exited")
