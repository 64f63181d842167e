package model

// Fingerprint returns a hash of part of s's canonical form (Canon), cheap
// to compute: states with the same Canon have the same Fingerprint, and
// most states that differ differ in it. The concurrent checker hashes the
// states porcupine reaches by it and compares them by Canon, which it then
// renders only for the few whose fingerprints meet.
//
// Only what Canon renders may enter it, and only in a form that does not
// depend on the internal ids Canon renumbers (files, inodes, sessions):
// task ids, fd numbers, names, tokens, counts and flags. Leaving something
// out costs only collisions; putting in what Canon does not render would
// split equal states.
func (s *State) Fingerprint() uint64 {
	var h fp
	h = h.bool(s.Enabled).bool(s.SetupFailed).u(s.LiveUpdateNum).i(int64(s.DeserializeErr)).bool(s.Deserialized)
	h = h.bool(s.DevInUse).i(int64(s.NextTask)).bool(s.MemfdUnregistered).bool(s.Image != nil)
	// Tasks and their fds, in no order (a sum of each one's hash).
	var tasks uint64
	for id, t := range s.Tasks {
		var fds uint64
		for fd, fid := range t.FDs {
			e := fp(0).i(int64(fd)).bool(t.Cloexec[fd])
			if f, ok := s.Files[fid]; ok {
				e = e.i(int64(f.Kind)).i(int64(f.Refs)).bool(f.Readable).bool(f.Writable)
				if f.Kind == KindMemfd || f.Kind == KindTest {
					e = e.i(f.Pos)
				}
			}
			fds += e.sum()
		}
		tasks += fp(0).i(int64(id)).bool(t.Alive).i(int64(t.Nofile)).u(t.NofileMax).u(fds).sum()
	}
	h = h.u(tasks)
	for _, id := range s.Outgoing {
		se := s.Sessions[id]
		h = h.str(se.Name).bool(se.Retrieved).bool(se.Stranded).bool(se.File != 0).i(int64(len(se.Out)))
		for _, f := range se.Out {
			h = h.u(f.Token)
		}
	}
	h = h.i(-1)
	for _, id := range s.Incoming {
		se := s.Sessions[id]
		h = h.str(se.Name).bool(se.Retrieved).bool(se.Stranded).bool(se.File != 0).i(int64(len(se.In)))
		for _, f := range se.In {
			h = h.u(f.Token).str(f.Handler).i(int64(f.Test)).i(int64(len(f.Data))).i(f.Pos).bool(f.Retrieved)
			h = h.bool(f.File != 0).i(int64(f.RetrieveErr)).bool(f.BadFolio).bool(f.BadCount)
		}
	}
	h = h.i(int64(len(s.Files))).i(int64(len(s.Inodes))).i(int64(len(s.Preserved) + len(s.PreservedTest))).i(int64(len(s.TestFiles)))
	// The test module (canonTest).
	m := &s.Test
	h = h.bool(m.Loaded).i(int64(len(m.Links))).i(int64(m.LostPins))
	for _, l := range m.Links {
		h = h.i(int64(l))
	}
	h = h.i(int64(s.Warns))
	for i := range m.FLBs {
		st := &m.FLBs[i]
		h = h.i(int64(st.OutCount)).bool(st.HasOut).i(int64(len(st.OutObj))).i(int64(st.InCount)).i(int64(st.InStatus))
		h = h.bool(st.HasIn).i(int64(len(st.InObj))).bool(st.Finished)
	}
	h = h.i(int64(len(s.TestCtl.Directives)))
	for _, d := range s.TestCtl.Directives {
		h = h.str(d.Callback).bool(d.FLBOp).i(int64(d.File)).i(int64(d.FLB)).i(int64(d.Calls)).i(int64(d.Nth)).i(int64(d.Errno))
	}
	h = h.i(int64(len(s.TestCtl.Refuse)))
	for i := range NTestFLBs {
		if st := s.TestCtl.FLBStates[i]; st != nil {
			h = h.i(int64(len(st)))
		} else {
			h = h.i(-1)
		}
		h = h.bool(s.TestCtl.FLBConsumed[i])
	}
	h = h.bool(s.FLBInActive).i(int64(len(s.FLBIn)))
	for _, f := range s.FLBIn {
		h = h.str(f.Name).i(int64(len(f.State))).i(int64(f.Count))
	}
	return h.sum()
}

// fp is a running hash (FNV-style multiply and xor per 64-bit word).
type fp uint64

const fpPrime = 0x100000001b3

func (h fp) u(v uint64) fp {
	x := (uint64(h) ^ v) * fpPrime
	return fp(x ^ x>>32)
}
func (h fp) i(v int64) fp { return h.u(uint64(v)) }

func (h fp) bool(v bool) fp {
	if v {
		return h.u(1)
	}
	return h.u(2)
}

func (h fp) str(v string) fp {
	h = h.u(uint64(len(v)))
	for i := 0; i < len(v); i++ {
		h = fp((uint64(h) ^ uint64(v[i])) * fpPrime)
	}
	return h
}

// sum finishes h (splitmix64's finalizer), so that sums of finished
// hashes, the order-free combination of map entries, stay well mixed.
func (h fp) sum() uint64 {
	z := uint64(h) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
