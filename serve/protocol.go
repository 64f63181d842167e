package serve

import (
	"encoding/binary"
	"errors"
	"io"
)

// Request operations. Their values are shim/luoshim_proto.h's LUOSHIM_OP_*.
const (
	OpHello     = 1  // arg0 kind (Hello*), arg1 fork token
	OpOpen      = 2  // data path, arg0 flags -> fd
	OpClose     = 3  // arg0 fd
	OpMemfd     = 4  // data name, arg0 flags -> fd
	OpRead      = 5  // arg0 fd, arg1 count -> data
	OpWrite     = 6  // arg0 fd, data -> count
	OpPread     = 7  // arg0 fd, arg1 count, arg2 offset -> data
	OpPwrite    = 8  // arg0 fd, arg1 offset, data -> count
	OpLseek     = 9  // arg0 fd, arg1 offset, arg2 whence -> position
	OpFtruncate = 10 // arg0 fd, arg1 length
	OpFstat     = 11 // arg0 fd -> data: wireStat
	OpFcntl     = 12 // arg0 fd, arg1 cmd, arg2 arg -> result
	OpDup       = 13 // arg0 fd -> fd
	OpIoctl     = 14 // arg0 fd, arg1 cmd, data the user buffer -> data the buffer after
	OpMmap      = 15 // arg0 fd, arg1 length, arg2 prot | flags<<32, arg3 offset -> mapping id, data contents
	OpMsync     = 16 // arg0 mapping id, arg1 offset in it, data bytes to store
	OpMunmap    = 17 // arg0 mapping id, data bytes to store (none for a read-only map)
	OpFork      = 18 // -> fork token
	OpForkWait  = 19 // arg0 token, arg1 1 to abort (the real fork failed)
	OpExit      = 20 // the process is exiting: the task exits now
	OpKexec     = 21 // reboot(LINUX_REBOOT_CMD_KEXEC); arg0 1: the caller is killed too (reboot(2))
	OpReap      = 22 // arg0 pid: wait until that process's task has exited
	OpSetrlimit = 23 // arg0 resource, arg1 cur, arg2 max
	OpStatus    = 24 // -> ret live tasks, data: the kernel generation (u64)
	opMax       = 24
)

// Hello kinds.
const (
	HelloTask    = 0 // a process: a new task of the running kernel
	HelloFork    = 1 // the child of a fork: claims the task forked for it
	HelloControl = 2 // `luo kexec` and tests: no task
)

const (
	reqHeaderLen = 40
	repHeaderLen = 16
	// MaxData bounds a message's data. Longer reads return short and
	// longer writes are cut by the shim; a longer message is malformed.
	MaxData = 64 << 20
)

// errMalformed closes a connection whose message does not parse.
var errMalformed = errors.New("malformed message")

var le = binary.LittleEndian

// Request is one decoded request.
type Request struct {
	Op   uint32
	Arg  [4]int64
	Data []byte
}

// ReadRequest reads one request. io.EOF at a message boundary is a clean
// close; anything else that does not parse is errMalformed or the read
// error.
func ReadRequest(r io.Reader) (*Request, error) {
	var h [reqHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, errMalformed
		}
		return nil, err
	}
	n := le.Uint32(h[0:])
	if n < reqHeaderLen-4 || n-(reqHeaderLen-4) > MaxData {
		return nil, errMalformed
	}
	q := &Request{Op: le.Uint32(h[4:])}
	if q.Op == 0 || q.Op > opMax {
		return nil, errMalformed
	}
	for i := range q.Arg {
		q.Arg[i] = int64(le.Uint64(h[8+8*i:]))
	}
	q.Data = make([]byte, n-(reqHeaderLen-4))
	if _, err := io.ReadFull(r, q.Data); err != nil {
		return nil, errMalformed
	}
	return q, nil
}

// Encode is the request's wire form (for Go clients and tests).
func (q *Request) Encode() []byte {
	b := make([]byte, reqHeaderLen+len(q.Data))
	le.PutUint32(b[0:], uint32(reqHeaderLen-4+len(q.Data)))
	le.PutUint32(b[4:], q.Op)
	for i, a := range q.Arg {
		le.PutUint64(b[8+8*i:], uint64(a))
	}
	copy(b[reqHeaderLen:], q.Data)
	return b
}

// Reply is one reply: ret, or errno (a Linux errno, 0 for success), and
// data.
type Reply struct {
	Errno int32
	Ret   int64
	Data  []byte
}

// Encode is the reply's wire form.
func (p *Reply) Encode() []byte {
	b := make([]byte, repHeaderLen+len(p.Data))
	le.PutUint32(b[0:], uint32(repHeaderLen-4+len(p.Data)))
	le.PutUint32(b[4:], uint32(p.Errno))
	le.PutUint64(b[8:], uint64(p.Ret))
	copy(b[repHeaderLen:], p.Data)
	return b
}

// ReadReply reads one reply (for Go clients and tests).
func ReadReply(r io.Reader) (*Reply, error) {
	var h [repHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := le.Uint32(h[0:])
	if n < repHeaderLen-4 || n-(repHeaderLen-4) > MaxData {
		return nil, errMalformed
	}
	p := &Reply{Errno: int32(le.Uint32(h[4:])), Ret: int64(le.Uint64(h[8:]))}
	p.Data = make([]byte, n-(repHeaderLen-4))
	if _, err := io.ReadFull(r, p.Data); err != nil {
		return nil, err
	}
	return p, nil
}

// wireStat is the stat reply: {u64 ino; u32 mode; u32 nlink; u64 rdev;
// s64 size; s64 blksize; s64 blocks}.
const wireStatLen = 48
