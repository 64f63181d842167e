package liveupdate_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/kernel/mm/memfdluo"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// This file holds the hostile-hand-over harness: a real LUO hand-over
// image (two sessions with memfds) is built by a real kernel's reboot
// path, then corrupted in physical memory between kho_finalize() and the
// next kernel's boot, and the next kernel is booted and driven through
// every incoming session and file. Whatever the corruption, the outcome
// must be a boot error, EIO on open, or errnos: never a Go panic, a hang,
// or a report other than KHO's WARN on restoring a block that was not
// preserved (kho_restore_page()'s WARN_ON, which Linux has too).

// handoverMiB keeps the machine small: boots are what the harness times.
const handoverMiB = 16

// handoverRegion names one corruptible part of the image.
type handoverRegion int

const (
	regionLUOFDT     handoverRegion = iota // the outgoing LUO FDT page
	regionSessions                         // luo_session_header_ser + entries
	regionFiles                            // session "vm0"'s luo_file_ser array
	regionMemfdSer                         // the first memfd's memfd_luo_ser
	regionMemfdChunk                       // the first memfd's folio-array vmalloc chunk
	numRegions
)

// handoverImage is a prepared hand-over, ready to be corrupted and booted.
type handoverImage struct {
	m        *machine.Machine
	rep      *bug.Collector
	handover mm.PhysAddr
	regions  [numRegions]struct {
		pa mm.PhysAddr
		n  int
	}
	// saved is what survives the kexec, so that reset can rebuild the
	// image for another boot.
	saved *mm.RAMImage
}

// expectedWarns are the titles of the WARNs a corrupt hand-over may
// rightly cause: kho_restore_page() WARNs on an address that is not the
// head of a preserved block of the expected order, in Linux too.
var expectedWarns = []string{
	"kho: restore of ",
	"kho: restore_pages of ",
	"kho: cannot claim preserved ",
}

// readU64 reads a little-endian u64 from raw memory.
func readU64(tb testing.TB, ram *mm.RAM, pa mm.PhysAddr) uint64 {
	var b [8]byte
	require.NoError(tb, ram.ReadRaw(pa, b[:]))
	return binary.LittleEndian.Uint64(b[:])
}

// newHandoverImage builds the image: session "vm0" with two memfds (one of
// three pages, one empty) and session "vm1" with one, then runs the old
// kernel's kexec preparation and finds each region from the bytes.
func newHandoverImage(tb testing.TB) *handoverImage {
	tb.Helper()
	img := &handoverImage{rep: &bug.Collector{}}
	m, err := machine.New(machine.Config{LiveUpdate: true, MemoryMiB: handoverMiB, Report: img.rep.File})
	require.NoError(tb, err)
	img.m = m
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(tb, err)
	s0, err := lu.CreateSession(task, dev, "vm0")
	require.NoError(tb, err)
	s1, err := lu.CreateSession(task, dev, "vm1")
	require.NoError(tb, err)
	mfd, err := task.MemfdCreate("big", 0)
	require.NoError(tb, err)
	_, err = task.Write(mfd, []byte(strings.Repeat("0123456789abcdef", 3*mm.PageSize/16)))
	require.NoError(tb, err)
	require.NoError(tb, lu.PreserveFD(task, s0, mfd, 1))
	require.NoError(tb, lu.CreateAndPreserveMemfd(task, s0, 2, ""))
	require.NoError(tb, lu.CreateAndPreserveMemfd(task, s1, 3, "vm1 state"))

	k := m.Kernel()
	img.handover, err = k.PrepareKexec()
	require.NoError(tb, err)
	k.MarkDead()

	ram := m.RAM()
	in, err := kho.Populate(ram, img.handover)
	require.NoError(tb, err)
	h, err := liveupdate.LocateHandover(ram, img.handover)
	require.NoError(tb, err)
	img.regions[regionLUOFDT].pa, img.regions[regionLUOFDT].n = h.FDT, liveupdate.FDTSize
	img.regions[regionSessions].pa = h.Sessions
	img.regions[regionSessions].n = liveupdate.SessionHeaderSerSize + 2*liveupdate.SessionSerSize
	vm0, err := h.Session(0)
	require.NoError(tb, err)
	files := mm.PhysAddr(vm0.FileSetSer.Files)
	img.regions[regionFiles].pa, img.regions[regionFiles].n = files, 2*liveupdate.FileSerSize
	ser := mm.PhysAddr(readU64(tb, ram, files+liveupdate.FileSerOffData))
	img.regions[regionMemfdSer].pa, img.regions[regionMemfdSer].n = ser, memfdluo.SerSize
	chunk := mm.PhysAddr(readU64(tb, ram, ser+memfdluo.SerOffFolios))
	img.regions[regionMemfdChunk].pa, img.regions[regionMemfdChunk].n = chunk, 64
	ram.Scrub(in.Keep())
	img.saved, err = ram.Save(in.Keep())
	require.NoError(tb, err)
	return img
}

// reset puts the image back as the old kernel left it (what survives the
// kexec, every other page poisoned) and forgets the reports.
func (img *handoverImage) reset(tb testing.TB) {
	ram := img.m.RAM()
	ram.Restore(img.saved)
	img.rep.Reset()
}

// xor applies mask over region r, from its start.
func (img *handoverImage) xor(tb testing.TB, r handoverRegion, mask []byte) {
	reg := img.regions[r]
	n := min(len(mask), reg.n)
	if n == 0 {
		return
	}
	require.NoError(tb, img.m.RAM().XorRaw(reg.pa, mask[:n]))
}

// set writes v at byte i of region r.
func (img *handoverImage) set(tb testing.TB, r handoverRegion, i int, v byte) {
	require.NoError(tb, img.m.RAM().WriteRaw(img.regions[r].pa+mm.PhysAddr(i), []byte{v}))
}

// errnoOnly fails unless err is nil or a syscall.Errno.
func errnoOnly(tb testing.TB, what string, err error) {
	tb.Helper()
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		tb.Fatalf("%s: %v is not an errno", what, err)
	}
}

// outcome is what booting a (corrupted) image came to.
type outcome struct {
	bootErr   error
	openErr   error
	sessions  []string
	retrieved int // files retrieved and read
}

// bootAndDrive boots the next kernel on the image and drives it: open
// /dev/liveupdate, retrieve every incoming session (by the names the
// kernel found), retrieve and read every file, finish, exit; then every
// file must be released and no unexpected report filed.
func (img *handoverImage) bootAndDrive(tb testing.TB) outcome {
	tb.Helper()
	var out outcome
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
		out.bootErr = err
		img.checkReports(tb)
		return out
	}
	task := k.NewTask()
	dev, err := lu.OpenDevice(task)
	if err != nil && !errors.Is(err, syscall.EIO) {
		tb.Fatalf("open /dev/liveupdate: %v; a failed hand-over is EIO", err)
	}
	if err != nil {
		out.openErr = err
		task.Exit()
		vfs.CheckNoLeaks(tb, k.VFS())
		img.checkReports(tb)
		return out
	}
	for _, s := range k.LUO().Snapshot().Incoming.Sessions {
		out.sessions = append(out.sessions, s.Name)
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
			buf := make([]byte, 2*mm.PageSize)
			_, err = task.Read(fd, buf)
			errnoOnly(tb, "read", err)
			_, err = task.Lseek(fd, 0, 2)
			errnoOnly(tb, "lseek", err)
			out.retrieved++
		}
		errnoOnly(tb, "finish", lu.FinishSession(task, sfd))
		_, err = lu.SessionName(task, sfd)
		errnoOnly(tb, "get name", err)
	}
	task.Exit()
	vfs.CheckNoLeaks(tb, k.VFS())
	img.checkReports(tb)
	return out
}

func (img *handoverImage) checkReports(tb testing.TB) {
	tb.Helper()
	if bad := img.rep.Unexpected(expectedWarns...); len(bad) > 0 {
		tb.Fatalf("%d unexpected report(s); first:\n%s", len(bad), bad[0])
	}
}

// TestHandoverImageIntact: the uncorrupted image boots and every file
// comes back.
func TestHandoverImageIntact(t *testing.T) {
	img := newHandoverImage(t)
	for range 2 { // the second time from the reset image
		out := img.bootAndDrive(t)
		require.NoError(t, out.bootErr)
		require.NoError(t, out.openErr)
		require.Equal(t, []string{"vm0", "vm1"}, out.sessions)
		require.Equal(t, 3, out.retrieved)
		require.Empty(t, img.rep.Reports())
		img.reset(t)
	}
}

// FuzzLUOHandover XORs fuzz bytes over the LUO FDT, the session array, one
// file array, one memfd_luo_ser and its folio-array chunk of a real
// hand-over image, then boots the next kernel on it and drives every
// session and file it finds: the result is a boot error, EIO on open, or
// errnos, never a panic, a hang or an unexpected report.
func FuzzLUOHandover(f *testing.F) {
	z := func(n int) []byte { return make([]byte, n) }
	f.Add(z(0), z(0), z(0), z(0), z(0))
	flip := func(n, at int, v byte) []byte { b := z(n); b[at] = v; return b }
	f.Add(z(0), flip(8, 0, 0xff), z(0), z(0), z(0))                                             // session count
	f.Add(z(0), flip(16, 8+1, 'x'), z(0), z(0), z(0))                                           // a name
	f.Add(z(0), flip(8+liveupdate.SessionSerSize, 8+72, 0x7f), z(0), z(0), z(0))                // file count
	f.Add(z(0), flip(8+liveupdate.SessionSerSize, 8+65, 0x10), z(0), z(0), z(0))                // files PA
	f.Add(z(0), z(0), flip(liveupdate.FileSerSize, 49, 0x40), z(0), z(0))                       // data PA
	f.Add(z(0), z(0), flip(liveupdate.FileSerSize, 0, 'x'), z(0), z(0))                         // compatible
	f.Add(z(0), z(0), flip(2*liveupdate.FileSerSize, liveupdate.FileSerSize+56, 1), z(0), z(0)) // duplicate token
	f.Add(z(0), z(0), z(0), flip(memfdluo.SerSize, 16, 0xff), z(0))                             // nr_folios
	f.Add(z(0), z(0), z(0), flip(memfdluo.SerSize, 8, 0x80), z(0))                              // size
	f.Add(z(0), z(0), z(0), flip(memfdluo.SerSize, 25, 0x01), z(0))                             // vmalloc first
	f.Add(z(0), z(0), z(0), z(0), flip(64, 8, 0x01))                                            // a folio PA
	f.Add(z(0), z(0), z(0), z(0), flip(64, 0, 0x10))                                            // chunk next
	f.Add(flip(64, 60, 0xff), z(0), z(0), z(0), z(0))                                           // LUO FDT
	var img *handoverImage
	f.Fuzz(func(t *testing.T, fdtX, sessX, filesX, serX, chunkX []byte) {
		defer checkGoroutines(t, runtime.NumGoroutine())
		if img == nil {
			img = newHandoverImage(t)
		}
		img.reset(t)
		img.xor(t, regionLUOFDT, fdtX)
		img.xor(t, regionSessions, sessX)
		img.xor(t, regionFiles, filesX)
		img.xor(t, regionMemfdSer, serX)
		img.xor(t, regionMemfdChunk, chunkX)
		img.bootAndDrive(t)
	})
}

// describe renders an outcome for failure messages.
func (o outcome) String() string {
	return fmt.Sprintf("boot=%v open=%v sessions=%q retrieved=%d", o.bootErr, o.openErr, o.sessions, o.retrieved)
}
