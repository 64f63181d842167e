package luotest_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"luomodel/kernel"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
	"luomodel/luotest"
	"luomodel/model"
)

// brokenMemfd is the memfd handler with one callback broken by breakOps,
// which is given the handler's ops to change in place.
func brokenMemfd(breakOps func(ops *liveupdate.FileOps)) luotest.Handler {
	h := memfdHandler()
	h.Install = func(k *kernel.Kernel, _ *kernel.Task) (*liveupdate.FileHandler, error) {
		fh := k.LUO().RegisteredHandler(model.MemfdCompatible)
		if fh == nil {
			return nil, errors.New("memfd handler not registered")
		}
		breakOps(fh.Ops)
		return fh, nil
	}
	return h
}

// brokenHandlers break the contract each in one way; the kit must fail
// each with the message given.
var brokenHandlers = map[string]struct {
	h    func() luotest.Handler
	want string
}{
	// retrieve succeeds, but the file it returns holds one byte more.
	"retrieve-different-bytes": {func() luotest.Handler {
		return brokenMemfd(func(ops *liveupdate.FileOps) {
			retrieve := ops.Retrieve
			ops.Retrieve = func(a *liveupdate.FileOpArgs) error {
				if err := retrieve(a); err != nil {
					return err
				}
				return a.File.Truncate(mm.ShmemInodeOf(a.File).Size() + 1)
			}
		})
	}, "retrieve must rebuild the file byte for byte"},
	// get_id names a file differently at every call.
	"get-id-unstable": {func() luotest.Handler {
		return brokenMemfd(func(ops *liveupdate.FileOps) {
			var n atomic.Uint64
			ops.GetID = func(*vfs.File) uint64 { return n.Add(1) }
		})
	}, "a file's id must not change while LUO holds it"},
	// unpreserve, called when an outgoing session is closed, releases
	// nothing.
	"unpreserve-does-nothing": {func() luotest.Handler {
		return brokenMemfd(func(ops *liveupdate.FileOps) {
			ops.Unpreserve = func(*liveupdate.FileOpArgs) {}
		})
	}, "handed over, but neither restored nor owned"},
	// finish, called after can_finish said yes, does not release the
	// file's preserved memory.
	"finish-does-nothing": {func() luotest.Handler {
		return brokenMemfd(func(ops *liveupdate.FileOps) {
			ops.Finish = func(*liveupdate.FileOpArgs) {}
		})
	}, "handed over, but neither restored nor owned"},
}

// TestBrokenHandlerChild runs the kit on the broken handler
// LUOTEST_BROKEN names (for TestBrokenHandlersFail, in a child process:
// a kit failure fails the test that runs it).
func TestBrokenHandlerChild(t *testing.T) {
	b, ok := brokenHandlers[os.Getenv("LUOTEST_BROKEN")]
	if !ok {
		t.Skip("run by TestBrokenHandlersFail")
	}
	luotest.Check(t, b.h())
}

// TestBrokenHandlersFail: the kit fails a handler that breaks LUO's
// contract, with a message that says how.
func TestBrokenHandlersFail(t *testing.T) {
	for name, b := range brokenHandlers {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestBrokenHandlerChild$", "-test.v", "-rapid.nofailfile")
			cmd.Env = append(os.Environ(), "LUOTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the kit passed the broken handler %s (err %v):\n%s", name, err, out)
			}
			if !strings.Contains(string(out), b.want) {
				t.Fatalf("the kit failed the broken handler %s without saying %q:\n%s", name, b.want, out)
			}
		})
	}
}
