package liveupdate_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/vfs"
	"luomodel/machine"
)

// newMachine boots a machine with liveupdate=on whose reports fail tb.
func newMachine(tb testing.TB) *machine.Machine {
	tb.Helper()
	m, err := machine.New(machine.Config{
		LiveUpdate: true,
		Report:     func(r *bug.Report) { tb.Errorf("%s", r.String()) },
	})
	require.NoError(tb, err)
	return m
}

// fakeHandler is a file handler for tests: it preserves /dev/null and its
// own files and retrieves "fake:DATA" files. Failures are injected by fields.
type fakeHandler struct {
	fh  liveupdate.FileHandler
	vfs *vfs.VFS // where retrieved files are made

	mu sync.Mutex
	// next is the serialized data of the next preserve.
	next uint64
	// calls counts callbacks by name.
	calls map[string]int
	// freezeFail fails Freeze of the file with this serialized data.
	freezeFail map[uint64]error
	// retrieveFail fails every Retrieve.
	retrieveFail error
	// busy makes CanFinish answer false.
	busy bool
	// finishStatus records the RetrieveStatus given to Finish, by data.
	finishStatus map[uint64]int
}

func newFakeHandler(k *kernel.Kernel) *fakeHandler {
	h := &fakeHandler{
		vfs:          vfs.New(k.Domain()),
		next:         0x1000,
		calls:        map[string]int{},
		freezeFail:   map[uint64]error{},
		finishStatus: map[uint64]int{},
	}
	h.fh = liveupdate.FileHandler{Compatible: "fake-v1", Ops: &liveupdate.FileOps{
		CanPreserve: func(_ *liveupdate.FileHandler, f *vfs.File) bool {
			return f.Name() == "/dev/null" || strings.HasPrefix(f.Name(), "fake:")
		},
		Preserve: func(a *liveupdate.FileOpArgs) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls["preserve"]++
			a.SerializedData = h.next
			a.PrivateData = h.next
			h.next++
			return nil
		},
		Unpreserve: func(a *liveupdate.FileOpArgs) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls["unpreserve"]++
		},
		Freeze: func(a *liveupdate.FileOpArgs) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls["freeze"]++
			return h.freezeFail[a.SerializedData]
		},
		Unfreeze: func(a *liveupdate.FileOpArgs) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls["unfreeze"]++
		},
		Retrieve: func(a *liveupdate.FileOpArgs) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls["retrieve"]++
			if h.retrieveFail != nil {
				return h.retrieveFail
			}
			a.File = h.vfs.NewFile(fmt.Sprintf("fake:%#x", a.SerializedData), syscall.O_RDWR, vfs.NoFileOperations{}, nil, nil)
			return nil
		},
		CanFinish: func(a *liveupdate.FileOpArgs) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls["can_finish"]++
			return !h.busy
		},
		Finish: func(a *liveupdate.FileOpArgs) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls["finish"]++
			h.finishStatus[a.SerializedData] = a.RetrieveStatus
		},
	}}
	return h
}

func (h *fakeHandler) count(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[name]
}

// register registers h with k's LUO.
func (h *fakeHandler) register(tb testing.TB, k *kernel.Kernel) {
	tb.Helper()
	require.NoError(tb, k.LUO().RegisterFileHandler(&h.fh))
}

// Raw argument buffers.

func sessionBuf(name string) []byte {
	b := make([]byte, liveupdate.SessionArgSize)
	binary.LittleEndian.PutUint32(b, liveupdate.SessionArgSize)
	copy(b[liveupdate.SessionArgOffName:], name)
	return b
}

func fdBuf(fd int, token uint64) []byte {
	b := make([]byte, liveupdate.FDArgSize)
	a := liveupdate.FDArg{Size: liveupdate.FDArgSize, FD: int32(fd), Token: token}
	a.Encode(b)
	return b
}

func finishBuf(reserved uint32) []byte {
	b := make([]byte, liveupdate.FinishArgSize)
	a := liveupdate.FinishArg{Size: liveupdate.FinishArgSize, Reserved: reserved}
	a.Encode(b)
	return b
}

func getNameBuf(reserved uint32) []byte {
	b := make([]byte, liveupdate.GetNameArgSize)
	a := liveupdate.GetNameArg{Size: liveupdate.GetNameArgSize, Reserved: reserved}
	a.Encode(b)
	return b
}

// openDev opens /dev/liveupdate.
func openDev(tb testing.TB, t *kernel.Task) int {
	tb.Helper()
	fd, err := t.Open("/dev/liveupdate", syscall.O_RDWR)
	require.NoError(tb, err)
	return fd
}

func createSession(t *kernel.Task, dev int, name string) (int, error) {
	b := sessionBuf(name)
	if err := t.Ioctl(dev, liveupdate.IoctlCreateSession, b); err != nil {
		return -1, err
	}
	return int(liveupdate.DecodeSessionArg(b).FD), nil
}

func retrieveSession(t *kernel.Task, dev int, name string) (int, error) {
	b := sessionBuf(name)
	if err := t.Ioctl(dev, liveupdate.IoctlRetrieveSession, b); err != nil {
		return -1, err
	}
	return int(liveupdate.DecodeSessionArg(b).FD), nil
}

func preserveFD(t *kernel.Task, s, fd int, token uint64) error {
	return t.Ioctl(s, liveupdate.IoctlSessionPreserveFD, fdBuf(fd, token))
}

func retrieveFD(t *kernel.Task, s int, token uint64) (int, error) {
	b := fdBuf(0, token)
	if err := t.Ioctl(s, liveupdate.IoctlSessionRetrieveFD, b); err != nil {
		return -1, err
	}
	return int(liveupdate.DecodeFDArg(b).FD), nil
}

func finishSession(t *kernel.Task, s int) error {
	return t.Ioctl(s, liveupdate.IoctlSessionFinish, finishBuf(0))
}

// openNull opens /dev/null, a file the fake handler preserves.
func openNull(tb testing.TB, t *kernel.Task) int {
	tb.Helper()
	fd, err := t.Open("/dev/null", syscall.O_RDWR)
	require.NoError(tb, err)
	return fd
}
