package proptest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"

	"luomodel/kernel/liveupdate"
	"luomodel/model"
)

// portCheck compares the port's internal state, read through
// (*liveupdate.LUO).Snapshot(), with the spec's invariants and the model.
type portCheck struct {
	name string
	fn   func(d *liveupdate.DebugState, s *model.State) error
}

func (e *Env) snapshot() (*liveupdate.DebugState, error) {
	k := e.M.Kernel()
	if k == nil {
		return nil, fmt.Errorf("machine halted: %v", e.M.Halted())
	}
	d := k.LUO().Snapshot()
	return &d, nil
}

var portChecks = []portCheck{
	{"S1 count == len(list)", func(d *liveupdate.DebugState, _ *model.State) error {
		for _, l := range []liveupdate.SessionListState{d.Incoming, d.Outgoing} {
			if l.Count != len(l.Sessions) {
				return fmt.Errorf("count %d, list %d", l.Count, len(l.Sessions))
			}
		}
		return nil
	}},
	{"S2/S6 names unique per list, length 1..63 (incoming 0..63)", func(d *liveupdate.DebugState, _ *model.State) error {
		for i, l := range []liveupdate.SessionListState{d.Incoming, d.Outgoing} {
			// An incoming name may be empty: a 6.19 kernel without
			// M10 can hand one over, and upstream restores it.
			minLen := i
			seen := make(map[string]bool, len(l.Sessions))
			for _, s := range l.Sessions {
				if seen[s.Name] || len(s.Name) < minLen || len(s.Name) > 63 {
					return fmt.Errorf("name %q", s.Name)
				}
				seen[s.Name] = true
			}
		}
		return nil
	}},
	{"S3/S4/S5 no freed session listed, outgoing not retrieved, <= 819", func(d *liveupdate.DebugState, _ *model.State) error {
		for _, l := range []liveupdate.SessionListState{d.Incoming, d.Outgoing} {
			for _, s := range l.Sessions {
				if s.Freed {
					return fmt.Errorf("freed session %q listed", s.Name)
				}
			}
		}
		for _, s := range d.Outgoing.Sessions {
			if s.Retrieved {
				return fmt.Errorf("outgoing %q retrieved", s.Name)
			}
		}
		if d.Outgoing.Count > model.SessionMax {
			return fmt.Errorf("%d outgoing", d.Outgoing.Count)
		}
		return nil
	}},
	{"S8 device in_use matches", func(d *liveupdate.DebugState, s *model.State) error {
		if d.InUse != s.DevInUse {
			return fmt.Errorf("port in_use=%v, model %v", d.InUse, s.DevInUse)
		}
		return nil
	}},
	{"F1-F6 file sets (count, tokens, <=128, array, files)", func(d *liveupdate.DebugState, _ *model.State) error {
		for i, l := range []liveupdate.SessionListState{d.Outgoing, d.Incoming} {
			for _, s := range l.Sessions {
				if s.FileCount != len(s.Files) {
					return fmt.Errorf("F1 %q: count %d, list %d", s.Name, s.FileCount, len(s.Files))
				}
				if s.FileCount > model.FileMax {
					return fmt.Errorf("F3 %q: %d files", s.Name, s.FileCount)
				}
				tokens := make(map[uint64]bool, len(s.Files))
				for _, f := range s.Files {
					if tokens[f.Token] {
						return fmt.Errorf("F2 %q: token %d twice", s.Name, f.Token)
					}
					tokens[f.Token] = true
					if f.Freed {
						return fmt.Errorf("%q: freed luo_file listed", s.Name)
					}
					if i == 0 && f.File == nil {
						return fmt.Errorf("F5 %q: outgoing file %d has no file", s.Name, f.Token)
					}
					if i == 1 && (f.File != nil) != (f.RetrieveStatus > 0) {
						return fmt.Errorf("F6 %q: token %d file=%v status=%d", s.Name, f.Token, f.File != nil, f.RetrieveStatus)
					}
				}
				if i == 0 && (s.FilesPA != 0) != (s.FileCount > 0) {
					return fmt.Errorf("F4 %q: files PA %#x with %d files", s.Name, s.FilesPA, s.FileCount)
				}
			}
		}
		return nil
	}},
	{"F7 preservation map == outgoing + retrieved files", func(d *liveupdate.DebugState, _ *model.State) error {
		want := 0
		preserved := make(map[liveupdate.PreservedEntry]bool, len(d.Preserved))
		for _, k := range d.Preserved {
			preserved[k] = true
		}
		for i, l := range []liveupdate.SessionListState{d.Outgoing, d.Incoming} {
			for _, s := range l.Sessions {
				for _, f := range s.Files {
					if i == 0 || f.RetrieveStatus > 0 {
						want++
						if !preserved[f.Key] {
							return fmt.Errorf("%q token %d not in the map", s.Name, f.Token)
						}
					}
				}
			}
		}
		if len(d.Preserved) != want {
			return fmt.Errorf("map has %d entries, want %d", len(d.Preserved), want)
		}
		return nil
	}},
	{"F9 memfd handler registered (iff LUO is enabled)", func(d *liveupdate.DebugState, s *model.State) error {
		if d.Enabled != s.Enabled {
			return fmt.Errorf("LUO enabled: port %v, model %v", d.Enabled, s.Enabled)
		}
		// A disabled LUO refuses registration (EOPNOTSUPP); the
		// campaign may have unregistered it.
		if slices.Contains(d.Handlers, model.MemfdCompatible) != (d.Enabled && !s.MemfdUnregistered) {
			return fmt.Errorf("handlers %q with LUO enabled=%v", d.Handlers, d.Enabled)
		}
		return nil
	}},
	{"model: liveupdate number, sessions, tokens, retrieve state agree", agree},
}

// agree compares the port's session lists with the model's. The incoming
// list is compared once deserialized (the first open of /dev/liveupdate).
func agree(d *liveupdate.DebugState, s *model.State) error {
	if d.LiveupdateNumber != s.LiveUpdateNum {
		return fmt.Errorf("liveupdate number: port %d, model %d", d.LiveupdateNumber, s.LiveUpdateNum)
	}
	if !sameNames(d.Outgoing.Sessions, s, s.Outgoing) {
		return fmt.Errorf("outgoing sessions: port %q, model %q", portNames(d.Outgoing.Sessions), s.OutgoingNames())
	}
	for i, ss := range d.Outgoing.Sessions {
		ms := s.Sessions[s.Outgoing[i]]
		same := len(ss.Files) == len(ms.Out)
		for j := 0; same && j < len(ss.Files); j++ {
			same = ss.Files[j].Token == ms.Out[j].Token
		}
		if !same {
			var pt, mt []uint64
			for _, f := range ss.Files {
				pt = append(pt, f.Token)
			}
			for _, f := range ms.Out {
				mt = append(mt, f.Token)
			}
			return fmt.Errorf("outgoing %q tokens: port %v, model %v", ss.Name, pt, mt)
		}
	}
	if !d.Deserialized {
		if len(d.Incoming.Sessions) != 0 {
			return fmt.Errorf("incoming sessions before deserialize")
		}
		return nil
	}
	if !sameNames(d.Incoming.Sessions, s, s.Incoming) {
		return fmt.Errorf("incoming sessions: port %q, model %q", portNames(d.Incoming.Sessions), s.IncomingNames())
	}
	for i, ss := range d.Incoming.Sessions {
		ms := s.Sessions[s.Incoming[i]]
		if ss.Retrieved != ms.Retrieved || len(ss.Files) != len(ms.In) {
			return fmt.Errorf("incoming %q: port retrieved=%v files=%d, model retrieved=%v files=%d",
				ss.Name, ss.Retrieved, len(ss.Files), ms.Retrieved, len(ms.In))
		}
		for j, f := range ss.Files {
			mf := ms.In[j]
			if f.Token != mf.Token || (f.RetrieveStatus > 0) != mf.Retrieved || f.Compatible != mf.Handler {
				return fmt.Errorf("incoming %q file %d: port token=%d status=%d %q, model token=%d retrieved=%v",
					ss.Name, j, f.Token, f.RetrieveStatus, f.Compatible, mf.Token, mf.Retrieved)
			}
		}
	}
	return nil
}

// sameNames says whether the port's sessions have the names of the
// model's sessions ids, in order.
func sameNames(port []liveupdate.SessionState, s *model.State, ids []model.SessionID) bool {
	if len(port) != len(ids) {
		return false
	}
	for i, ss := range port {
		if ss.Name != s.Sessions[ids[i]].Name {
			return false
		}
	}
	return true
}

// portNames lists the port's session names.
func portNames(ss []liveupdate.SessionState) []string {
	var names []string
	for _, s := range ss {
		names = append(names, s.Name)
	}
	return names
}

// portLeaks reports files still alive in the running kernel.
func portLeaks(e *Env) error {
	k := e.M.Kernel()
	if k == nil {
		return nil
	}
	if live := k.VFS().LiveFiles(); len(live) > 0 {
		return fmt.Errorf("%d file(s) alive after every task exited; first: %v", len(live), live[0])
	}
	return nil
}

// PortCheckNames lists the names of the port's checks after every step,
// as a failure prints them ("name: detail"); the mutant runner's
// classifier test feeds each one to its classifier.
func PortCheckNames() []string {
	names := make([]string, len(portChecks), len(portChecks)+1)
	for i, c := range portChecks {
		names[i] = c.name
	}
	return append(names, fdTablesCheck, moduleRefsCheck, memfdsCheck)
}

// memfdsCheck names the memfd comparison (after every step that may
// change a memfd).
const memfdsCheck = "model: memfd sizes, allocated pages, contents agree"

// memfdsAgree compares every memfd a live task holds, as user space sees
// it through fstat(2) and pread(2) (which move nothing), with the model:
// its size, its allocated pages (st_blocks: the folios in its page cache,
// which writes, a preserve's filled holes, a retrieve and drop_caches
// change) and its contents. A folio lost or kept by mistake shows here at
// once, before a read or a write of that page would.
func memfdsAgree(e *Env) error {
	seen := map[model.InodeID]bool{}
	for _, id := range sortedKeys(e.S.Tasks) {
		mt := e.S.Tasks[id]
		pt := e.tasks[id]
		if mt == nil || !mt.Alive || pt == nil {
			continue
		}
		for _, fd := range slices.Sorted(maps.Keys(mt.FDs)) {
			f := e.S.Files[mt.FDs[fd]]
			if f == nil || f.Kind != model.KindMemfd || seen[f.Inode] {
				continue
			}
			seen[f.Inode] = true
			in := e.S.Inodes[f.Inode]
			st, err := pt.Fstat(fd)
			if err != nil {
				return fmt.Errorf("task %d fd %d: fstat: %v", id, fd, err)
			}
			pages := 0
			for i := range (int64(len(in.Data)) + model.PageSize - 1) / model.PageSize {
				if i < int64(len(in.Pages)) && in.Pages[i] != model.PageHole {
					pages++
				}
			}
			if st.Size != int64(len(in.Data)) || st.Blocks != int64(pages)*(model.PageSize/512) {
				return fmt.Errorf("task %d fd %d: port size %d, %d blocks; model size %d, %d pages (%s)",
					id, fd, st.Size, st.Blocks, len(in.Data), pages, in.PageMap())
			}
			buf := make([]byte, len(in.Data)+1)
			n, err := pt.Pread(fd, buf, 0)
			if err != nil || !bytes.Equal(buf[:n], in.Data) {
				return fmt.Errorf("task %d fd %d: contents differ (port %d bytes, err %v; model %d bytes)", id, fd, n, err, len(in.Data))
			}
		}
	}
	return nil
}

// moduleRefsCheck names the test module's reference count comparison
// (after every step).
const moduleRefsCheck = "model: test module loaded, reference count agree"

// moduleRefsAgree compares the test module in the port (loaded, and the
// references LUO holds on it: module_refcount()) with the model's
// prediction (model.State.ModuleRefs). Between syscalls nobody else holds
// one, so a reference an error path forgot to drop shows at once, not
// only at a later delete_module.
func moduleRefsAgree(e *Env) error {
	k := e.M.Kernel()
	if k == nil {
		return nil // halted: nothing runs
	}
	m := k.Modules().Find(model.TestModuleName)
	if (m != nil) != e.S.Test.Loaded {
		return fmt.Errorf("loaded: port %v, model %v", m != nil, e.S.Test.Loaded)
	}
	if m == nil {
		return nil
	}
	if got, want := m.Refcount(), int64(e.S.ModuleRefs()); got != want {
		return fmt.Errorf("references: port %d, model %d", got, want)
	}
	return nil
}

// fdTablesCheck names the fd-table comparison (run after every step, with
// the port checks) in the stats and in a failure.
const fdTablesCheck = "model: fd tables (fds, close-on-exec flags) agree"

// fdTablesAgree compares every task's fd table in the port with the
// model's: the same open fds, each with the same close-on-exec flag (what
// /proc/<pid>/fdinfo shows), no fd reserved but not installed, and ESRCH
// for a task that is gone.
func fdTablesAgree(e *Env) error {
	ids := e.taskIDs[:0]
	for id := range e.S.Tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	e.taskIDs = ids
	for _, id := range ids {
		mt := e.S.Tasks[id]
		pt := e.tasks[id]
		if pt == nil {
			return fmt.Errorf("task %d: not in the port", id)
		}
		infos, err := pt.FDInfos()
		if !mt.Alive {
			if !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("task %d is gone in the model, the port reads its fds: %v", id, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("task %d: %v", id, err)
		}
		if len(infos) != len(mt.FDs) {
			return fmt.Errorf("task %d: port has %d fds, model %d", id, len(infos), len(mt.FDs))
		}
		// Between syscalls every reservation has ended in an install or a
		// put: the model has none.
		if _, reserved, _ := pt.FDListing(); len(reserved) > 0 {
			return fmt.Errorf("task %d: fds %v reserved but not installed between syscalls", id, reserved)
		}
		for _, in := range infos {
			if _, ok := mt.FDs[in.FD]; !ok {
				return fmt.Errorf("task %d: fd %d open in the port only", id, in.FD)
			}
			if in.CloseOnExec != mt.Cloexec[in.FD] {
				return fmt.Errorf("task %d fd %d: close-on-exec port %v, model %v", id, in.FD, in.CloseOnExec, mt.Cloexec[in.FD])
			}
		}
	}
	return nil
}
