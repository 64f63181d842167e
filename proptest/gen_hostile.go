package proptest

import (
	"errors"
	"fmt"
	"strings"

	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
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

// hostileWeight is the hostile hand-over's weight where it applies.
const hostileWeight = 6

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
	err := e.M.KexecWith(func(ram *mm.RAM, root mm.PhysAddr) error {
		hookErr = CorruptHandover(ram, root, h)
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
	}
	if errors.Is(err, machine.ErrKernelPanic) {
		m, err := machine.New(machine.Config{LiveUpdate: true, Report: e.report})
		if err != nil {
			return pr, err
		}
		e.M = m
		e.S.ColdBoot()
		e.trace[len(e.trace)-1].note += " (the new kernel panics; the machine is powered on again)"
	}
	return pr, nil
}

// CorruptHandover applies h to the LUO data of the hand-over whose KHO
// root FDT is at root, in ram: the port's side of model.Hostile.
func CorruptHandover(ram *mm.RAM, root mm.PhysAddr, h model.Hostile) error {
	img, err := liveupdate.LocateHandover(ram, root)
	if err != nil {
		return err
	}
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

// drawHostile draws a corruption that fits the outgoing sessions of s:
// first the kind, every kind that can apply equally likely, then where
// (the indices of that kind only: few draws, quick shrinking).
func drawHostile(c *Ctx) (model.Hostile, bool) {
	s := c.S
	n := len(s.Outgoing)
	files := func(i int) int { return len(s.Sessions[s.Outgoing[i]].Out) }
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
	var cands []model.Hostile
	for _, k := range model.HostileKinds() {
		h := model.Hostile{Kind: k}
		switch k {
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
		}
		if s.HostileApplies(h) {
			cands = append(cands, h)
		}
	}
	if len(cands) == 0 {
		return model.Hostile{}, false
	}
	h := model.Hostile{Kind: cands[c.Src.Intn(len(cands), "hostile kind")].Kind}
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
	}
	if !s.HostileApplies(h) {
		return model.Hostile{}, false
	}
	return h, true
}

// hostileActions is the hostile hand-over: a kexec with a drawn
// corruption, two tasks of the new kernel, and the first open of
// /dev/liveupdate, which deserializes what was handed over. Its coverage
// row (hostile:KIND) counts that open's outcome, or the kexec's failure.
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
			return hostileWeight
		},
		Run: func(c *Ctx) bool {
			h, ok := drawHostile(c)
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
			}
			r.stats.hostile(h.Kind.String(), res.Errno)
			// The new kernel's ledger at once (its files are still
			// open): what the corrupt hand-over left must be restored
			// or reserved for a documented reason.
			if led := account.Take(r.e.M); len(led.Leaks()) > 0 {
				r.fail("leak: after hostile hand-over %s: preserved memory not accounted for\n\nledger:\n%s", h, led)
			}
			r.stats.invariant("ledger after a hostile hand-over")
			return true
		},
	}}
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
				}
				return 1 // EEXIST, ENOENT
			},
			Run: func(c *Ctx) bool {
				c.Do(model.Op{Kind: a.kind})
				return true
			},
		})
	}
	return acts
}
