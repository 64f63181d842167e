package model

import "fmt"

// Check verifies the model's own invariants (spec Part 7, the subset that
// is visible in the abstract state): S2 unique names per list, S4, S5, S6,
// S7 one open file per outgoing session and per retrieved incoming one, S8,
// F2 unique tokens, F3, F7 the double-preservation map holds exactly the
// outgoing and retrieved incoming files, and reference counts that match
// the fd tables and LUO's references.
func (s State) Check() error { return s.CheckWith(&CheckScratch{}) }

// CheckScratch is Check's working space. A checker that checks after
// every step keeps one, so that Check allocates nothing once it has grown.
type CheckScratch struct {
	refs      map[FileID]int
	want      map[InodeID]bool
	wantTest  map[TestFileID]bool
	tokens    map[uint64]bool
	names     map[string]bool
	inodeRefs map[InodeID]int
}

// scratchMap returns *m emptied, making it with room for n the first time.
func scratchMap[K comparable, V any](m *map[K]V, n int) map[K]V {
	if *m == nil {
		*m = make(map[K]V, n)
	} else {
		clear(*m)
	}
	return *m
}

// CheckWith is Check with its maps taken from sc (emptied first).
func (s State) CheckWith(sc *CheckScratch) error {
	refs := scratchMap(&sc.refs, len(s.Files))
	for tid, t := range s.Tasks {
		if !t.Alive && len(t.FDs) > 0 {
			return fmt.Errorf("dead task %d holds fds", tid)
		}
		for fd := range t.Cloexec {
			if _, ok := t.FDs[fd]; !ok {
				return fmt.Errorf("task %d: close-on-exec flag on fd %d, which is not open", tid, fd)
			}
		}
		for fd, id := range t.FDs {
			if _, ok := s.Files[id]; !ok {
				return fmt.Errorf("task %d fd %d refers to a released file", tid, fd)
			}
			refs[id]++
		}
	}
	want := scratchMap(&sc.want, len(s.Preserved))
	wantTest := scratchMap(&sc.wantTest, 0)
	devs := 0
	check := func(ids []SessionID, incoming bool) error {
		// The outgoing list's name index, when built, proves S2 (every
		// name maps to its own session) and is checked with it.
		index := s.outNames
		if incoming {
			index = nil
		}
		var names map[string]bool
		if index == nil {
			names = scratchMap(&sc.names, len(ids))
		}
		for _, sid := range ids {
			se := s.Sessions[sid]
			if se == nil || se.Incoming != incoming {
				return fmt.Errorf("S3: session %d misplaced", sid)
			}
			if index != nil {
				if id, ok := index[se.Name]; !ok || id != sid {
					return fmt.Errorf("S2: duplicate name %q, or a stale name index (%q: session %d)", se.Name, se.Name, id)
				}
			} else if names[se.Name] {
				return fmt.Errorf("S2: duplicate name %q", se.Name)
			}
			if names != nil {
				names[se.Name] = true
			}
			// An incoming name may be empty (handed over by a 6.19
			// kernel without M10; restored as upstream does).
			if (len(se.Name) == 0 && !incoming) || len(se.Name) >= SessionNameLength {
				return fmt.Errorf("S6: name length %d", len(se.Name))
			}
			if !incoming && se.Retrieved {
				return fmt.Errorf("S4: outgoing %q retrieved", se.Name)
			}
			if se.Stranded && (!incoming || !se.Retrieved || se.File != 0) {
				return fmt.Errorf("S7: session %q stranded but not a released retrieved one", se.Name)
			}
			if (se.File != 0) != (!incoming || (se.Retrieved && !se.Stranded)) {
				return fmt.Errorf("S7: session %q file=%d retrieved=%v", se.Name, se.File, se.Retrieved)
			}
			if se.File != 0 {
				if f := s.Files[se.File]; f == nil || f.Kind != KindSession || f.Session != sid {
					return fmt.Errorf("S7: session %q file mismatch", se.Name)
				}
			}
			tokens := scratchMap(&sc.tokens, len(se.Out)+len(se.In))
			for _, f := range se.Out {
				if tokens[f.Token] {
					return fmt.Errorf("F2: token %d twice in %q", f.Token, se.Name)
				}
				tokens[f.Token] = true
				file := s.Files[f.File]
				if file == nil || (file.Kind != KindMemfd && file.Kind != KindTest) {
					return fmt.Errorf("F5: preserved file of %q gone", se.Name)
				}
				if file.Kind == KindTest {
					if wantTest[file.Test] {
						return fmt.Errorf("F7: test file preserved twice")
					}
					wantTest[file.Test] = true
					refs[f.File]++
					continue
				}
				if want[file.Inode] {
					return fmt.Errorf("F7: inode preserved twice")
				}
				want[file.Inode] = true
				refs[f.File]++
				if !s.Inodes[file.Inode].Frozen {
					return fmt.Errorf("preserved memfd of %q not frozen", se.Name)
				}
			}
			for _, f := range se.In {
				if tokens[f.Token] {
					return fmt.Errorf("F2: token %d twice in %q", f.Token, se.Name)
				}
				tokens[f.Token] = true
				if f.Retrieved {
					file := s.Files[f.File]
					if file == nil {
						return fmt.Errorf("F6: retrieved file of %q gone", se.Name)
					}
					if file.Kind == KindTest {
						if wantTest[file.Test] || file.Test != f.Test {
							return fmt.Errorf("F7: retrieved test file %d twice or renamed", f.Test)
						}
						wantTest[file.Test] = true
						refs[f.File]++
						continue
					}
					if want[file.Inode] {
						return fmt.Errorf("F7: inode preserved twice")
					}
					want[file.Inode] = true
					refs[f.File]++
				}
			}
			if len(se.Out) > FileMax {
				return fmt.Errorf("F3: %d files", len(se.Out))
			}
		}
		return nil
	}
	if err := check(s.Outgoing, false); err != nil {
		return err
	}
	if err := check(s.Incoming, true); err != nil {
		return err
	}
	if s.outNames != nil && len(s.outNames) != len(s.Outgoing) {
		return fmt.Errorf("stale name index: %d names, %d outgoing sessions", len(s.outNames), len(s.Outgoing))
	}
	if len(s.Outgoing) > SessionMax {
		return fmt.Errorf("S5: %d outgoing sessions", len(s.Outgoing))
	}
	if len(s.Outgoing)+len(s.Incoming) != len(s.Sessions) {
		return fmt.Errorf("S3: %d sessions listed, %d live", len(s.Outgoing)+len(s.Incoming), len(s.Sessions))
	}
	for id := range s.Preserved {
		if !want[id] {
			return fmt.Errorf("F7: stale map entry")
		}
	}
	if len(want) != len(s.Preserved) {
		return fmt.Errorf("F7: map has %d entries, want %d", len(s.Preserved), len(want))
	}
	for id := range s.PreservedTest {
		if !wantTest[id] {
			return fmt.Errorf("F7: stale test map entry %d", id)
		}
	}
	if len(wantTest) != len(s.PreservedTest) {
		return fmt.Errorf("F7: test map has %d entries, want %d", len(s.PreservedTest), len(wantTest))
	}
	if err := s.checkTest(); err != nil {
		return err
	}
	inodeRefs := scratchMap(&sc.inodeRefs, len(s.Inodes))
	var open [KindTest + 1]int
	openIncoming := 0
	for id, f := range s.Files {
		open[f.Kind]++
		if f.Kind == KindSession {
			if se := s.Sessions[f.Session]; se != nil && se.Incoming {
				openIncoming++
			}
		}
		if f.Refs != refs[id] || f.Refs <= 0 {
			return fmt.Errorf("file %d (%v) refs=%d, counted %d", id, f.Kind, f.Refs, refs[id])
		}
		if f.Kind == KindDevice {
			devs++
		}
		if f.Kind == KindMemfd {
			inodeRefs[f.Inode]++
		}
		if f.Kind == KindTest && s.TestFiles[f.Test] == nil {
			return fmt.Errorf("test file %d has no payload", f.Test)
		}
	}
	if open != s.openKinds || openIncoming != s.openIncoming {
		return fmt.Errorf("open file counts %v (incoming sessions %d), counted %v (%d)", s.openKinds, s.openIncoming, open, openIncoming)
	}
	if devs > 1 || (devs == 1) != s.DevInUse {
		return fmt.Errorf("S8: %d device files, in_use=%v", devs, s.DevInUse)
	}
	for id, in := range s.Inodes {
		if in.Refs != inodeRefs[id] || in.Refs == 0 {
			return fmt.Errorf("inode %d refs=%d, counted %d", id, in.Refs, inodeRefs[id])
		}
	}
	return nil
}
