package concurrent

import (
	"sync"

	"luomodel/model"
	"luomodel/proptest/summary"
)

// Outcome coverage: what the rounds' instructions returned, per
// instruction and result (ok or the errno's name; F_GETFD's FD_CLOEXEC
// apart from its 0). The in-kernel face's instructions (churn.go) have
// goals: each answer their transient and stable states can give (the
// table's Expected cells, "!" when never seen); so have the process
// instructions (fork.go): F_GETFD sees both flags and a closed fd, exec
// and exit run.

// outcomeGoals are the expected results of the churn instructions.
var outcomeGoals = map[Kind][]string{
	KLoadMod:      {"ok", "EEXIST", "EBUSY"},
	KUnloadMod:    {"ok", "EAGAIN", "EBUSY", "ENOENT"},
	KRegFLB:       {"ok", "EEXIST", "ENODEV"},
	KUnregFLB:     {"ok", "ENODEV"},
	KRegister:     {"ok", "EEXIST"},
	KUnregister:   {"ok", "EBUSY", "ENOENT"},
	KFLBGet:       {"ok", "ENODEV", "ENOENT"},
	KFork:         {"ok"},
	KExec:         {"ok"},
	KExit:         {"ok"},
	KGetFD:        {"ok", "FD_CLOEXEC", "EBADF"},
	KSetFD:        {"ok", "EBADF"},
	KDupFD:        {"ok", "EBADF"},
	KDupFDCloexec: {"ok", "EBADF"},
}

// outcomesTableName is the summary table's name.
const outcomesTableName = "concurrent-outcomes"

// Outcomes counts the instructions' results; safe for concurrent use.
type Outcomes struct {
	mu sync.Mutex
	// n counts per instruction and result; guarded by mu.
	n map[Kind]map[string]int64
}

func (o *Outcomes) add(k Kind, r model.Result) {
	res := "ok"
	if r.Errno != 0 {
		res = model.ErrnoName(r.Errno)
	} else if k == KGetFD && r.Ret == model.FdCloexec {
		res = "FD_CLOEXEC"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[Kind]map[string]int64{}
	}
	if o.n[k] == nil {
		o.n[k] = map[string]int64{}
	}
	o.n[k][res]++
}

// Table renders the outcomes: a row per instruction, a column per result.
func (o *Outcomes) Table() *summary.Table {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := summary.New(outcomesTableName, "instruction \\ result")
	t.Note = "results of the rounds' instructions (\"!\": an expected result of LUO's in-kernel face or of a process instruction never seen)"
	t.Lead = []string{"ok"}
	t.Expected = map[string][]string{}
	for k := range numKinds {
		if k == KCloseDev {
			continue
		}
		t.LeadRows = append(t.LeadRows, k.String())
		if g := outcomeGoals[k]; g != nil {
			t.Expected[k.String()] = g
		}
	}
	for k, m := range o.n {
		for res, n := range m {
			t.Add(k.String(), res, n)
		}
	}
	t.Normalize()
	return t
}
