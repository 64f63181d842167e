package luotest_test

import (
	"syscall"
	"testing"

	"luomodel/kernel"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/vfs"
	"luomodel/luotest"
)

// nullHandler is a minimal file handler: it preserves /dev/null files
// (there is nothing to save: the serialized data only numbers the file) and
// retrieves a file that reads as empty. (Its first version opened a new
// /dev/null in retrieve: the kit's campaign failed on lockdep, as that
// takes the misc devices' mutex under luo_file.mutex.)
func nullHandler() luotest.Handler {
	return luotest.Handler{
		Install: func(k *kernel.Kernel, _ *kernel.Task) (*liveupdate.FileHandler, error) {
			var n uint64 // files preserved by this kernel's handler
			fh := &liveupdate.FileHandler{Compatible: "null-v1", Ops: &liveupdate.FileOps{
				CanPreserve: func(_ *liveupdate.FileHandler, f *vfs.File) bool { return f.Name() == "/dev/null" },
				Preserve: func(a *liveupdate.FileOpArgs) error {
					n++
					a.SerializedData = k.LUO().LiveupdateNumber()<<32 | n
					return nil
				},
				Unpreserve: func(*liveupdate.FileOpArgs) {},
				Retrieve: func(a *liveupdate.FileOpArgs) error {
					a.File = k.VFS().NewFile("/dev/null", syscall.O_RDWR, vfs.NoFileOperations{}, nil, nil)
					return nil
				},
				Finish: func(*liveupdate.FileOpArgs) {},
			}}
			return fh, k.LUO().RegisterFileHandler(fh)
		},
		NewFile:  func(t *kernel.Task, _ []byte) (int, error) { return t.Open("/dev/null", syscall.O_RDWR) },
		ReadFile: func(*kernel.Task, int) ([]byte, error) { return []byte{}, nil },
		MaxData:  -1, // a /dev/null file holds nothing
	}
}

// Example checks a minimal handler against LUO's contract: a test
// function of the handler's package passes it to Check.
func Example() {
	testNullHandler := func(t *testing.T) {
		luotest.Check(t, nullHandler())
	}
	_ = testNullHandler
}

// TestExampleHandlerConforms runs the example's handler through the kit.
func TestExampleHandlerConforms(t *testing.T) { luotest.Check(t, nullHandler()) }
