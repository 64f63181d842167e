package serve

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fuzzArg picks an argument: mostly small, sometimes a boundary.
func fuzzArg(r *rand.Rand) int64 {
	switch r.IntN(10) {
	case 0:
		return []int64{-1, math.MaxInt64, math.MinInt64, 1 << 31, math.MaxUint32, 4096, 1 << 20}[r.IntN(7)]
	case 1:
		return int64(r.Uint64())
	}
	return int64(r.IntN(80)) - 4
}

// fuzzMessage is a random request: usually well framed with a random op,
// arguments and data (LUO ioctl numbers are likely), sometimes garbage
// bytes or a message cut short.
func fuzzMessage(r *rand.Rand, kexec bool) []byte {
	q := &Request{Op: uint32(1 + r.IntN(opMax))}
	if r.IntN(300) == 0 {
		q.Op = []uint32{0, opMax + 1, math.MaxUint32}[r.IntN(3)]
	}
	for (q.Op == OpHello || q.Op == OpExit || q.Op == OpKexec && !kexec) && r.IntN(20) != 0 {
		q.Op = uint32(1 + r.IntN(opMax)) // they end connections: rarer
	}
	if q.Op == OpKexec && !kexec {
		q.Op = OpStatus // a kexec cuts every other fuzzer off: one client does it
	}
	if q.Op == OpReap || q.Op == OpForkWait {
		q.Op = OpFstat // waits of up to seconds: exercised by their own tests
	}
	for i := range q.Arg {
		q.Arg[i] = fuzzArg(r)
	}
	if q.Op == OpIoctl && r.IntN(2) == 0 {
		q.Arg[1] = int64([]int{0xBA00, 0xBA01, 0xBA40, 0xBA41, 0xBA42, 0xBA43}[r.IntN(6)])
	}
	if q.Op == OpOpen && r.IntN(2) == 0 {
		q.Data = []byte([]string{"/dev/liveupdate", "/dev/null", "/dev/nope", ""}[r.IntN(4)])
	} else {
		q.Data = make([]byte, r.IntN(100))
		for i := range q.Data {
			q.Data[i] = byte(r.IntN(256))
		}
		if len(q.Data) >= 4 && r.IntN(2) == 0 {
			q.Data[0], q.Data[1], q.Data[2], q.Data[3] = byte(len(q.Data)), 0, 0, 0
		}
	}
	b := q.Encode()
	switch r.IntN(500) {
	case 0:
		r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	case 1:
		b = b[:r.IntN(len(b))]
	case 2:
		b[r.IntN(4)] ^= byte(1 << r.IntN(8)) // a wrong length
	}
	return b
}

// fuzzClient connects, usually says hello as a task, sends n random
// messages (replies are read and dropped), and hangs up, possibly in the
// middle of a message.
func fuzzClient(t *testing.T, s *Server, seed uint64, n int) (replyBytes int64) {
	r := rand.New(rand.NewPCG(seed, 1))
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: s.Addr(), Net: "unix"})
	require.NoError(t, err)
	defer c.Close()
	done := make(chan struct{})
	var replies int64
	go func() {
		defer close(done)
		replies, _ = io.Copy(io.Discard, c)
	}()
	if r.IntN(8) != 0 {
		kind := int64(HelloTask)
		if r.IntN(8) == 0 {
			kind = fuzzArg(r)
		}
		_, _ = c.Write((&Request{Op: OpHello, Arg: [4]int64{kind, fuzzArg(r)}}).Encode())
	}
	for range n {
		if _, err := c.Write(fuzzMessage(r, seed == 0)); err != nil {
			break // the server closed a malformed connection
		}
	}
	if r.IntN(4) == 0 {
		_ = c.Close() // dies with calls in flight
	} else {
		_ = c.CloseWrite() // exits after its last call
	}
	<-done
	return replies
}

// TestServerSurvivesFuzzedClients sends random messages from many
// clients at once: the server must not panic, must keep serving a
// well-behaved client, and every task must exit when its connection ends.
func TestServerSurvivesFuzzedClients(t *testing.T) {
	s := startServer(t)
	clients, msgs := 64, 200
	if testing.Short() {
		clients = 16
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var replied int64
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := fuzzClient(t, s, uint64(i), msgs)
			mu.Lock()
			replied += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("%d clients sent up to %d messages each; %d bytes of replies", clients, msgs, replied)
	waitIdle(t, s)
	require.Eventually(t, func() bool { return s.Conns() == 0 }, 10*time.Second, time.Millisecond)

	// The server still serves, on whichever kernel the fuzzers left running.
	c, err := DialAs(s.Addr(), HelloTask, 0)
	require.NoError(t, err)
	p, err := c.Call(&Request{Op: OpMemfd, Data: []byte("after")})
	require.NoError(t, err)
	require.Zero(t, p.Errno)
	p, err = c.Call(&Request{Op: OpWrite, Arg: [4]int64{p.Ret}, Data: []byte("still here")})
	require.NoError(t, err)
	require.Equal(t, int64(10), p.Ret)
	require.NoError(t, c.Close())
	waitIdle(t, s)
}

// TestClientDyingMidCall: a client that dies with a request half sent, or
// before reading a reply, loses its fds as at exit: the device it held
// open is free again.
func TestClientDyingMidCall(t *testing.T) {
	s := startServer(t)
	for _, cut := range []int{reqHeaderLen - 3, reqHeaderLen + 2, -1} {
		c, err := DialAs(s.Addr(), HelloTask, 0)
		require.NoError(t, err)
		p, err := c.Call(&Request{Op: OpOpen, Data: []byte("/dev/liveupdate"), Arg: [4]int64{int64(os.O_RDWR)}})
		require.NoError(t, err)
		require.Zero(t, p.Errno, "the previous client's open must be gone")
		msg := (&Request{Op: OpWrite, Arg: [4]int64{p.Ret}, Data: bytes.Repeat([]byte{1}, 16)}).Encode()
		if cut >= 0 {
			msg = msg[:cut]
		}
		_, err = c.c.Write(msg)
		require.NoError(t, err)
		require.NoError(t, c.Close())
		waitIdle(t, s)
	}
}

// FuzzServerMessages feeds arbitrary bytes to the server as one client's
// stream after its hello: no input may panic it or leave a task behind.
func FuzzServerMessages(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 8 {
		var b []byte
		for range 10 {
			b = append(b, fuzzMessage(r, true)...)
		}
		f.Add(b)
	}
	dir := f.TempDir()
	s, err := New(Config{Socket: filepath.Join(dir, "luo.sock")})
	require.NoError(f, err)
	go func() { _ = s.Serve() }()
	defer s.Close()
	f.Fuzz(func(t *testing.T, stream []byte) {
		c, err := DialAs(s.Addr(), HelloTask, 0)
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, c.c)
		}()
		_, _ = c.c.Write(stream)
		_ = c.c.CloseWrite()
		<-done
		_ = c.Close()
		require.Eventually(t, func() bool { return s.LiveTasks() == 0 }, 10*time.Second, time.Millisecond)
		require.Zero(t, s.Reports())
		require.Zero(t, s.Panics())
	})
}
