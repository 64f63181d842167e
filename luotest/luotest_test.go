package luotest_test

import (
	"errors"
	"io"
	"syscall"
	"testing"

	"luomodel/kernel"
	lt "luomodel/kernel/lib/liveupdatetest"
	"luomodel/kernel/liveupdate"
	"luomodel/luotest"
	"luomodel/model"
)

// readAll reads fd of t from its start to EOF.
func readAll(t *kernel.Task, fd int) ([]byte, error) {
	if _, err := t.Lseek(fd, 0, io.SeekStart); err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := t.Read(fd, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// TestMemfdHandlerConforms: the memfd handler, built into every kernel.
func TestMemfdHandlerConforms(t *testing.T) { luotest.Check(t, memfdHandler()) }

// memfdHandler describes the memfd handler to the kit.
func memfdHandler() luotest.Handler {
	return luotest.Handler{
		Install: func(k *kernel.Kernel, _ *kernel.Task) (*liveupdate.FileHandler, error) {
			fh := k.LUO().RegisteredHandler(model.MemfdCompatible)
			if fh == nil {
				return nil, errors.New("memfd handler not registered")
			}
			return fh, nil
		},
		NewFile: func(t *kernel.Task, data []byte) (int, error) {
			fd, err := t.MemfdCreate("conformance", 0)
			if err != nil {
				return -1, err
			}
			if len(data) > 0 {
				if _, err := t.Write(fd, data); err != nil {
					return -1, err
				}
			}
			return fd, nil
		},
		ReadFile: readAll,
		MaxData:  5000,
	}
}

// TestTestHandlerConforms: the test module's handler, loaded as a module.
func TestTestHandlerConforms(t *testing.T) {
	luotest.Check(t, luotest.Handler{
		Install: func(k *kernel.Kernel, t *kernel.Task) (*liveupdate.FileHandler, error) {
			if err := t.InitModule(lt.ModuleName); err != nil {
				return nil, err
			}
			return k.LiveupdateTest().FileHandler(), nil
		},
		NewFile: func(t *kernel.Task, data []byte) (int, error) {
			fd, err := t.Open(lt.DevicePath, syscall.O_RDWR)
			if err != nil {
				return -1, err
			}
			if len(data) > 0 {
				if _, err := t.Write(fd, data); err != nil {
					return -1, err
				}
			}
			return fd, nil
		},
		ReadFile: readAll,
	})
}
