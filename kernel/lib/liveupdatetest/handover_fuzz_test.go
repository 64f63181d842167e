package liveupdatetest_test

import (
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	lt "luomodel/kernel/lib/liveupdatetest"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// This file is the hostile-hand-over harness for the FLB block and the
// test module's data (see kernel/liveupdate/handover_fuzz_test.go for the
// session side): a real image with two preserved test files and both test
// FLBs, corrupted between the old kernel's kexec preparation and the next
// boot, then booted and driven (load the module, open, retrieve, read,
// finish, unload). Whatever the corruption: a boot error, EIO on open, or
// errnos; never a panic, a hang, or a report other than those Linux has
// for corrupt data too: KHO's WARN on restoring what was not preserved, and
// refcount_t's and LUO's WARNs when an FLB's serialized count or data lies.

// flbRegion names one corruptible part of the image.
type flbRegion int

const (
	regionFLBBlock flbRegion = iota // luo_flb_header_ser + entries
	regionFileSer                   // the first test file's liveupdate_test_ser header
	regionFLBSer                    // FLB 0's liveupdate_test_flb_ser header
	numFLBRegions
)

type flbImage struct {
	m        *machine.Machine
	handover mm.PhysAddr
	regions  [numFLBRegions]struct {
		pa mm.PhysAddr
		n  int
	}
	saved *mm.RAMImage // what survives the kexec, for reset
	reps  bug.Collector
}

var expectedFLBWarns = []string{
	"kho: restore of ",
	"kho: cannot claim preserved ",
	"refcount_t: ",
	"liveupdate: FLB ",
}

func (img *flbImage) checkReports(tb testing.TB) {
	tb.Helper()
	if bad := img.reps.Unexpected(expectedFLBWarns...); len(bad) > 0 {
		tb.Fatalf("unexpected report:\n%s", bad[0])
	}
}

func newFLBImage(tb testing.TB) *flbImage {
	tb.Helper()
	img := &flbImage{}
	m, err := machine.New(machine.Config{LiveUpdate: true, MemoryMiB: 16, Report: img.reps.File})
	require.NoError(tb, err)
	img.m = m
	k := m.Kernel()
	task := load(tb, k)
	require.NoError(tb, k.LiveupdateTest().SetFLBState(0, []byte("state of flb zero")))
	dev, err := lu.OpenDevice(task)
	require.NoError(tb, err)
	s, err := lu.CreateSession(task, dev, "s")
	require.NoError(tb, err)
	for i, p := range []string{"first payload", "second"} {
		fd, err := task.Open(lt.DevicePath, syscall.O_RDWR)
		require.NoError(tb, err)
		_, err = task.Write(fd, []byte(p))
		require.NoError(tb, err)
		require.NoError(tb, lu.PreserveFD(task, s, fd, uint64(i+1)))
	}
	img.handover, err = k.PrepareKexec()
	require.NoError(tb, err)
	st := k.LUO().Snapshot()
	k.MarkDead()
	img.regions[regionFLBBlock].pa = st.FLBOut
	img.regions[regionFLBBlock].n = liveupdate.FLBHeaderSerSize + 2*liveupdate.FLBSerSize
	img.regions[regionFileSer].pa = mm.PhysAddr(st.Outgoing.Sessions[0].Files[0].SerializedData)
	img.regions[regionFileSer].n = lt.SerOffPayload + 16
	img.regions[regionFLBSer].pa = mm.PhysAddr(st.FLBs[0].OutgoingData)
	img.regions[regionFLBSer].n = lt.FLBSerOffState + 16

	ram := m.RAM()
	in, err := kho.Populate(ram, img.handover)
	require.NoError(tb, err)
	ram.Scrub(in.Keep())
	img.saved, err = ram.Save(in.Keep())
	require.NoError(tb, err)
	return img
}

func (img *flbImage) reset(tb testing.TB) {
	ram := img.m.RAM()
	ram.Restore(img.saved)
	img.reps.Reset()
}

func (img *flbImage) xor(tb testing.TB, r flbRegion, mask []byte) {
	reg := img.regions[r]
	n := min(len(mask), reg.n)
	if n == 0 {
		return
	}
	require.NoError(tb, img.m.RAM().XorRaw(reg.pa, mask[:n]))
}

func errnoOnly(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil && !errors.As(err, new(syscall.Errno)) {
		tb.Fatalf("%s: %v is not an errno", what, err)
	}
}

// bootAndDrive boots the next kernel on the image and drives it; it
// returns how many files came back with their payload.
func (img *flbImage) bootAndDrive(tb testing.TB) (retrieved int, bootErr error) {
	tb.Helper()
	k, err := kernel.Boot(kernel.BootParams{
		RAM:      img.m.RAM(),
		Cmdline:  img.m.Cmdline(),
		Handover: img.handover,
		Reporter: img.m.Reporter(),
		Lockdep:  true,
	})
	if err != nil {
		if !errors.As(err, new(syscall.Errno)) {
			tb.Fatalf("boot: %v carries no errno", err)
		}
		img.checkReports(tb)
		return 0, err
	}
	task := k.NewTask()
	errnoOnly(tb, "init_module", task.InitModule(lt.ModuleName))
	for i := range lt.NumFLBs {
		if flb := k.LiveupdateTest().FLB(i); flb != nil {
			if _, err := k.LUO().FLBGetIncoming(flb); err == nil {
				k.LUO().FLBPutIncoming(flb)
			} else {
				errnoOnly(tb, "get incoming", err)
			}
		}
	}
	dev, err := lu.OpenDevice(task)
	if err != nil && !errors.Is(err, syscall.EIO) {
		tb.Fatalf("open /dev/liveupdate: %v; a failed hand-over is EIO", err)
	}
	if err == nil {
		for _, s := range k.LUO().Snapshot().Incoming.Sessions {
			sfd, err := lu.RetrieveSession(task, dev, s.Name)
			errnoOnly(tb, "retrieve session", err)
			if err != nil {
				continue
			}
			for _, f := range s.Files {
				fd, err := lu.RetrieveFD(task, sfd, f.Token)
				errnoOnly(tb, "retrieve fd", err)
				if err != nil {
					continue
				}
				_, err = task.Read(fd, make([]byte, lt.PayloadMax))
				errnoOnly(tb, "read", err)
				errnoOnly(tb, "close", task.Close(fd))
				retrieved++
			}
			errnoOnly(tb, "finish", lu.FinishSession(task, sfd))
			errnoOnly(tb, "close session", task.Close(sfd))
		}
		errnoOnly(tb, "close dev", task.Close(dev))
	}
	errnoOnly(tb, "delete_module", task.DeleteModule(lt.ModuleName, 0))
	task.Exit()
	vfs.CheckNoLeaks(tb, k.VFS())
	img.checkReports(tb)
	return retrieved, nil
}

func TestFLBHandoverImageIntact(t *testing.T) {
	img := newFLBImage(t)
	for range 2 {
		n, err := img.bootAndDrive(t)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Empty(t, img.reps.Reports())
		img.reset(t)
	}
}

// FuzzFLBHandover XORs fuzz bytes over the FLB block, a test file's
// serialized header and a test FLB's, then boots and drives the next
// kernel.
func FuzzFLBHandover(f *testing.F) {
	z := func(n int) []byte { return make([]byte, n) }
	flip := func(n, at int, v byte) []byte { b := z(n); b[at] = v; return b }
	f.Add(z(0), z(0), z(0))
	f.Add(flip(8, 0, 0x02), z(0), z(0))                                                    // pgcnt
	f.Add(flip(16, 8, 0x7f), z(0), z(0))                                                   // count
	f.Add(flip(16+liveupdate.FLBSerSize, 16+3, 'X'), z(0), z(0))                           // a name
	f.Add(flip(16+liveupdate.FLBSerSize, 16+liveupdate.FLBSerOffData+1, 0x10), z(0), z(0)) // data PA
	f.Add(flip(16+liveupdate.FLBSerSize, 16+liveupdate.FLBSerOffCount, 0x02), z(0), z(0))  // count 2 -> 0
	f.Add(flip(16+liveupdate.FLBSerSize, 16+liveupdate.FLBSerOffCount, 0x03), z(0), z(0))  // count 2 -> 1
	f.Add(z(0), flip(lt.SerOffSize+1, lt.SerOffSize, 0xff), z(0))                          // payload size
	f.Add(z(0), flip(lt.SerOffID+1, lt.SerOffID, 0x01), z(0))                              // id
	f.Add(z(0), z(0), flip(lt.FLBSerOffLen+2, lt.FLBSerOffLen+1, 0x10))                    // FLB state length
	f.Add(z(0), z(0), flip(1, 0, 0x01))                                                    // FLB magic
	var img *flbImage
	f.Fuzz(func(t *testing.T, blockX, fileX, flbX []byte) {
		before := runtime.NumGoroutine()
		if img == nil {
			img = newFLBImage(t)
		}
		img.reset(t)
		img.xor(t, regionFLBBlock, blockX)
		img.xor(t, regionFileSer, fileX)
		img.xor(t, regionFLBSer, flbX)
		_, _ = img.bootAndDrive(t)
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Fatalf("%d goroutines outlived the input", n-before)
		}
	})
}
