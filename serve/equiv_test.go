package serve

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/machine"
	"luomodel/userspace/libliveupdate"
)

// goProbe runs shim/test/luoshim_probe's script language through the Go
// API on a task of its own machine and prints what luoshim_probe prints.
type goProbe struct {
	t    *kernel.Task
	fds  []int  // slot -> model fd
	live []bool // slot -> still open (for the generator)
	maps []*goMapping
}

type goMapping struct {
	m        *kernel.Mapping
	data     []byte
	writable bool
	gone     bool
}

func errnoNum(err error) int {
	if e, ok := err.(syscall.Errno); ok {
		return int(e)
	}
	return int(syscall.EIO)
}

// res prints RET ERRNO as the probe does; fd results print "fd 0".
func res(r int64, err error, isFD bool) string {
	if err != nil {
		return fmt.Sprintf("-1 %d", errnoNum(err))
	}
	if isFD {
		return "fd 0"
	}
	return fmt.Sprintf("%d 0", r)
}

func hexOf(b []byte) string {
	if len(b) == 0 {
		return " -"
	}
	return " " + hex.EncodeToString(b)
}

func (p *goProbe) slot(i int) int {
	if i >= 0 && i < len(p.fds) {
		return p.fds[i]
	}
	return -1
}

func (p *goProbe) newFD(fd int, err error) {
	if err == nil {
		p.fds = append(p.fds, fd)
		p.live = append(p.live, true)
	}
}

func atoi(s string) int64 {
	var v int64
	_, _ = fmt.Sscan(s, &v)
	return v
}

func unhex(s string) []byte {
	if s == "-" {
		return nil
	}
	b, _ := hex.DecodeString(s)
	return b
}

// exec runs one script line and returns the probe's output line.
func (p *goProbe) exec(line string) string {
	f := strings.Fields(line)
	op, a := f[0], f[1:]
	t := p.t
	switch op {
	case "open":
		fd, err := t.Open(a[0], int(atoi(a[1])))
		p.newFD(fd, err)
		return res(0, err, true)
	case "memfd":
		fd, err := t.MemfdCreate(a[0], uint(atoi(a[1])))
		p.newFD(fd, err)
		return res(0, err, true)
	case "close":
		s := int(atoi(a[0]))
		if s >= 0 && s < len(p.live) {
			p.live[s] = false
		}
		return res(0, t.Close(p.slot(s)), false)
	case "read", "pread":
		buf := make([]byte, atoi(a[1]))
		var n int
		var err error
		if op == "read" {
			n, err = t.Read(p.slot(int(atoi(a[0]))), buf)
		} else {
			n, err = t.Pread(p.slot(int(atoi(a[0]))), buf, atoi(a[2]))
		}
		return res(int64(n), err, false) + hexOf(buf[:n])
	case "write":
		n, err := t.Write(p.slot(int(atoi(a[0]))), unhex(a[1]))
		return res(int64(n), err, false)
	case "pwrite":
		n, err := t.Pwrite(p.slot(int(atoi(a[0]))), unhex(a[2]), atoi(a[1]))
		return res(int64(n), err, false)
	case "lseek":
		r, err := t.Lseek(p.slot(int(atoi(a[0]))), atoi(a[1]), int(atoi(a[2])))
		return res(r, err, false)
	case "ftruncate":
		return res(0, t.Ftruncate(p.slot(int(atoi(a[0]))), atoi(a[1])), false)
	case "fstat":
		st, err := t.Fstat(p.slot(int(atoi(a[0]))))
		if err != nil {
			return res(0, err, false)
		}
		return fmt.Sprintf("0 0 mode=%o nlink=%d size=%d blocks=%d blksize=%d rdev=%x",
			st.Mode, st.Nlink, st.Size, st.Blocks, st.Blksize, st.Rdev)
	case "fcntl":
		cmd := int(atoi(a[1]))
		if cmd == syscall.F_DUPFD || cmd == syscall.F_DUPFD_CLOEXEC {
			// The shim asks the model for the lowest free fd and puts the
			// process's number at or above arg.
			fd, err := t.Fcntl(p.slot(int(atoi(a[0]))), cmd, 0)
			p.newFD(fd, err)
			return res(0, err, true)
		}
		r, err := t.Fcntl(p.slot(int(atoi(a[0]))), cmd, int(atoi(a[2])))
		return res(int64(r), err, false)
	case "dup":
		fd, err := t.Dup(p.slot(int(atoi(a[0]))))
		p.newFD(fd, err)
		return res(0, err, true)
	case "dup2", "dup3":
		// The shim's dup2 onto T: the model duplicates S (with FD_CLOEXEC
		// for dup3 O_CLOEXEC) and what T held is closed.
		s, tgt := int(atoi(a[0])), int(atoi(a[1]))
		if op == "dup3" && atoi(a[2])&^syscall.O_CLOEXEC != 0 {
			return res(0, syscall.EINVAL, false)
		}
		if s == tgt {
			if op == "dup3" {
				return res(0, syscall.EINVAL, false)
			}
			_, err := t.Fcntl(p.slot(s), syscall.F_GETFD, 0)
			return res(0, err, false) // dup2 returns the fd; the probe prints 0 for "== T"
		}
		var fd int
		var err error
		if op == "dup3" && atoi(a[2])&syscall.O_CLOEXEC != 0 {
			fd, err = t.Fcntl(p.slot(s), syscall.F_DUPFD_CLOEXEC, 0)
		} else {
			fd, err = t.Dup(p.slot(s))
		}
		if err != nil {
			return res(0, err, false)
		}
		_ = t.Close(p.slot(tgt))
		p.fds[tgt] = fd
		p.live[tgt] = true
		return "0 0"
	case "ioctl":
		buf := unhex(a[2])
		err := t.Ioctl(p.slot(int(atoi(a[0]))), uint32(atoi(a[1])), buf)
		return res(0, err, false) + hexOf(buf)
	case "badioctl":
		return res(0, t.Ioctl(p.slot(int(atoi(a[0]))), uint32(atoi(a[1])), nil), false)
	case "create", "retrieve":
		var fd int
		var err error
		if op == "create" {
			fd, err = libliveupdate.CreateSession(t, p.slot(int(atoi(a[0]))), a[1])
		} else {
			fd, err = libliveupdate.RetrieveSession(t, p.slot(int(atoi(a[0]))), a[1])
		}
		p.newFD(fd, err)
		return res(0, err, true)
	case "preserve":
		err := libliveupdate.PreserveFD(t, p.slot(int(atoi(a[0]))), p.slot(int(atoi(a[1]))), uint64(atoi(a[2])))
		return res(0, err, false)
	case "retrievefd":
		fd, err := libliveupdate.RetrieveFD(t, p.slot(int(atoi(a[0]))), uint64(atoi(a[1])))
		p.newFD(fd, err)
		return res(0, err, true)
	case "mmap":
		m, data, err := t.Mmap(p.slot(int(atoi(a[0]))), atoi(a[1]), int(atoi(a[2]))|kernel.ProtRead, int(atoi(a[3])), atoi(a[4]))
		if err != nil {
			return res(0, err, false)
		}
		p.maps = append(p.maps, &goMapping{m: m, data: data, writable: atoi(a[2])&kernel.ProtWrite != 0})
		return "0 0" + hexOf(data)
	case "mwrite":
		i, off, b := int(atoi(a[0])), atoi(a[1]), unhex(a[2])
		if i < len(p.maps) && !p.maps[i].gone && p.maps[i].writable && off+int64(len(b)) <= int64(len(p.maps[i].data)) {
			copy(p.maps[i].data[off:], b)
		}
		return "0 0"
	case "msync", "munmap":
		i := int(atoi(a[0]))
		if i >= len(p.maps) || p.maps[i].gone {
			return "0 0"
		}
		gm := p.maps[i]
		if op == "msync" {
			return res(0, t.Msync(gm.m, 0, gm.data), false)
		}
		// The shim stores a shared writable map back, then unmaps.
		_ = t.Msync(gm.m, 0, gm.data)
		gm.gone = true
		return res(0, t.Munmap(gm.m, nil), false)
	}
	panic("unknown op " + op)
}

// liveSlot picks an open slot, or (rarely, or when none is open) a slot
// that never held an fd.
func (p *goProbe) liveSlot(r *rand.Rand) int {
	var open []int
	for i, l := range p.live {
		if l {
			open = append(open, i)
		}
	}
	if len(open) == 0 || r.IntN(20) == 0 {
		return len(p.fds) + 1000
	}
	return open[r.IntN(len(open))]
}

func randHex(r *rand.Rand, n int) string {
	if n == 0 {
		return "-"
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return hex.EncodeToString(b)
}

// nextOp generates a script line from the probe's state.
func (p *goProbe) nextOp(r *rand.Rand) string {
	names := []string{"a", "b", "c", "state"}
	s := p.liveSlot(r)
	switch r.IntN(26) {
	case 0, 1:
		flags := []int{syscall.O_RDWR, syscall.O_RDONLY, syscall.O_RDWR | syscall.O_CLOEXEC, syscall.O_WRONLY}
		return fmt.Sprintf("open /dev/liveupdate %d", flags[r.IntN(len(flags))])
	case 2, 3:
		flags := []int{0, 1, 2, 3, 0x100}
		return fmt.Sprintf("memfd m%d %d", r.IntN(3), flags[r.IntN(len(flags))])
	case 4:
		return fmt.Sprintf("close %d", s)
	case 5:
		return fmt.Sprintf("read %d %d", s, r.IntN(300))
	case 6:
		return fmt.Sprintf("pread %d %d %d", s, r.IntN(300), r.IntN(6000)-100)
	case 7, 8:
		n := r.IntN(200)
		if r.IntN(8) == 0 {
			n = 5000
		}
		return fmt.Sprintf("write %d %s", s, randHex(r, n))
	case 9:
		return fmt.Sprintf("pwrite %d %d %s", s, r.IntN(9000)-100, randHex(r, r.IntN(100)))
	case 10:
		return fmt.Sprintf("lseek %d %d %d", s, r.IntN(9000)-100, r.IntN(6))
	case 11:
		return fmt.Sprintf("ftruncate %d %d", s, r.IntN(10000)-100)
	case 12:
		return fmt.Sprintf("fstat %d", s)
	case 13:
		cmds := []int{syscall.F_GETFD, syscall.F_SETFD, syscall.F_DUPFD, syscall.F_DUPFD_CLOEXEC, syscall.F_GETFL}
		return fmt.Sprintf("fcntl %d %d %d", s, cmds[r.IntN(len(cmds))], r.IntN(3))
	case 14:
		return fmt.Sprintf("dup %d", s)
	case 15:
		t := p.liveSlot(r)
		if t >= len(p.fds) {
			return fmt.Sprintf("dup %d", s)
		}
		if r.IntN(2) == 0 {
			return fmt.Sprintf("dup2 %d %d", s, t)
		}
		return fmt.Sprintf("dup3 %d %d %d", s, t, []int{0, syscall.O_CLOEXEC, 1}[r.IntN(3)])
	case 16, 17:
		return fmt.Sprintf("create %d %s", s, names[r.IntN(len(names))])
	case 18:
		return fmt.Sprintf("retrieve %d %s", s, names[r.IntN(len(names))])
	case 19, 20:
		return fmt.Sprintf("preserve %d %d %d", s, p.liveSlot(r), r.IntN(4))
	case 21:
		return fmt.Sprintf("retrievefd %d %d", s, r.IntN(4))
	case 22:
		// A raw ioctl whose structs carry no fd: FINISH, GET_NAME or an
		// unknown number, with a random size and contents.
		cmds := []int{libliveupdate.SessionFinish, libliveupdate.SessionGetName, 0xBA02, 0xBA44, 0x1234}
		size := []int{0, 4, 7, 8, 16, 72, 80}[r.IntN(7)]
		n := max(size, 4)
		if r.IntN(4) == 0 {
			n = r.IntN(n) + 4
		}
		b := make([]byte, n)
		for i := 4; i < n; i++ {
			if r.IntN(8) == 0 {
				b[i] = byte(r.IntN(256))
			}
		}
		b[0], b[1] = byte(size), byte(size>>8)
		return fmt.Sprintf("ioctl %d %d %s", s, cmds[r.IntN(len(cmds))], hex.EncodeToString(b))
	case 23:
		return fmt.Sprintf("badioctl %d %d", s, []int{libliveupdate.IoctlCreateSession, libliveupdate.SessionPreserveFD, libliveupdate.SessionFinish, 0x1234}[r.IntN(4)])
	case 24:
		prot := []int{0, kernel.ProtWrite}[r.IntN(2)]
		flags := []int{kernel.MapShared, kernel.MapPrivate, 0}[r.IntN(3)]
		return fmt.Sprintf("mmap %d %d %d %d %d", s, r.IntN(9000), prot, flags, []int{0, 0, 4096, 1}[r.IntN(4)])
	default:
		if len(p.maps) == 0 {
			return fmt.Sprintf("fstat %d", s)
		}
		m := r.IntN(len(p.maps))
		switch r.IntN(3) {
		case 0:
			return fmt.Sprintf("mwrite %d %d %s", m, r.IntN(4096), randHex(r, r.IntN(64)))
		case 1:
			return fmt.Sprintf("msync %d", m)
		}
		return fmt.Sprintf("munmap %d", m)
	}
}

// TestShimMatchesGoAPI runs random scripts of every interposed call and
// LUO ioctl through the shim (luoshim_probe, a real process, against the
// server) and through the Go API on a fresh machine, and requires the same
// result for each call: return value, errno, bytes read, fd flags, stat
// fields, mapped contents and the ioctl structs after the call.
func TestShimMatchesGoAPI(t *testing.T) {
	b := buildShim(t)
	seeds, steps := 6, 250
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := startServer(t)
			m, err := machine.New(machine.Config{LiveUpdate: true})
			require.NoError(t, err)
			p := &goProbe{t: m.Kernel().NewTask()}
			defer p.t.Exit()
			r := rand.New(rand.NewPCG(uint64(seed), 15))
			var script, want []string
			for range steps {
				line := p.nextOp(r)
				script = append(script, line)
				want = append(want, p.exec(line))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := shimmed(ctx, s, b, b.probe)
			cmd.Stdin = strings.NewReader(strings.Join(script, "\n") + "\n")
			out, err := cmd.Output()
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			require.NoError(t, err, "luoshim_probe: %s", stderr)
			got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			for i := range script {
				require.Less(t, i, len(got), "the probe stopped after %d calls", len(got))
				require.Equal(t, want[i], got[i], "call %d: %s\n(script so far:\n%s)", i, script[i], strings.Join(script[:i+1], "\n"))
			}
			waitIdle(t, s)
		})
	}
}
