package liveupdate

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/fault"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/module"
)

// This file ports kernel/liveupdate/luo_flb.c (7.0, with the 7.1/7.2 fixes:
// locked lazy initialisation, M19; refcounted incoming data and
// liveupdate_flb_put_incoming(), M20; per-use module pins; automatic
// unregistration with the handler) in the 7.0 FDT hand-over form.
//
// DOC: LUO File Lifecycle Bound Global Data
//
// File-Lifecycle-Bound (FLB) objects manage global state shared by several
// preserved files, e.g. the IOMMU core state that every VFIO file needs.
// A file handler declares its dependency on an FLB with RegisterFLB. The
// FLB's state is preserved when the first file depending on it is
// preserved, and unpreserved (before a kexec) or finished (after one) when
// the last such file is unpreserved or finished:
//
//   - Preserve: first file preserved; saves the global state (data, obj).
//   - Unpreserve: last file unpreserved before reboot.
//   - Retrieve: on demand in the new kernel (FLBGetIncoming, or the last
//     finish); rebuilds obj from data.
//   - Finish: when the last reference to the incoming state is dropped
//     (the last file finished, or FLBPutIncoming).
//
// So the shared state is saved once and restored once, however many files
// depend on it. The outgoing count is the number of preserved files using
// the FLB; the incoming count starts at the number the previous kernel
// serialized and drops with every finished file, plus one per
// FLBGetIncoming until its FLBPutIncoming.
//
// Locking: the handler's FLB list, an FLB's users and the global list and
// count are guarded by luo_register_rwlock (write to change, read to
// walk); an FLB's outgoing and incoming state by their own mutexes,
// luo_flb_private.outgoing.lock and .incoming.lock, each taken with no
// other FLB lock held. The lazy initialisation of an FLB's private state
// uses a leaf lock (a spinlock in C).

// FLBOpArgs ports struct liveupdate_flb_op_args.
type FLBOpArgs struct {
	FLB *FLB
	// Data is the u64 handed over: set by Preserve, given to Retrieve.
	Data uint64
	// Obj is the live object: set by Preserve and Retrieve, given to
	// Unpreserve and Finish.
	Obj any
}

// FLBOps ports struct liveupdate_flb_ops. All four callbacks are required.
type FLBOps struct {
	Preserve   func(a *FLBOpArgs) error
	Unpreserve func(a *FLBOpArgs)
	Retrieve   func(a *FLBOpArgs) error
	Finish     func(a *FLBOpArgs)
	// Owner is the module that implements the ops (THIS_MODULE); nil for
	// built-in code. LUO pins it while the FLB's outgoing or incoming
	// state is live.
	Owner *module.Module
}

// FLB ports struct liveupdate_flb. Ops and Compatible are set by its
// owner before RegisterFLB and never change; the rest is LUO's.
type FLB struct {
	Ops *FLBOps
	// Compatible names the FLB in the hand-over: at most
	// FLBCompatLength-1 bytes, unique among registered FLBs.
	Compatible string

	private flbPrivate
}

// flbState ports struct luo_flb_private_state: one direction's state.
type flbState struct {
	// lock is luo_flb_private_state.lock; it guards every field below.
	lock locking.Mutex
	// count is the refcount_t count. luo_flb_serialize() reads the
	// outgoing one with refcount_read(), without the lock.
	count atomic.Int64
	data  uint64
	obj   any
	// retrieved and finished are the incoming state's flags.
	retrieved bool
	finished  bool
}

// flbPrivate ports struct luo_flb_private.
type flbPrivate struct {
	outgoing flbState
	incoming flbState
	// users is the number of handlers the FLB is linked to, and listed
	// whether it is on luo_flb_global.list; guarded by luo_register_rwlock.
	users  int
	listed bool
	// initialized is the acquire/release flag of the lazy init (M19).
	initialized atomic.Bool
}

// flbHeader ports struct luo_flb_header: where one direction's FLB block
// is. Set at boot, read-only afterwards.
type flbHeader struct {
	// headerSer is the PA of the luo_flb_header_ser page, 0 if none.
	headerSer mm.PhysAddr
	// entries is the incoming array, decoded and validated at boot.
	entries []FLBSer
	active  bool
}

// flbGlobal ports struct luo_flb_global.
type flbGlobal struct {
	incoming flbHeader
	outgoing flbHeader
	// list and count are the registered FLBs, in registration order;
	// guarded by luo_register_rwlock.
	list  []*FLB
	count int
}

// flbInit is the lazy-init lock of luo_flb_get_private() (a static
// spinlock in C, one per LUO here): a leaf, held for the few instructions
// of the initialisation.
type flbInit struct{ mu sync.Mutex }

// checkFLBOwner is every call into an FLB's ops and every read of its
// struct: like KASAN on the owner's module memory, it reports a
// use-after-free if the module that owns flb is gone.
func checkFLBOwner(flb *FLB, what string) {
	if o := flb.Ops.Owner; o != nil && o.State() == module.StateGone {
		o.Check("FLB " + flb.Compatible + " " + what)
	}
}

// flbGetPrivate ports luo_flb.c:luo_flb_get_private(): the FLB's private
// state, initialised on first use under the init lock, published with a
// release store and checked with an acquire load (M19).
func (l *LUO) flbGetPrivate(flb *FLB) *flbPrivate {
	p := &flb.private
	if p.initialized.Load() {
		return p
	}
	// A preemption point before the spinlock: the first users of an FLB
	// can meet here, which is the race the lock closes (M19).
	l.dom.Yield(locking.PointPhase)
	l.flbInitLock.mu.Lock()
	defer l.flbInitLock.mu.Unlock()
	if !p.initialized.Load() {
		p.incoming.lock.Init(l.dom, "luo_flb_private.incoming.lock")
		p.outgoing.lock.Init(l.dom, "luo_flb_private.outgoing.lock")
		p.listed = false
		p.users = 0
		p.initialized.Store(true)
	}
	return p
}

// flbFilePreserveOne ports luo_flb.c:luo_flb_file_preserve_one(): the
// first file pins the owner (ENODEV if it is going) and runs Preserve;
// every file counts.
//
// Takes the FLB's outgoing lock.
func (l *LUO) flbFilePreserveOne(flb *FLB) error {
	p := l.flbGetPrivate(flb)
	p.outgoing.lock.Lock()
	defer p.outgoing.lock.Unlock()
	if p.outgoing.count.Load() == 0 {
		checkFLBOwner(flb, ".owner")
		if !module.TryGet(flb.Ops.Owner) {
			return syscall.ENODEV
		}
		args := FLBOpArgs{FLB: flb}
		// The fault site stands for the FLB's preserve() failing; the
		// FLB is then not called.
		err := l.faults.Fail(fault.FLBPreserve)
		if err == nil {
			l.mightSleep()
			err = l.callFLBPreserve(flb, &args)
		}
		if err != nil {
			module.Put(flb.Ops.Owner)
			return toErrno(err)
		}
		p.outgoing.data = args.Data
		p.outgoing.obj = args.Obj
		p.outgoing.count.Store(1)
		return nil
	}
	l.refcountInc(&p.outgoing.count, flb)
	return nil
}

// flbFileUnpreserveOne ports luo_flb.c:luo_flb_file_unpreserve_one(): the
// last file runs Unpreserve, clears the state and drops the owner's pin.
//
// Takes the FLB's outgoing lock.
func (l *LUO) flbFileUnpreserveOne(flb *FLB) {
	p := l.flbGetPrivate(flb)
	p.outgoing.lock.Lock()
	defer p.outgoing.lock.Unlock()
	if !l.refcountDecAndTest(&p.outgoing.count, flb) {
		return
	}
	args := FLBOpArgs{FLB: flb, Data: p.outgoing.data, Obj: p.outgoing.obj}
	l.mightSleep()
	l.callFLBUnpreserve(flb, &args)
	p.outgoing.data = 0
	p.outgoing.obj = nil
	module.Put(flb.Ops.Owner)
}

// flbRetrieveOneLocked ports luo_flb.c:luo_flb_retrieve_one(): ENODATA
// once finished, nothing to do once retrieved, ENODATA without incoming FLB
// data, ENOENT if the previous kernel did not serialize this FLB, ENODEV if
// its owner is going; otherwise the count and data are loaded, the owner
// is pinned, and Retrieve builds the object. A failed Retrieve drops the
// pin and can be retried.
//
// Requires: the FLB's incoming lock held (asserted: upstream's
// lockdep_assert_held(&private->incoming.lock)).
func (l *LUO) flbRetrieveOneLocked(flb *FLB) error {
	p := l.flbGetPrivate(flb)
	p.incoming.lock.AssertHeld()
	if p.incoming.finished {
		return syscall.ENODATA
	}
	if p.incoming.retrieved {
		return nil
	}
	fh := &l.flb.incoming
	if !fh.active {
		return syscall.ENODATA
	}
	found := false
	checkFLBOwner(flb, ".compatible")
	for _, e := range fh.entries {
		if name, ok := cString(e.Name[:]); ok && name == flb.Compatible {
			p.incoming.data = e.Data
			p.incoming.count.Store(int64(e.Count))
			found = true
			break
		}
	}
	if !found {
		return syscall.ENOENT
	}
	if !module.TryGet(flb.Ops.Owner) {
		return syscall.ENODEV
	}
	args := FLBOpArgs{FLB: flb, Data: p.incoming.data}
	// The fault site stands for the FLB's retrieve() failing before it
	// consumed anything; the FLB is then not called.
	err := l.faults.Fail(fault.FLBRetrieve)
	if err == nil {
		l.mightSleep()
		err = l.callFLBRetrieve(flb, &args)
	}
	if err != nil {
		module.Put(flb.Ops.Owner)
		return toErrno(err)
	}
	p.incoming.obj = args.Obj
	p.incoming.retrieved = true
	return nil
}

// FLBPutIncoming ports luo_flb.c:liveupdate_flb_put_incoming(): drop one
// reference to the incoming state (taken by FLBGetIncoming, or one of the
// serialized files). The last one retrieves the state if nobody did,
// runs Finish, clears the state, marks it finished and drops the owner's
// pin, all under the incoming lock, so no FLBGetIncoming can see it
// half-finished (M20).
//
// Requires: no FLB lock held. Takes the FLB's incoming lock.
func (l *LUO) FLBPutIncoming(flb *FLB) {
	p := l.flbGetPrivate(flb)
	p.incoming.lock.Lock()
	defer p.incoming.lock.Unlock()
	if !l.refcountDecAndTest(&p.incoming.count, flb) {
		return
	}
	if !p.incoming.retrieved {
		err := l.flbRetrieveOneLocked(flb)
		if l.rep.WarnOn(err != nil, "liveupdate: FLB %s: retrieve for finish failed: %v", flb.Compatible, err) {
			return
		}
	}
	args := FLBOpArgs{FLB: flb, Obj: p.incoming.obj}
	l.mightSleep()
	l.callFLBFinish(flb, &args)
	p.incoming.data = 0
	p.incoming.obj = nil
	p.incoming.finished = true
	module.Put(flb.Ops.Owner)
}

// refcountInc ports refcount_inc(): an increment from zero is a
// use-after-free WARN and leaves the count alone (saturation).
func (l *LUO) refcountInc(c *atomic.Int64, flb *FLB) {
	if c.Load() <= 0 {
		l.rep.WarnOn(true, "refcount_t: addition on 0; use-after-free (FLB %s)", flb.Compatible)
		return
	}
	c.Add(1)
}

// refcountDecAndTest ports refcount_dec_and_test(): true when the count
// drops to zero; a decrement of a zero count is an underflow WARN and
// returns false.
func (l *LUO) refcountDecAndTest(c *atomic.Int64, flb *FLB) bool {
	if c.Load() <= 0 {
		l.rep.WarnOn(true, "refcount_t: underflow; use-after-free (FLB %s)", flb.Compatible)
		return false
	}
	return c.Add(-1) == 0
}

// flbFilePreserve ports luo_flb.c:luo_flb_file_preserve(): count one more
// file for every FLB of reg, in registration order, running Preserve for
// the first; atomic: if one fails, those done are undone in reverse.
//
// Requires: the session mutex held. Takes luo_register_rwlock for read.
func (l *LUO) flbFilePreserve(reg *registeredHandler) error {
	l.registerRwsem.DownRead()
	defer l.registerRwsem.UpRead()
	flbs := l.handlerFLBs(reg)
	for i, flb := range flbs {
		if err := l.flbFilePreserveOne(flb); err != nil {
			for i--; i >= 0; i-- {
				l.flbFileUnpreserveOne(flbs[i])
			}
			return err
		}
	}
	return nil
}

// flbFileUnpreserve ports luo_flb.c:luo_flb_file_unpreserve(): count one
// file less for every FLB of reg, newest first; the last runs Unpreserve.
//
// Requires: the session mutex held. Takes luo_register_rwlock for read.
func (l *LUO) flbFileUnpreserve(reg *registeredHandler) {
	l.registerRwsem.DownRead()
	defer l.registerRwsem.UpRead()
	flbs := l.handlerFLBs(reg)
	for i := len(flbs) - 1; i >= 0; i-- {
		l.flbFileUnpreserveOne(flbs[i])
	}
}

// flbFileFinish ports luo_flb.c:luo_flb_file_finish(): a finished file
// drops its reference to the incoming state of every FLB of reg, newest
// first.
//
// Requires: the session mutex and the luo_file mutex held. Takes
// luo_register_rwlock for read.
func (l *LUO) flbFileFinish(reg *registeredHandler) {
	l.registerRwsem.DownRead()
	defer l.registerRwsem.UpRead()
	flbs := l.handlerFLBs(reg)
	for i := len(flbs) - 1; i >= 0; i-- {
		l.FLBPutIncoming(flbs[i])
	}
}

// flbUnregisterOneLocked ports luo_flb.c:luo_flb_unregister_one(): unlink
// flb from reg; the last handler unlists it.
//
// Requires: luo_register_rwlock held for write (asserted; instrumentation:
// both upstream callers hold it, luo_flb_unregister_one() does not assert
// it).
func (l *LUO) flbUnregisterOneLocked(reg *registeredHandler, flb *FLB) {
	l.registerRwsem.AssertHeldWrite()
	p := l.flbGetPrivate(flb)
	found := false
	for i, it := range l.handlerFLBs(reg) {
		if it == flb {
			reg.flbs = append(reg.flbs[:i:i], reg.flbs[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		l.log.printf("warn", "Failed to unregister FLB '%s': not found in file handler '%s'", flb.Compatible, reg.fh.Compatible)
		return
	}
	p.users--
	if p.users == 0 {
		for i, it := range l.flbList() {
			if it == flb {
				l.flb.list = append(l.flb.list[:i:i], l.flb.list[i+1:]...)
				break
			}
		}
		p.listed = false
		l.flb.count--
	}
}

// flbUnregisterAllLocked ports luo_flb.c:luo_flb_unregister_all(): unlink
// every FLB of reg (the handler is being unregistered).
//
// Requires: luo_register_rwlock held for write (asserted: upstream's
// lockdep_assert_held_write(&luo_register_rwlock)).
func (l *LUO) flbUnregisterAllLocked(reg *registeredHandler) {
	if !l.Enabled() {
		return
	}
	l.registerRwsem.AssertHeldWrite()
	for len(l.handlerFLBs(reg)) > 0 {
		l.flbUnregisterOneLocked(reg, reg.flbs[0])
	}
}

// handlerFLBs returns reg's flb_list, and flbList luo_flb_global.list.
// Both are guarded by luo_register_rwlock: every walk asserts it held, as
// handlerList() does for the handler list (instrumentation: luo_flb.c's
// walks hold the rwsem but do not assert it), so that a walk without the
// lock is reported even when no registration races it.
//
// Requires: l.registerRwsem held, for read or write.
func (l *LUO) handlerFLBs(reg *registeredHandler) []*FLB {
	l.registerRwsem.AssertHeld()
	return reg.flbs
}

// flbList: see handlerFLBs.
func (l *LUO) flbList() []*FLB {
	l.registerRwsem.AssertHeld()
	return l.flb.list
}

// findHandlerLocked is the registry entry of fh, nil if fh is not
// registered (list_empty(&fh->list) in C).
//
// Requires: luo_register_rwlock held (asserted by handlerList()).
func (l *LUO) findHandlerLocked(fh *FileHandler) *registeredHandler {
	for _, r := range l.handlerList() {
		if r.fh == fh {
			return r
		}
	}
	return nil
}

// RegisterFLB ports luo_flb.c:liveupdate_register_flb(): make fh depend on
// flb; the first handler also lists flb globally. Errors, in order:
// EOPNOTSUPP (LUO disabled); EINVAL with a WARN for a missing op or an
// unregistered handler; EINVAL for a compatible that does not fit; then,
// under luo_register_rwlock (write): EEXIST if flb is linked to fh
// already, and on first registration ENOSPC at FLBMax FLBs and EEXIST for
// a compatible in use. The owner module is not pinned here: it is pinned
// while the FLB's state is live.
func (l *LUO) RegisterFLB(fh *FileHandler, flb *FLB) error {
	if !l.Enabled() {
		return syscall.EOPNOTSUPP
	}
	if l.rep.WarnOn(fh == nil || flb == nil || flb.Ops == nil, "liveupdate: RegisterFLB of a nil handler or FLB") {
		return syscall.EINVAL
	}
	p := l.flbGetPrivate(flb)
	ops := flb.Ops
	if l.rep.WarnOn(ops.Preserve == nil || ops.Unpreserve == nil || ops.Retrieve == nil || ops.Finish == nil,
		"liveupdate: FLB %s lacks a required op", flb.Compatible) {
		return syscall.EINVAL
	}
	if len(flb.Compatible) > FLBCompatLength-1 || bytes.IndexByte([]byte(flb.Compatible), 0) >= 0 {
		return syscall.EINVAL // does not fit char compatible[48]
	}

	l.registerRwsem.DownWrite()
	defer l.registerRwsem.UpWrite()
	// The handler must be registered already: that initialises its FLB
	// list.
	reg := l.findHandlerLocked(fh)
	if l.rep.WarnOn(reg == nil, "liveupdate: RegisterFLB %s with an unregistered handler", flb.Compatible) {
		return syscall.EINVAL
	}
	for _, it := range l.handlerFLBs(reg) {
		if it == flb {
			return syscall.EEXIST
		}
	}
	if p.users == 0 {
		if l.rep.WarnOn(p.listed, "liveupdate: FLB %s listed without users", flb.Compatible) {
			return syscall.EINVAL
		}
		if l.flb.count == FLBMax {
			return syscall.ENOSPC
		}
		for _, g := range l.flbList() {
			if g.Compatible == flb.Compatible {
				return syscall.EEXIST
			}
		}
		l.flb.list = append(l.flb.list, flb)
		p.listed = true
		l.flb.count++
	}
	p.users++
	reg.flbs = append(reg.flbs, flb)
	return nil
}

// UnregisterFLB ports luo_flb.c:liveupdate_unregister_flb(): remove fh's
// dependency on flb (a logged warning if there is none); the last handler
// unlists it. Unregistering fh removes all of its FLBs too.
func (l *LUO) UnregisterFLB(fh *FileHandler, flb *FLB) {
	if !l.Enabled() {
		return
	}
	l.registerRwsem.DownWrite()
	defer l.registerRwsem.UpWrite()
	reg := l.findHandlerLocked(fh)
	if reg == nil {
		l.log.printf("warn", "Failed to unregister FLB '%s': file handler '%s' is not registered", flb.Compatible, fh.Compatible)
		return
	}
	l.flbUnregisterOneLocked(reg, flb)
}

// FLBGetIncoming ports luo_flb.c:liveupdate_flb_get_incoming(): the
// incoming object, retrieved on first use, with a reference the caller
// drops with FLBPutIncoming. Errors: EOPNOTSUPP (LUO disabled), and those
// of the retrieval: ENODATA (no incoming FLB data, or finished already),
// ENOENT (not handed over), ENODEV (owner going), or Retrieve's error.
//
// Requires: no FLB lock held. Takes the FLB's incoming lock for the whole
// call (M20).
func (l *LUO) FLBGetIncoming(flb *FLB) (any, error) {
	p := l.flbGetPrivate(flb)
	if !l.Enabled() {
		return nil, syscall.EOPNOTSUPP
	}
	p.incoming.lock.Lock()
	defer p.incoming.lock.Unlock()
	if p.incoming.obj == nil {
		if err := l.flbRetrieveOneLocked(flb); err != nil {
			return nil, err
		}
	}
	l.refcountInc(&p.incoming.count, flb)
	return p.incoming.obj, nil
}

// FLBGetOutgoing ports luo_flb.c:liveupdate_flb_get_outgoing(): the
// outgoing object (nil while no file using the FLB is preserved).
// EOPNOTSUPP when LUO is disabled.
//
// Requires: no FLB lock held. Takes the FLB's outgoing lock.
func (l *LUO) FLBGetOutgoing(flb *FLB) (any, error) {
	p := l.flbGetPrivate(flb)
	if !l.Enabled() {
		return nil, syscall.EOPNOTSUPP
	}
	p.outgoing.lock.Lock()
	defer p.outgoing.lock.Unlock()
	return p.outgoing.obj, nil
}

// flbSetupOutgoing ports luo_flb.c:luo_flb_setup_outgoing(): the zeroed,
// preserved one-page FLB block (header pgcnt = 1) and the "luo-flb" node
// pointing at it. It returns the block's PA.
//
// Requires: boot time (no concurrency).
func (l *LUO) flbSetupOutgoing(w *fdt.Writer) (mm.PhysAddr, error) {
	headerSer, err := l.kho.AllocPreserve(FLBBlockSize)
	if err != nil {
		return 0, err
	}
	var pa [8]byte
	binary.LittleEndian.PutUint64(pa[:], uint64(headerSer))
	err = w.BeginNode(FDTFLBNodeName)
	if err == nil {
		err = w.PropertyString("compatible", FDTFLBCompatible)
	}
	if err == nil {
		err = w.Property(FDTFLBHeader, pa[:])
	}
	if err == nil {
		err = w.EndNode()
	}
	if err == nil {
		var hb [FLBHeaderSerSize]byte
		(&FLBHeaderSer{Pgcnt: FLBPgcnt}).Encode(hb[:])
		err = l.mem.Write(headerSer, hb[:])
	}
	if err != nil {
		l.kho.UnpreserveFree(headerSer)
		return 0, err
	}
	l.flb.outgoing = flbHeader{headerSer: headerSer, active: true}
	return headerSer, nil
}

// flbSetupIncoming ports luo_flb.c:luo_flb_setup_incoming(): find the
// "luo-flb" node (ENOENT without it), check "luo-flb-v1" and read the
// block's PA (EINVAL). The port also reads and checks the block here, as
// it is untrusted: it must be a page the previous kernel preserved, with
// pgcnt 1, at most FLBMax entries and no entry with count 0 (EINVAL);
// unterminated names are kept but never match.
//
// Requires: boot time (no concurrency).
func (l *LUO) flbSetupIncoming(f *fdt.FDT) error {
	offset, err := f.SubnodeOffset(0, FDTFLBNodeName)
	if err != nil {
		l.log.printf("err", "Unable to get FLB node [%s]", FDTFLBNodeName)
		return syscall.ENOENT
	}
	if err := f.NodeCheckCompatible(offset, FDTFLBCompatible); err != nil {
		l.log.printf("err", "FLB node is incompatible with '%s' [%v]", FDTFLBCompatible, err)
		return syscall.EINVAL
	}
	ptr, err := f.GetProp(offset, FDTFLBHeader)
	if err != nil || len(ptr) != 8 {
		l.log.printf("err", "Unable to get FLB header property '%s' [%d]", FDTFLBHeader, len(ptr))
		return syscall.EINVAL
	}
	headerSer := mm.PhysAddr(binary.LittleEndian.Uint64(ptr))
	if !l.kho.incoming(headerSer, FLBBlockSize) {
		l.log.printf("err", "FLB header %#x is not a preserved block", uint64(headerSer))
		return syscall.EINVAL
	}
	buf := make([]byte, FLBBlockSize)
	if err := l.mem.readIncoming(headerSer, buf); err != nil {
		l.log.printf("err", "Failed to read FLB block %#x: %v", uint64(headerSer), err)
		return syscall.EINVAL
	}
	hdr := DecodeFLBHeaderSer(buf)
	if hdr.Pgcnt != FLBPgcnt || hdr.Count > FLBMax {
		l.log.printf("err", "FLB block has pgcnt %d and count %d", hdr.Pgcnt, hdr.Count)
		return syscall.EINVAL
	}
	entries := make([]FLBSer, hdr.Count)
	for i := range entries {
		entries[i] = DecodeFLBSer(buf[FLBHeaderSerSize+i*FLBSerSize:])
		if entries[i].Count == 0 {
			// luo_flb_serialize() writes only FLBs in use.
			l.log.printf("err", "FLB entry %d has count 0", i)
			return syscall.EINVAL
		}
	}
	l.flb.incoming = flbHeader{headerSer: headerSer, entries: entries, active: true}
	return nil
}

// flbSerialize ports luo_flb.c:luo_flb_serialize(): write every FLB with
// preserved files (name, data, count) into the outgoing block, then the
// header count. Called from the reboot path after the sessions are
// serialized (the serialize rwsem keeps every session mutator out), just
// before kho_finalize().
//
// Takes luo_register_rwlock for read.
func (l *LUO) flbSerialize() {
	fh := &l.flb.outgoing
	if !fh.active {
		return
	}
	l.registerRwsem.DownRead()
	defer l.registerRwsem.UpRead()
	i := 0
	var b [FLBSerSize]byte
	for _, g := range l.flbList() {
		p := l.flbGetPrivate(g)
		count := p.outgoing.count.Load()
		if count <= 0 {
			continue
		}
		checkFLBOwner(g, ".compatible")
		ser := FLBSer{Data: p.outgoing.data, Count: uint64(count)}
		copy(ser.Name[:FLBCompatLength-1], g.Compatible) // strscpy()
		ser.Encode(b[:])
		err := l.mem.Write(flbSerPA(fh.headerSer, i), b[:])
		l.rep.WarnOn(err != nil, "liveupdate: cannot write FLB entry %d: %v", i, err)
		i++
	}
	var hb [FLBHeaderSerSize]byte
	(&FLBHeaderSer{Pgcnt: FLBPgcnt, Count: uint64(i)}).Encode(hb[:])
	err := l.mem.Write(fh.headerSer, hb[:])
	l.rep.WarnOn(err != nil, "liveupdate: cannot write FLB header: %v", err)
}
