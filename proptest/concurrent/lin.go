package concurrent

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/anishathalye/porcupine"

	"luomodel/kernel/liveupdate"
	"luomodel/model"
)

// linInput is one operation of a history: a syscall of a thread, or the
// observation that ends a round.
type linInput struct {
	Thread int
	Op     model.Op
	// Observe marks the round's last operation: Before (the session lists
	// at the quiescent point, when the round did not reboot) and After
	// (what crossed the kexec that ends the round) are checked.
	Observe  bool
	Rebooted bool
}

// linOutput is what the port returned. Pending: the thread was killed by
// a reboot before the call returned; any outcome is accepted, and the
// model's effect may or may not have happened.
type linOutput struct {
	Res     model.Result
	Pending bool
	Before  string
	After   string
}

// linState is a model state with its canonical form, computed once.
type linState struct {
	s     model.State
	canon string
}

func newLinState(s model.State) *linState { return &linState{s: s, canon: s.Canon()} }

// describeBefore renders what the quiescent check compares: the outgoing
// list, the incoming list with retrieved flags, and the device's state.
func describeBefore(out, in []string, inRetrieved []bool, devInUse bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "outgoing=%v incoming=[", out)
	for i, n := range in {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
		if inRetrieved[i] {
			b.WriteString("(retrieved)")
		}
	}
	fmt.Fprintf(&b, "] device-open=%v", devInUse)
	return b.String()
}

func modelBefore(s *model.State) string {
	var in []string
	var ret []bool
	for _, id := range s.Incoming {
		se := s.Sessions[id]
		in = append(in, se.Name)
		ret = append(ret, se.Retrieved)
	}
	return describeBefore(s.OutgoingNames(), in, ret, s.DevInUse)
}

func portBefore(d *liveupdate.DebugState) string {
	var out, in []string
	var ret []bool
	for _, se := range d.Outgoing.Sessions {
		out = append(out, se.Name)
	}
	for _, se := range d.Incoming.Sessions {
		in = append(in, se.Name)
		ret = append(ret, se.Retrieved)
	}
	return describeBefore(out, in, ret, d.InUse)
}

// modelCrossed renders the incoming sessions of a freshly kexec'ed state:
// names in list order, each with its file tokens in order.
func modelCrossed(s *model.State) string {
	var parts []string
	for _, id := range s.Incoming {
		se := s.Sessions[id]
		var toks []string
		for _, f := range se.In {
			toks = append(toks, fmt.Sprint(f.Token))
		}
		parts = append(parts, se.Name+"["+strings.Join(toks, ",")+"]")
	}
	return strings.Join(parts, " ")
}

func portCrossed(d *liveupdate.DebugState) string {
	var parts []string
	for _, se := range d.Incoming.Sessions {
		var toks []string
		for _, f := range se.Files {
			toks = append(toks, fmt.Sprint(f.Token))
		}
		parts = append(parts, se.Name+"["+strings.Join(toks, ",")+"]")
	}
	return strings.Join(parts, " ")
}

// linStep is the model's step for porcupine, with the fd relaxation of the
// package doc.
func linStep(st *linState, in linInput, out linOutput) (bool, *linState) {
	if in.Observe {
		s := st.s
		if !in.Rebooted {
			if modelBefore(&s) != out.Before {
				return false, st
			}
			s = model.Kexec(s)
		}
		if modelCrossed(&s) != out.After {
			return false, st
		}
		return true, newLinState(s)
	}
	res, next := model.Step(st.s, in.Op)
	if out.Pending || res.Equal(out.Res) {
		return true, newLinState(next)
	}
	pfd, ok := fdResult(in.Op, out.Res)
	mfd, ok2 := fdResult(in.Op, res)
	if !ok || !ok2 || pfd == mfd || pfd < 0 || pfd >= model.NRFileMax {
		return false, st
	}
	if t := st.s.Tasks[in.Op.Task]; t == nil {
		return false, st
	} else if _, used := t.FDs[pfd]; used {
		return false, st
	}
	if !withFD(in.Op, res, pfd).Equal(out.Res) {
		return false, st
	}
	t := next.Tasks[in.Op.Task]
	t.FDs[pfd] = t.FDs[mfd]
	delete(t.FDs, mfd)
	return true, newLinState(next)
}

// porcupineModel is the model for one round starting at init.
func porcupineModel(init model.State) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return newLinState(init) },
		Step: func(state, input, output any) (bool, any) {
			return linStep(state.(*linState), input.(linInput), output.(linOutput))
		},
		Equal: func(a, b any) bool { return a.(*linState).canon == b.(*linState).canon },
		Hash: func(state any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(state.(*linState).canon))
			return h.Sum64()
		},
		DescribeOperation: describeOp,
		DescribeState:     func(state any) string { return modelBefore(&state.(*linState).s) },
	}
}

func describeOp(input, output any) string {
	in, out := input.(linInput), output.(linOutput)
	if in.Observe {
		return fmt.Sprintf("quiescent: %s; crossed: %s", out.Before, out.After)
	}
	if out.Pending {
		return "T" + fmt.Sprint(in.Thread) + " " + strings.TrimSuffix(model.Format(in.Op, model.Result{}), " = 0") + " (killed by the reboot)"
	}
	return fmt.Sprintf("T%d %s", in.Thread, model.Format(in.Op, out.Res))
}

// finalState replays the longest linearization porcupine found and
// returns the model state after it.
func finalState(init model.State, hist []porcupine.Operation, info porcupine.LinearizationInfo) (model.State, bool) {
	var best []int
	for _, part := range info.PartialLinearizations() {
		for _, l := range part {
			if len(l) > len(best) {
				best = l
			}
		}
	}
	if len(best) != len(hist) {
		return init, false
	}
	st := newLinState(init)
	for _, i := range best {
		ok, next := linStep(st, hist[i].Input.(linInput), hist[i].Output.(linOutput))
		if !ok {
			return init, false
		}
		st = next
	}
	return st.s, true
}
