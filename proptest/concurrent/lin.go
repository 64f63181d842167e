package concurrent

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
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
	// FDInst and BufInst are the fd instances (see linState) behind Op.FD
	// and behind the fd inside a PRESERVE_FD buffer, -1 if none; NewInst
	// is the instance a returned fd becomes.
	FDInst, BufInst, NewInst int
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

// linState is a model state, the model fd of every live fd instance, and
// their canonical form, computed once.
//
// Fds are compared by identity, not number. An fd instance is one result
// of an fd-returning call (or a setup fd); a later call names the instance
// its slot holds, and the step translates it to the model's fd for that
// instance. The numbers themselves are not compared: a call that looked
// an fd up may be handed, as its new fd, the number a concurrent close
// freed, and a close whose release is still running has already freed its
// number; neither has a sequential explanation in terms of numbers, while
// each is linearizable in terms of files. The sequential lockstep checks
// the numbers (lowest free fd).
type linState struct {
	s     model.State
	inst  map[int]int // instance id -> model fd
	canon string
}

func newLinState(s model.State, inst map[int]int) *linState {
	keys := make([]int, 0, len(inst))
	for k := range inst {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(s.Canon())
	for _, k := range keys {
		fmt.Fprintf(&b, "|%d:%d", k, inst[k])
	}
	return &linState{s: s, inst: inst, canon: b.String()}
}

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

// linStep is the model's step for porcupine, on fd instances.
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
		return true, newLinState(s, nil)
	}
	op := in.Op
	if in.FDInst >= 0 {
		op.FD = modelFD(st, in.FDInst)
	}
	if in.BufInst >= 0 && len(op.Buf) >= 8 {
		op.Buf = append([]byte{}, op.Buf...)
		putLE32(op.Buf[4:], uint32(int32(modelFD(st, in.BufInst))))
	}
	res, next := model.Step(st.s, op)
	if !out.Pending && !sameIgnoringFDs(op, res, out.Res) {
		return false, st
	}
	inst := st.inst
	switch {
	case res.Errno != 0:
	case op.Kind == model.OpKexec:
		inst = nil // every task, and so every fd, is gone
	case op.Kind == model.OpClose:
		inst = map[int]int{}
		for k, v := range st.inst {
			if v != op.FD {
				inst[k] = v
			}
		}
	}
	if mfd, ok := fdResult(op, res); ok {
		inst = maps.Clone(inst)
		if inst == nil {
			inst = map[int]int{}
		}
		inst[in.NewInst] = mfd
	}
	return true, newLinState(next, inst)
}

// modelFD is the model's fd for an instance; -1 (EBADF) once it is closed.
func modelFD(st *linState, inst int) int {
	if fd, ok := st.inst[inst]; ok {
		return fd
	}
	return -1
}

// sameIgnoringFDs compares results with every returned fd number (and the
// fd fields of ioctl buffers) blanked.
func sameIgnoringFDs(op model.Op, a, b model.Result) bool {
	blank := func(r model.Result) model.Result {
		if _, ok := fdResult(op, r); ok {
			r = withFD(op, r, 0)
		}
		if op.Kind == model.OpIoctl && len(r.Data) >= 8 {
			switch op.Cmd {
			case model.IoctlCreateSession, model.IoctlRetrieveSession, model.IoctlSessionPreserveFD, model.IoctlSessionRetrieveFD:
				r.Data = append([]byte{}, r.Data...)
				putLE32(r.Data[4:], 0)
			}
		}
		return r
	}
	return blank(a).Equal(blank(b))
}

// porcupineModel is the model for one round starting at init.
func porcupineModel(init model.State, inst map[int]int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return newLinState(init, inst) },
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
func finalState(pm porcupine.Model, hist []porcupine.Operation, info porcupine.LinearizationInfo) (model.State, bool) {
	init := pm.Init().(*linState)
	var best []int
	for _, part := range info.PartialLinearizations() {
		for _, l := range part {
			if len(l) > len(best) {
				best = l
			}
		}
	}
	if len(best) != len(hist) {
		return init.s, false
	}
	st := init
	for _, i := range best {
		ok, next := linStep(st, hist[i].Input.(linInput), hist[i].Output.(linOutput))
		if !ok {
			return init.s, false
		}
		st = next
	}
	return st.s, true
}
