package concurrent

import (
	"slices"
	"syscall"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"luomodel/kernel/sched"
	"luomodel/model"
)

// midFinish is a round's history in which an FLB query found no data
// while a session FINISH that ends that FLB was in flight, and a later
// query of the same thread found the handler's other FLB not yet
// finished: luo_flb_file_finish() seen half-way.
type midFinish struct {
	init           *linState // the round's initial state
	hist           []porcupine.Operation
	nodata, finish int // indices in hist: the ENODATA query, the FINISH
}

// check checks hist, a variant of m.hist, with a model of its own (a
// model memoizes the steps of one history).
func (m *midFinish) check(hist []porcupine.Operation) bool {
	return porcupine.CheckOperations(porcupineModel(m.init.s, m.init.inst, hist), hist)
}

// isFLBQuery reports whether o is an FLB query (its get, for a split one).
func isFLBQuery(o porcupine.Operation) bool {
	in := o.Input.(linInput)
	return !in.FLBPut && in.Op.Kind == model.OpTestCtl && in.Op.TestCmd == model.TestCmdFLBIncoming
}

// findMidFinish looks for the signature of a half-done finish in hist.
func findMidFinish(pm porcupine.Model, hist []porcupine.Operation) *midFinish {
	finish := slices.IndexFunc(hist, func(o porcupine.Operation) bool {
		in := o.Input.(linInput)
		return in.Op.Kind == model.OpIoctl && in.Op.Cmd == model.IoctlSessionFinish
	})
	if finish < 0 || hist[finish].Output.(linOutput).Res.Errno != 0 {
		return nil
	}
	for i, o := range hist {
		in := o.Input.(linInput)
		if !isFLBQuery(o) || o.Output.(linOutput).Res.Errno != syscall.ENODATA || len(in.Finishing) == 0 {
			continue
		}
		for _, p := range hist {
			pin := p.Input.(linInput)
			if isFLBQuery(p) && pin.Thread == in.Thread && pin.Op.FLB != in.Op.FLB && p.Call > o.Return &&
				p.Output.(linOutput).Res.Errno == 0 && p.Call < hist[finish].Return {
				return &midFinish{init: pm.Init().(*linState), hist: hist, nodata: i, finish: finish}
			}
		}
	}
	return nil
}

// TestFLBQueryMidFinish is the directed regression test of fd11f0f. The
// last file counting on the test handler's two FLBs is finished
// (SESSION_FINISH of "a", after "b" was finished in the prologue) while
// another thread queries both FLBs, one after the other. The port's
// luo_flb_file_finish() puts the FLBs one at a time, each under its own
// lock, so a schedule exists where the first query finds its FLB finished
// (ENODATA) and the second finds the other one still live. Every schedule
// with at most one preemption must be linearizable (the checker accepts
// the ENODATA of a query that a finish in flight explains), the half-done
// finish must be among them, and the same ENODATA must be rejected where
// nothing explains it: with the finish's overlap forgotten (the checker
// before fd11f0f), and with the query moved before the finish began.
func TestFLBQueryMidFinish(t *testing.T) {
	r := SlotResult
	pre := []Instr{
		{Kind: KRetrieve, Name: "a", Dst: r, Pre: true},
		{Kind: KRetrieve, Name: "b", Dst: r + 1, Pre: true},
		{Kind: KFinish, Src: r + 1, Pre: true},
	}
	var mid *midFinish
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		prog := Program{
			append(slices.Clone(pre), Instr{Kind: KFinish, Src: r}),
			{{Kind: KFLBGet, FLB: order[0]}, {Kind: KFLBGet, FLB: order[1]}},
		}
		cfg := Config{Rounds: 1, OutDir: t.TempDir()}
		cfg.checkHist = func(pm porcupine.Model, hist []porcupine.Operation) {
			if mid == nil {
				mid = findMidFinish(pm, hist)
			}
		}
		su := &setups{}
		x := sched.NewDFS(1)
		runs := 0
		for x.Next() {
			runs++
			if f := replay(cfg, su, []Program{prog}, nil, x); f != nil {
				t.Fatalf("schedule %d: %v", runs, f)
			}
		}
		require.Greater(t, runs, 10)
		t.Logf("queries of flb%d then flb%d: %d schedules with at most one preemption, all linearizable", order[0], order[1], runs)
	}
	require.NotNil(t, mid, "no schedule saw luo_flb_file_finish() half-way")
	require.True(t, mid.check(mid.hist), "the half-done finish's history")

	// The checker before fd11f0f: the ENODATA query knows of no finish in
	// flight.
	forgot := slices.Clone(mid.hist)
	in := forgot[mid.nodata].Input.(linInput)
	in.Finishing = nil
	forgot[mid.nodata].Input = in
	require.False(t, mid.check(forgot), "an ENODATA with no finish in flight accepted (finish forgotten)")

	// A wrong ENODATA: the query ran and returned before the finish began.
	early := slices.Clone(mid.hist)
	for i := range early {
		in := early[i].Input.(linInput)
		in.Finishing = nil
		early[i].Input = in
	}
	start := early[mid.finish].Call
	q := &early[mid.nodata]
	q.Call, q.Return = start-2, start-1
	in = q.Input.(linInput)
	in.Call = q.Call
	q.Input = in
	early = addFinishing(early)
	require.Empty(t, early[mid.nodata].Input.(linInput).Finishing)
	require.False(t, mid.check(early), "an ENODATA before the finish began accepted")
}

// TestFLBQueryKilledByReboot: a query of an FLB that the reboot kills
// between its get and its put holds the FLB's reference until the jump,
// so the finish of the last file counting on the FLB does not finish it,
// and a later query of another thread finds it live. Found by the main
// job (luo concurrent -seed 660864219396611401): the checker took a
// killed query for all or nothing. Every schedule with at most one
// preemption must be linearizable on the reference port.
func TestFLBQueryKilledByReboot(t *testing.T) {
	r := SlotResult
	prog := Program{
		{
			{Kind: KRetrieve, Name: "a", Dst: r, Pre: true},
			{Kind: KRetrieve, Name: "b", Dst: r + 1, Pre: true},
			{Kind: KFinish, Src: r + 1, Pre: true},
		},
		{{Kind: KFLBGet, FLB: 1}},
		{{Kind: KFinish, Src: r}, {Kind: KFLBGet, FLB: 1}, {Kind: KReboot}},
	}
	requireOnePreemptionLinearizable(t, prog)
}
