package proptest

import (
	"errors"
	"fmt"
	"strings"

	"luomodel/kernel"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/kernel/mm/memfdluo"
	"luomodel/machine"
	"luomodel/model"
	"luomodel/proptest/account"
)

// This file holds the campaign's hostile hand-overs and the memfd
// handler's registration churn (issue 17).
//
// A hostile hand-over is a kexec after which, between the two kernels,
// the outgoing LUO data in physical memory is corrupted in one structured
// way (model.HostileKind) through machine.KexecWith's hook. The model
// predicts the kexec's result and, at the first open of /dev/liveupdate,
// which check of the deserialization fails (every open is then EIO) and
// what stays listed; the invariants, the reports (use-after-free,
// KASAN-like, lockdep, WARN) and the end-of-check ledger watch the new
// kernel. A boot the model predicts to panic (a truncated LUO FDT) is
// followed by a cold boot of a fresh machine.

// hostileWeight is the hostile hand-over's weight where it applies,
// hostileFilesWeight where files are preserved (most kinds need them).
const (
	hostileWeight      = 6
	hostileFilesWeight = 24
)

// maxHostileBuild bounds the steps a hostile action takes toward its
// kind's precondition: a memfd made, written and preserved, twice, and a
// session created.
const maxHostileBuild = 8

// ExecHostile live-updates the machine with h applied to the hand-over
// between the kernels, and in lockstep mode predicts it with the model.
// A predicted boot failure is checked, then the machine is powered on
// again (machine.New; the model's ColdBoot). A disagreement is a
// *Mismatch.
func (e *Env) ExecHostile(h model.Hostile) (model.Result, error) {
	op := model.Op{Kind: model.OpKexec}
	before := e.M.Kernel()
	var mr model.Result
	if e.lockstep {
		mr = e.S.KexecHostile(h)
	}
	var hookErr error
	var orphan mm.PhysAddr
	err := e.M.KexecWith(func(ram *mm.RAM, root mm.PhysAddr) error {
		orphan, hookErr = corruptHandover(ram, root, h)
		return hookErr
	})
	if hookErr != nil {
		return model.Result{}, fmt.Errorf("hostile hand-over %s: %w", h, hookErr)
	}
	pr := model.Result{}
	var raw error
	if err != nil {
		pr.Errno, raw = toErrno(err)
		if raw != nil {
			pr.Errno = errnoUnknown
		}
	}
	e.trace = append(e.trace, traceEntry{note: "[hostile " + h.String() + "]", op: op, res: pr})
	if e.lockstep && !pr.Equal(mr) {
		return pr, &Mismatch{Op: op, Port: pr, Model: mr, Err: err}
	}
	// The old kernel's callbacks (freeze of test files) as Exec checks
	// them; after a panic there is no new kernel to ask, and the
	// machine is replaced.
	if e.M.Kernel() != nil {
		if err := e.checkCalls(before, op, pr); err != nil {
			return pr, err
		}
	} else {
		takeCalls(before)
		if e.calls != nil {
			e.calls.Take()
		}
	}
	if orphan != 0 && e.M.Kernel() != nil {
		e.excuse = excuse{kernel: e.M.Kernel(), pa: orphan,
			why: "folio whose only reference a hostile hand-over rewrote: nothing can restore it, reserved for good"}
	}
	if errors.Is(err, machine.ErrKernelPanic) {
		m, err := machine.New(e.machineConfig())
		if err != nil {
			return pr, err
		}
		e.M = m
		e.S.ColdBoot()
		e.trace[len(e.trace)-1].note += " (the new kernel panics; the machine is powered on again)"
	}
	return pr, nil
}

// excuse is a preserved block that the ledger of one kernel accepts for
// a reason the checker knows and the ledger cannot see from the kernel.
type excuse struct {
	kernel *kernel.Kernel
	pa     mm.PhysAddr
	why    string
}

// ledger is account.Take of the running kernel, with its excuse applied.
func (e *Env) ledger() *account.Ledger {
	led := account.Take(e.M)
	if x := e.excuse; x.kernel != nil && x.kernel == e.M.Kernel() {
		led.Excuse(x.pa, x.why)
	}
	return led
}

// CorruptHandover applies h to the LUO data of the hand-over whose KHO
// root FDT is at root, in ram: the port's side of model.Hostile.
func CorruptHandover(ram *mm.RAM, root mm.PhysAddr, h model.Hostile) error {
	_, err := corruptHandover(ram, root, h)
	return err
}

// corruptHandover is CorruptHandover; it also returns the block that the
// corruption left without a reference (a folio whose entry it rewrote),
// or 0.
func corruptHandover(ram *mm.RAM, root mm.PhysAddr, h model.Hostile) (mm.PhysAddr, error) {
	img, err := liveupdate.LocateHandover(ram, root)
	if err != nil {
		return 0, err
	}
	switch h.Kind {
	case model.HostileFolioNotPreserved, model.HostileMemfdCount:
		f, err := img.File(h.Session, h.File)
		if err != nil {
			return 0, err
		}
		if h.Kind == model.HostileMemfdCount {
			fa, err := memfdluo.LocateFolios(ram, mm.PhysAddr(f.Data))
			if err != nil {
				return 0, err
			}
			return 0, fa.SetNrFolios(mm.PhysAddr(f.Data), fa.Capacity()+1)
		}
		return corruptFolio(ram, mm.PhysAddr(f.Data), h)
	}
	return 0, corruptLUO(ram, img, h)
}

// corruptFolio rewrites entry h.Folio of the folio array of the memfd
// whose struct memfd_luo_ser is at serPA, and returns the folio it named.
func corruptFolio(ram *mm.RAM, serPA mm.PhysAddr, h model.Hostile) (mm.PhysAddr, error) {
	fa, err := memfdluo.LocateFolios(ram, serPA)
	if err != nil {
		return 0, err
	}
	e, err := fa.Folio(uint64(h.Folio))
	if err != nil {
		return 0, err
	}
	orphan := e.PFN.Addr()
	e.PFN = mm.PhysAddr(ram.Size()).PFN() // past memory
	if h.FolioFrom >= 0 {
		from, err := fa.Folio(uint64(h.FolioFrom))
		if err != nil {
			return 0, err
		}
		e.PFN = from.PFN
	}
	return orphan, fa.SetFolio(uint64(h.Folio), e)
}

// corruptLUO applies h, a corruption of LUO's own data, to img.
func corruptLUO(ram *mm.RAM, img *liveupdate.HandoverImage, h model.Hostile) error {
	session := func(i int, edit func(*liveupdate.SessionSer)) error {
		s, err := img.Session(i)
		if err != nil {
			return err
		}
		edit(&s)
		return img.SetSession(i, s)
	}
	file := func(j int, edit func(*liveupdate.FileSer)) error {
		f, err := img.File(h.Session, j)
		if err != nil {
			return err
		}
		edit(&f)
		return img.SetFile(h.Session, j, f)
	}
	switch h.Kind {
	case model.HostileDupName:
		other, err := img.Session(h.Other)
		if err != nil {
			return err
		}
		return session(h.Session, func(s *liveupdate.SessionSer) { s.Name = other.Name })
	case model.HostileEmptyName:
		return img.SetSessionName(h.Session, "")
	case model.HostileUnterminatedName:
		return img.SetSessionName(h.Session, strings.Repeat("x", liveupdate.SessionNameLength))
	case model.HostileCountPast:
		n, err := img.Count()
		if err != nil {
			return err
		}
		for i := int(n); i < int(min(h.N, liveupdate.SessionMax)); i++ {
			if err := img.SetSession(i, liveupdate.SessionSer{}); err != nil {
				return err
			}
		}
		return img.SetCount(h.N)
	case model.HostileDupToken:
		other, err := img.File(h.Session, h.OtherFile)
		if err != nil {
			return err
		}
		return file(h.File, func(f *liveupdate.FileSer) { f.Token = other.Token })
	case model.HostileFileCountPast:
		s, err := img.Session(h.Session)
		if err != nil {
			return err
		}
		for j := int(s.FileSetSer.Count); j < int(min(h.N, liveupdate.FileMax)); j++ {
			if err := img.SetFile(h.Session, j, liveupdate.FileSer{}); err != nil {
				return err
			}
		}
		return session(h.Session, func(s *liveupdate.SessionSer) { s.FileSetSer.Count = h.N })
	case model.HostileFileCountNoArray:
		return session(h.Session, func(s *liveupdate.SessionSer) { s.FileSetSer.Count = h.N })
	case model.HostileArrayOutside:
		return session(h.Session, func(s *liveupdate.SessionSer) { s.FileSetSer.Files = ram.Size() })
	case model.HostileArrayOverlap:
		return session(h.Session, func(s *liveupdate.SessionSer) { s.FileSetSer.Files = uint64(img.SessionPA(0)) })
	case model.HostileUnknownCompat:
		return file(h.File, func(f *liveupdate.FileSer) {
			f.Compatible = [liveupdate.HandlerCompatLength]byte{}
			copy(f.Compatible[:], model.HostileCompatible)
		})
	case model.HostileUnterminatedCompat:
		return file(h.File, func(f *liveupdate.FileSer) {
			copy(f.Compatible[:], strings.Repeat("c", liveupdate.HandlerCompatLength))
		})
	case model.HostileNoSubtree:
		return img.HideSubtree()
	case model.HostileTruncatedSubtree:
		return img.TruncateFDT(8)
	}
	return fmt.Errorf("unknown corruption %v", h.Kind)
}

// drawHostileKind draws the kind of a hostile hand-over, every kind
// equally likely, whether or not it fits the outgoing sessions: the
// hostile action builds toward the kinds that do not (buildForHostile),
// so that kinds with rare preconditions (two files in a session, two
// sessions, one without files) are reached as often as the others rather
// than only when the rest of the campaign happens to leave such a state.
func drawHostileKind(c *Ctx) model.HostileKind {
	kinds := model.HostileKinds()
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	return kinds[choose(c.Src, names, c.Src.Intn(len(kinds), "hostile kind"), func(int) bool { return true })]
}

// drawHostile draws where a corruption of kind k applies to the outgoing
// sessions of s (the indices of that kind only: few draws, quick
// shrinking); false if k does not fit them.
func drawHostile(c *Ctx, kind model.HostileKind) (model.Hostile, bool) {
	s := c.S
	n := len(s.Outgoing)
	files := func(i int) int { return len(s.Sessions[s.Outgoing[i]].Out) }
	// memfds are the files of session i with folios to corrupt.
	memfds := func(i int) []int {
		var out []int
		for j := range files(i) {
			if s.MemfdFolios(s.Outgoing[i], j) > 0 {
				out = append(out, j)
			}
		}
		return out
	}
	// where draws the entries h's kind names, preferring (when prefer
	// is not nil) a session that suits it.
	where := func(h model.Hostile, prefer func(i int) bool) model.Hostile {
		if n == 0 {
			return h
		}
		var good []int
		for i := range n {
			if prefer == nil || prefer(i) {
				good = append(good, i)
			}
		}
		if len(good) == 0 {
			return h
		}
		h.Session = pick(c.Src, "hostile session", good)
		h.Other = c.Src.Intn(max(h.Session, 1), "hostile other session")
		if f := files(h.Session); f > 0 {
			h.File = c.Src.Intn(f, "hostile file")
			h.OtherFile = c.Src.Intn(max(h.File, 1), "hostile other file")
		}
		return h
	}
	h := model.Hostile{Kind: kind}
	switch kind {
	case model.HostileDupName:
		h.Session, h.Other = 1, 0
	case model.HostileCountPast:
		h.N = uint64(n) + 1
	case model.HostileDupToken:
		for i := range n {
			if files(i) > 1 {
				h.Session, h.File, h.OtherFile = i, 1, 0
			}
		}
	case model.HostileFileCountPast, model.HostileArrayOutside, model.HostileArrayOverlap,
		model.HostileUnknownCompat, model.HostileUnterminatedCompat:
		for i := range n {
			if files(i) > 0 {
				h.Session, h.N = i, uint64(files(i))+1
			}
		}
	case model.HostileFileCountNoArray:
		for i := range n {
			if files(i) == 0 {
				h.Session, h.N = i, 1
			}
		}
	case model.HostileFolioNotPreserved, model.HostileMemfdCount:
		h.FolioFrom = -1
		for i := range n {
			if len(memfds(i)) > 0 {
				h.Session, h.File = i, memfds(i)[0]
			}
		}
	}
	if !s.HostileApplies(h) {
		return model.Hostile{}, false
	}
	h = model.Hostile{Kind: kind}
	switch h.Kind {
	case model.HostileDupName:
		h = where(h, func(i int) bool { return i > 0 })
	case model.HostileEmptyName, model.HostileUnterminatedName:
		h = where(h, nil)
	case model.HostileCountPast:
		h.N = uint64(n) + 1 + uint64(c.Src.Intn(2, "extra entries"))
		if chance(c.Src, "count past the block", 25) {
			h.N = model.SessionMax + 1
		}
	case model.HostileDupToken:
		h = where(h, func(i int) bool { return files(i) > 1 })
		h.File = max(h.File, 1)
	case model.HostileFileCountPast, model.HostileArrayOutside, model.HostileArrayOverlap,
		model.HostileUnknownCompat, model.HostileUnterminatedCompat:
		h = where(h, func(i int) bool { return files(i) > 0 })
		h.N = uint64(files(h.Session)) + 1
		if h.Kind == model.HostileFileCountPast && chance(c.Src, "file count past the array", 25) {
			h.N = model.FileMax + 1
		}
	case model.HostileFileCountNoArray:
		h = where(h, func(i int) bool { return files(i) == 0 })
		h.N = 1
	case model.HostileMemfdCount:
		h = where(h, func(i int) bool { return len(memfds(i)) > 0 })
		h.File = pick(c.Src, "hostile memfd", memfds(h.Session))
	case model.HostileFolioNotPreserved:
		h = where(h, func(i int) bool { return len(memfds(i)) > 0 })
		h.File = pick(c.Src, "hostile memfd", memfds(h.Session))
		h.Folio = c.Src.Intn(s.MemfdFolios(s.Outgoing[h.Session], h.File), "hostile folio")
		h.FolioFrom = -1
		if h.Folio > 0 && chance(c.Src, "folio from an earlier entry", 50) {
			h.FolioFrom = c.Src.Intn(h.Folio, "earlier folio")
		}
	}
	if !s.HostileApplies(h) {
		return model.Hostile{}, false
	}
	return h, true
}

// hostileActions is the hostile hand-over: a kexec with a drawn
// corruption, two tasks of the new kernel, and the first open of
// /dev/liveupdate, which deserializes what was handed over. Its coverage
// row (hostile:KIND) counts that open's outcome, or the kexec's failure;
// for a corrupt memfd, whose data only its retrieve reads, the outcome of
// retrieving it (RETRIEVE_SESSION, then RETRIEVE_FD: EIO).
func (r *run) hostileActions(skip map[string]bool) []Action {
	if skip["hostile_kexec"] {
		return nil
	}
	return []Action{{
		Name: "hostile_kexec",
		Weight: func(s *model.State) int {
			if !s.Enabled {
				return 0
			}
			// Most kinds corrupt a file set or a file's data: they
			// apply only with files preserved.
			for _, id := range s.Outgoing {
				if len(s.Sessions[id].Out) > 0 {
					return hostileFilesWeight
				}
			}
			return hostileWeight
		},
		Run: func(c *Ctx) bool {
			// The drawn kind's precondition first, a few steps at
			// most (each one syscall), then the hand-over.
			k := drawHostileKind(c)
			h, ok := drawHostile(c, k)
			for range maxHostileBuild {
				if ok || !buildForHostile(c, k) {
					break
				}
				h, ok = drawHostile(c, k)
			}
			if !ok {
				return false
			}
			res, err := r.e.ExecHostile(h)
			r.touched = true
			r.stats.op(model.Op{Kind: model.OpKexec}, res.Errno)
			if r.ops != nil {
				*r.ops = append(*r.ops, recordedOp{Op: model.Op{Kind: model.OpKexec}, Hostile: &h})
			}
			if err != nil {
				r.fail("%v", err)
			}
			c.Do(model.Op{Kind: model.OpNewTask})
			c.Do(model.Op{Kind: model.OpNewTask})
			if res.Errno == 0 && !c.S.DevInUse {
				live := liveTasks(c.S)
				res = c.Do(model.Op{Kind: model.OpOpen, Task: live[0], Path: model.DevLiveUpdate, Flags: model.ORdwr})
				if res.Errno == 0 && (h.Kind == model.HostileFolioNotPreserved || h.Kind == model.HostileMemfdCount) {
					res = retrieveCorrupted(c, live[0], int(res.Ret), h)
				}
			}
			r.stats.hostile(h.Kind.String(), res.Errno)
			// The new kernel's ledger at once (its files are still
			// open): what the corrupt hand-over left must be restored
			// or reserved for a documented reason.
			if led := r.e.ledger(); len(led.Leaks()) > 0 {
				r.fail("leak: after hostile hand-over %s: preserved memory not accounted for\n\nledger:\n%s", h, led)
			}
			r.stats.invariant("ledger after a hostile hand-over")
			return true
		},
	}}
}

// buildForHostile takes one step toward a state that kind k fits, as
// liveUpdateStep does toward a live update (no memory of its own: a step
// undone by another action is done again): open /dev/liveupdate, create
// an outgoing session (the kinds that need a session, two, or one without
// files), or add a memfd with data to the outgoing session with the most
// files (the kinds that corrupt a file set, a file or a folio; dup_token
// needs two). False if no step is possible.
func buildForHostile(c *Ctx, k model.HostileKind) bool {
	s := c.S
	live := liveTasks(s)
	if !s.Enabled || len(live) == 0 {
		return false
	}
	devTask, dev, haveDev := deviceHolder(s)
	if !haveDev {
		if testModuleNeeded(s) {
			return c.loadTestModule(live[0])
		}
		return c.openDevice(live[0])
	}
	// The live outgoing session fd whose session has the most files.
	task, sfd, most := model.TaskID(0), -1, -1
	empty := false
	for _, t := range live {
		for _, fd := range fdsOf(s, t, sessionFile(s, false)) {
			n := len(c.sessionOf(t, fd).Out)
			empty = empty || n == 0
			if n > most {
				task, sfd, most = t, fd, n
			}
		}
	}
	newSession := sfd < 0
	switch k {
	case model.HostileDupName:
		newSession = len(s.Outgoing) < 2
	case model.HostileFileCountNoArray:
		newSession = !empty
	case model.HostileEmptyName, model.HostileUnterminatedName, model.HostileCountPast,
		model.HostileNoSubtree, model.HostileTruncatedSubtree:
	default:
		if most >= model.FileMax {
			return false
		}
	}
	if newSession {
		for _, name := range SessionNames {
			if s.FindOutgoing(name) == nil {
				c.Do(model.Op{Kind: model.OpIoctl, Task: devTask, FD: dev, Cmd: model.IoctlCreateSession, Buf: model.SessionArgBuf(name)})
				return true
			}
		}
		return false
	}
	if sfd < 0 {
		return false
	}
	se := c.sessionOf(task, sfd)
	free := fdsOf(s, task, func(f *model.File) bool {
		return f.Kind == model.KindMemfd && !s.Preserved[f.Inode]
	})
	if len(free) == 0 {
		c.Do(model.Op{Kind: model.OpMemfdCreate, Task: task, Name: "guest"})
		return true
	}
	mfd := free[0]
	if f := s.Files[s.Tasks[task].FDs[mfd]]; len(s.Inodes[f.Inode].Data) == 0 {
		c.Do(model.Op{Kind: model.OpWrite, Task: task, FD: mfd, Buf: c.data()})
		return true
	}
	c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionPreserveFD,
		Buf: model.FDArgBuf(int32(mfd), c.freshToken(se))})
	return true
}

// retrieveCorrupted retrieves the session and the file whose data h
// corrupted, through task's /dev/liveupdate fd dev, and returns the last
// result: RETRIEVE_FD, where the corrupt data is restored, or what failed
// before it.
func retrieveCorrupted(c *Ctx, task model.TaskID, dev int, h model.Hostile) model.Result {
	s := c.S
	if h.Session >= len(s.Incoming) {
		return model.Result{}
	}
	se := s.Sessions[s.Incoming[h.Session]]
	if h.File >= len(se.In) {
		return model.Result{}
	}
	token := se.In[h.File].Token
	r := c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: dev, Cmd: model.IoctlRetrieveSession, Buf: model.SessionArgBuf(se.Name)})
	if r.Errno != 0 {
		return r
	}
	return c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: newFD(r), Cmd: model.IoctlSessionRetrieveFD, Buf: model.FDArgBuf(0, token)})
}

// registrationActions unregister and register the memfd handler, as a
// module unload and load would, whatever is preserved or handed over:
// the model predicts EBUSY while a luo_file uses it, and with the handler
// gone PRESERVE_FD of a memfd is ENOENT and a deserialization of files
// fails (every open EIO).
func registrationActions(skip map[string]bool) []Action {
	var acts []Action
	for _, a := range []struct {
		name string
		kind model.OpKind
		when func(s *model.State) bool
	}{
		{"unregister_handler", model.OpUnregisterHandler, func(s *model.State) bool { return !s.MemfdUnregistered }},
		{"register_handler", model.OpRegisterHandler, func(s *model.State) bool { return s.MemfdUnregistered }},
	} {
		// Not while the test module is loaded: a memfd handler
		// registered after the test handler would be walked after it,
		// an order the model does not follow.
		if skip[a.name] {
			continue
		}
		acts = append(acts, Action{
			Name: a.name,
			Weight: func(s *model.State) int {
				switch {
				case s.Test.Loaded:
					return 0
				case a.when(s):
					return 4
				case a.kind == model.OpUnregisterHandler:
					// The handler is gone until register_handler or
					// a kexec: a short window, ENOENT's only one.
					return 4
				}
				return 1 // EEXIST
			},
			Run: func(c *Ctx) bool {
				c.Do(model.Op{Kind: a.kind})
				return true
			},
		})
	}
	return acts
}
