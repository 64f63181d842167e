package liveupdate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/kho"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// This file ports kernel/liveupdate/luo_core.c: the global state, boot-time
// parsing of the incoming "LUO" subtree, creation of the outgoing one,
// liveupdate_reboot() and the /dev/liveupdate misc device.

// Config is what a booting kernel hands LUO.
type Config struct {
	// Enabled is "liveupdate=" from the command line.
	Enabled  bool
	Domain   *locking.Domain
	Reporter *bug.Reporter
	MM       *mm.MM
	VFS      *vfs.VFS
	KHO      *kho.KHO
	// Faults is the machine's fault injector; nil for none.
	Faults *fault.Injector
	// Calls, if set, is told of every call LUO makes into a file handler
	// or an FLB (luo_callback.go).
	Calls CallRecorder
}

// LUO is one kernel's Live Update Orchestrator: luo_global,
// luo_session_global, the handler list and the device state.
type LUO struct {
	dom *locking.Domain // immutable
	rep *bug.Reporter   // immutable
	mem physMem         // immutable
	kho handover        // immutable; nil when the kernel has no KHO
	vfs *vfs.VFS        // immutable
	// faults is the machine's fault injector; immutable, nil for none.
	faults *fault.Injector
	// calls records LUO's calls into handlers and FLBs; immutable, nil
	// for none.
	calls CallRecorder

	// luo_global. Written only at boot (EarlyInit, LateInit), before any
	// task can reach LUO; read-only afterwards.
	enabled       bool
	fdtOut        mm.PhysAddr // the outgoing LUO FDT, 0 if none
	fdtIn         mm.PhysAddr // the incoming LUO FDT, 0 on a cold boot
	liveupdateNum uint64      // number of live updates that led to this kernel

	// sessions is luo_session_global.
	sessions sessionGlobal
	// serializeRwsem is luo_session_serialize_rwsem (M13, M14).
	serializeRwsem locking.RWSem
	// serialized is true while a successful luo_session_serialize() keeps
	// serializeRwsem for write (read by Snapshot, which cannot take it).
	serialized atomic.Bool

	// registerRwsem is luo_register_rwlock (M18).
	registerRwsem locking.RWSem
	// handlers is luo_file_handler_list, in registration order; guarded by
	// registerRwsem.
	handlers []*registeredHandler

	// preserved is luo_preserved_files (M17).
	preserved preservedFiles

	// flb is luo_flb_global: its list and count are guarded by
	// registerRwsem, its headers set at boot.
	flb flbGlobal
	// flbInitLock is luo_flb_get_private()'s luo_flb_init_lock.
	flbInitLock flbInit

	// dev is luo_dev.
	dev luoDeviceState
	// deser is the cached result of luo_session_deserialize().
	deser deserializeResult

	sessionFops sessionFileOps // the session files' file_operations
	log         klog
}

// luoDeviceState ports struct luo_device_state.
type luoDeviceState struct {
	miscdev vfs.MiscDevice // set up by LateInit
	// inUse is the exclusive-open flag; a try-lock that never waits.
	inUse atomic.Int32
	// registered is written at boot only.
	registered bool
}

// deserializeResult ports the function-static is_deserialized / err pair of
// luo_session_deserialize(). Written only by the exclusive opener of
// /dev/liveupdate; atomics so that Snapshot may read it.
type deserializeResult struct {
	done atomic.Bool
	err  atomic.Int32 // a syscall.Errno; 0 for success
}

// khoHandover adapts *kho.KHO to handover.
type khoHandover struct{ *kho.KHO }

// incoming reports whether [pa, pa+size) lies in one incoming preserved
// block that starts at pa: every structure LUO reads from the previous
// kernel was preserved as a block of its own, and is restored or freed as
// one later (a PA inside another block, e.g. a file array pointing into
// the session block, would be freed as a block it is not).
func (h khoHandover) incoming(pa mm.PhysAddr, size uint64) bool {
	in := h.Incoming()
	if in == nil {
		return false
	}
	b, ok := in.BlockAt(pa)
	return ok && b.PA == pa && size <= b.Size()
}

// EarlyInit ports luo_core.c:liveupdate_early_init() and
// luo_early_startup(): it parses the incoming hand-over. An error here is a
// boot panic (luo_restore_fail()); the kernel must not continue.
func EarlyInit(cfg Config) (*LUO, error) {
	var h handover
	if cfg.KHO != nil {
		h = khoHandover{cfg.KHO}
	}
	var m physMem
	if cfg.MM != nil {
		m = mmMem{cfg.MM}
	}
	return earlyInit(cfg, h, m)
}

// earlyInit is EarlyInit with the KHO and memory seams explicit.
func earlyInit(cfg Config, h handover, m physMem) (*LUO, error) {
	rep := cfg.Reporter
	if rep == nil && cfg.Domain != nil {
		rep = cfg.Domain.Reporter()
	}
	l := &LUO{dom: cfg.Domain, rep: rep, mem: m, kho: h, vfs: cfg.VFS, faults: cfg.Faults, calls: cfg.Calls, enabled: cfg.Enabled}
	l.sessionFops.l = l
	l.serializeRwsem.Init(cfg.Domain, "luo_session_serialize_rwsem")
	l.registerRwsem.Init(cfg.Domain, "luo_register_rwlock")
	l.sessions.incoming.rwsem.Init(cfg.Domain, "luo_session_global.incoming.rwsem")
	l.sessions.outgoing.rwsem.Init(cfg.Domain, "luo_session_global.outgoing.rwsem")

	if err := l.earlyStartup(); err != nil {
		l.enabled = false
		l.log.printf("err", "The incoming tree failed to initialize properly [%v], disabling live update", err)
		return nil, fmt.Errorf("liveupdate: the incoming tree failed to initialize properly: %w", err)
	}
	return l, nil
}

// earlyStartup ports luo_core.c:luo_early_startup(). It runs at boot,
// before any task.
func (l *LUO) earlyStartup() error {
	if l.kho == nil || !l.kho.IsEnabled() {
		if l.enabled {
			l.log.printf("warn", "Disabling liveupdate because KHO is disabled")
		}
		l.enabled = false
		return nil
	}

	// Retrieve LUO subtree, and verify its format.
	fdtPhys, err := l.kho.RetrieveSubtree(FDTKHOEntryName)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		l.log.printf("err", "failed to retrieve FDT '%s' from KHO: %v", FDTKHOEntryName, err)
		return err
	}
	l.fdtIn = fdtPhys
	f, err := l.readIncomingFDT(fdtPhys)
	if err != nil {
		l.log.printf("err", "FDT '%s' is unreadable: %v", FDTKHOEntryName, err)
		return syscall.EINVAL
	}
	if err := f.NodeCheckCompatible(0, FDTCompatible); err != nil {
		l.log.printf("err", "FDT '%s' is incompatible with '%s' [%v]", FDTKHOEntryName, FDTCompatible, err)
		return syscall.EINVAL
	}
	ln, err := f.GetProp(0, FDTLiveupdateNum)
	if err != nil || len(ln) != 8 {
		l.log.printf("err", "Unable to get live update number '%s' [%d]", FDTLiveupdateNum, len(ln))
		return syscall.EINVAL
	}
	// Raw host-endian u64 (get_unaligned()), not an FDT cell.
	l.liveupdateNum = binary.LittleEndian.Uint64(ln)
	l.log.printf("info", "Retrieved live update data, liveupdate number: %d", l.liveupdateNum)

	if err := l.sessionSetupIncoming(f); err != nil {
		return err
	}
	return l.flbSetupIncoming(f)
}

// readIncomingFDT copies the incoming FDT at pa out of physical memory and
// validates it fully: it comes from the previous kernel and is untrusted.
func (l *LUO) readIncomingFDT(pa mm.PhysAddr) (*fdt.FDT, error) {
	if !l.kho.incoming(pa, FDTSize) {
		return nil, fmt.Errorf("FDT at %#x is not a preserved page", uint64(pa))
	}
	blob := make([]byte, FDTSize)
	if err := l.mem.readIncoming(pa, blob); err != nil {
		return nil, err
	}
	if err := fdt.Check(blob); err != nil {
		return nil, err
	}
	return fdt.Open(blob)
}

// LateInit ports the two late initcalls of luo_core.c, in their order:
// luo_late_startup() (build the outgoing FDT; on failure LUO is disabled)
// and liveupdate_ioctl_init() (register /dev/liveupdate if still enabled).
// Like any initcall's, its error is only worth a log line: the kernel keeps
// booting, without /dev/liveupdate.
func (l *LUO) LateInit() error {
	err := l.lateStartup()
	if ierr := l.ioctlInit(); err == nil {
		err = ierr
	}
	return err
}

// lateStartup ports luo_core.c:luo_late_startup().
func (l *LUO) lateStartup() error {
	if !l.Enabled() {
		return nil
	}
	if err := l.fdtSetup(); err != nil {
		l.enabled = false
		return err
	}
	return nil
}

// fdtSetup ports luo_core.c:luo_fdt_setup(): build the outgoing LUO FDT in
// preserved memory and register it with KHO as subtree "LUO". Unlike C,
// which ORs libfdt codes together, the first failure stops the build, and
// the session block is freed too if a later step fails.
func (l *LUO) fdtSetup() error {
	ln := l.liveupdateNum + 1

	fdtOut, err := l.kho.AllocPreserve(FDTSize)
	if err != nil {
		l.log.printf("err", "failed to allocate/preserve FDT memory")
		return err
	}
	buf := make([]byte, FDTSize)
	var lnBytes [8]byte
	binary.LittleEndian.PutUint64(lnBytes[:], ln)

	sessionBlock, flbBlock := mm.PhysAddr(0), mm.PhysAddr(0)
	err = func() error {
		w, err := fdt.Create(buf)
		if err != nil {
			return err
		}
		steps := []func() error{
			w.FinishReservemap,
			func() error { return w.BeginNode("") },
			func() error { return w.PropertyString("compatible", FDTCompatible) },
			func() error { return w.Property(FDTLiveupdateNum, lnBytes[:]) },
			func() error {
				pa, err := l.sessionSetupOutgoing(w)
				sessionBlock = pa
				return err
			},
			func() error {
				pa, err := l.flbSetupOutgoing(w)
				flbBlock = pa
				return err
			},
			w.EndNode,
			w.Finish,
		}
		for _, step := range steps {
			// Any step can fail (a libfdt error, an allocation): the
			// fault site stands for them all, before each step, so
			// that the unwind of every block set up so far is reached.
			if err := l.faults.Fail(fault.LUOFDTSetup); err != nil {
				return err
			}
			if err := step(); err != nil {
				return err
			}
		}
		return l.mem.Write(fdtOut, buf)
	}()
	if err == nil {
		err = l.kho.AddSubtree(FDTKHOEntryName, fdtOut)
	}
	if err != nil {
		l.sessions.outgoing.reset()
		l.flb.outgoing = flbHeader{}
		l.kho.UnpreserveFree(flbBlock)
		l.kho.UnpreserveFree(sessionBlock)
		l.kho.UnpreserveFree(fdtOut)
		l.log.printf("err", "failed to prepare LUO FDT: %v", err)
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			err = syscall.EINVAL // a libfdt code: meaningless to callers
		}
		return err
	}
	l.fdtOut = fdtOut
	return nil
}

// Reboot ports luo_core.c:liveupdate_reboot(): the final serialization,
// called from the kexec path; an error aborts the kexec and this kernel
// keeps running. On success the session subsystem stays frozen (the
// serialize rwsem is kept for write) until the kexec.
//
// Repair beyond 6.19: if kho_finalize() fails after a successful serialize,
// the serialization is undone (sessions unfrozen, the serialized image
// cleared, the rwsem released), so a retried reboot can succeed; the error
// is EAGAIN, hiding libfdt codes.
func (l *LUO) Reboot() error {
	if !l.Enabled() {
		return nil
	}
	if err := l.sessionSerialize(); err != nil {
		return err
	}
	l.flbSerialize()
	if err := l.kho.Finalize(); err != nil {
		l.log.printf("err", "kho_finalize failed %v", err)
		l.sessionUnserialize()
		return syscall.EAGAIN
	}
	return nil
}

// Retire releases the serialize rwsem that a successful Reboot kept for
// write, once the machine has jumped to the next kernel and retired this
// kernel's lock domain (Kernel.MarkDead). No C counterpart: the old kernel
// is simply overwritten, but in Go a lock held forever stays in go-deadlock's
// process-wide table of held locks and keeps this dead kernel reachable.
// The retired domain keeps any task from running on in this kernel.
//
// Requires: the caller ran the successful Reboot; the domain is retired.
func (l *LUO) Retire() {
	if !l.Enabled() || !l.serialized.Load() {
		return
	}
	l.serializeRwsem.UpWrite()
}

// Enabled ports liveupdate_enabled().
func (l *LUO) Enabled() bool { return l != nil && l.enabled }

// LiveupdateNumber is luo_global.liveupdate_num: how many live updates led
// to this kernel (0 after a cold boot).
func (l *LUO) LiveupdateNumber() uint64 { return l.liveupdateNum }

// Log returns LUO's recent kernel-log lines, oldest first.
func (l *LUO) Log() []string { return l.log.snapshot() }

// ioctlCreateSession ports luo_core.c:luo_ioctl_create_session().
//
// Requires: no LUO lock held.
func (l *LUO) ioctlCreateSession(ctx *vfs.Context, ucmd *luoUcmd) error {
	argp := DecodeSessionArg(ucmd.cmd)
	fd, err := ctx.FDs.GetUnusedFD(syscall.O_CLOEXEC)
	if err != nil {
		return err
	}
	argp.FD = int32(fd)
	file, err := l.sessionCreate(argp.Name)
	if err != nil {
		ctx.FDs.PutUnusedFD(fd)
		return err
	}
	argp.Encode(ucmd.cmd)
	if err := ucmd.respond(SessionArgSize); err != nil {
		// Dropping the only reference runs the session release (at
		// syscall exit): the brand-new session is removed and freed.
		ctx.Fput(file)
		ctx.FDs.PutUnusedFD(fd)
		return err
	}
	ctx.FDs.Install(fd, file)
	return nil
}

// ioctlRetrieveSession ports luo_core.c:luo_ioctl_retrieve_session().
//
// Requires: no LUO lock held.
func (l *LUO) ioctlRetrieveSession(ctx *vfs.Context, ucmd *luoUcmd) error {
	argp := DecodeSessionArg(ucmd.cmd)
	fd, err := ctx.FDs.GetUnusedFD(syscall.O_CLOEXEC)
	if err != nil {
		return err
	}
	argp.FD = int32(fd)
	file, err := l.sessionRetrieve(argp.Name)
	if err != nil {
		ctx.FDs.PutUnusedFD(fd)
		return err
	}
	argp.Encode(ucmd.cmd)
	if err := ucmd.respond(SessionArgSize); err != nil {
		// The session is retrieved now, so its release finishes it.
		ctx.Fput(file)
		ctx.FDs.PutUnusedFD(fd)
		return err
	}
	ctx.FDs.Install(fd, file)
	return nil
}

// open ports luo_core.c:luo_open(): exclusive open, then the lazy
// deserialization of the incoming sessions. A failed deserialization is
// cached, so every later open fails with EIO too.
func (l *LUO) open(*vfs.File) error {
	if !l.dev.inUse.CompareAndSwap(0, 1) {
		return syscall.EBUSY
	}
	if err := l.sessionDeserialize(); err != nil {
		l.dev.inUse.Store(0)
		return syscall.EIO
	}
	return nil
}

// release ports luo_core.c:luo_release().
func (l *LUO) release(*vfs.File) {
	l.dev.inUse.Store(0)
}

// luoIoctlOps ports luo_core.c's luo_ioctl_ops[], indexed by nr - CmdBase.
var luoIoctlOps = [...]struct {
	luoIoctlOp
	execute func(l *LUO, ctx *vfs.Context, ucmd *luoUcmd) error
}{
	CmdCreateSession - CmdBase: {
		luoIoctlOp{size: SessionArgSize, minSize: SessionArgOffName + SessionNameLength, ioctlNum: IoctlCreateSession},
		(*LUO).ioctlCreateSession,
	},
	CmdRetrieveSession - CmdBase: {
		luoIoctlOp{size: SessionArgSize, minSize: SessionArgOffName + SessionNameLength, ioctlNum: IoctlRetrieveSession},
		(*LUO).ioctlRetrieveSession,
	},
}

// ioctl ports luo_core.c:luo_ioctl(), the /dev/liveupdate dispatcher.
func (l *LUO) ioctl(ctx *vfs.Context, cmd uint32, arg usermem.Buffer) error {
	nr := ioctlNR(cmd)
	if nr-CmdBase >= uint32(len(luoIoctlOps)) {
		return syscall.EINVAL
	}
	ucmd := luoUcmd{ubuffer: arg}
	size, err := ucmdUserSize(arg)
	if err != nil {
		return err
	}
	ucmd.userSize = size
	op := &luoIoctlOps[nr-CmdBase]
	if op.ioctlNum != cmd {
		return vfs.ENOIOCTLCMD // ENOTTY for user space
	}
	if err := ucmdLoad(&op.luoIoctlOp, &ucmd); err != nil {
		return err
	}
	return op.execute(l, ctx, &ucmd)
}

// luoFops ports luo_core.c's luo_fops.
type luoFops struct {
	vfs.NoFileOperations
	l *LUO
}

func (o *luoFops) Release(f *vfs.File) { o.l.release(f) }

func (o *luoFops) Ioctl(ctx *vfs.Context, f *vfs.File, cmd uint32, arg usermem.Buffer) error {
	return o.l.ioctl(ctx, cmd, arg)
}

// ioctlInit ports luo_core.c:liveupdate_ioctl_init(): /dev/liveupdate
// exists only while LUO is enabled (which requires KHO).
func (l *LUO) ioctlInit() error {
	if !l.Enabled() {
		return nil
	}
	l.dev.miscdev = vfs.MiscDevice{
		Name: "liveupdate",
		Fops: &luoFops{l: l},
		Open: l.open,
	}
	if err := l.vfs.MiscRegister(&l.dev.miscdev); err != nil {
		return err
	}
	l.dev.registered = true
	return nil
}
