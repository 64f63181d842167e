package luotest

import (
	"fmt"
	"strings"
	"syscall"

	"luomodel/kernel/liveupdate"
	"luomodel/model"
)

// This file is the kit's model of LUO as a handler sees it: for every
// syscall of the campaign it predicts the calls LUO makes into the handler
// under test, in order, taking the handler's results as inputs (what
// preserve, freeze, retrieve, can_finish returned decides what LUO calls
// next, and what the syscall returns), and compares the prediction with
// the calls LUO recorded (liveupdate.CallRecorder) after every syscall.

// fileKey names a file of the campaign by its session and token, as LUO's
// records do.
func fileKey(sess string, tok uint64) string { return fmt.Sprintf("%s/%d", sess, tok) }

// obsCall is one call LUO made into the handler under test.
type obsCall struct {
	op  liveupdate.CallbackOp
	key string
	// err is the errno an int callback returned, EBUSY for a bool one
	// that said no; id is get_id's value.
	err syscall.Errno
	id  uint64
}

func (c obsCall) String() string {
	switch {
	case c.op == liveupdate.CallGetID:
		return fmt.Sprintf("%s(%s) = %#x", c.op, c.key, c.id)
	case c.op.IsBool():
		return fmt.Sprintf("%s(%s) = %t", c.op, c.key, c.err == 0)
	case c.err != 0:
		return fmt.Sprintf("%s(%s) = -%s", c.op, c.key, model.ErrnoName(c.err))
	}
	return fmt.Sprintf("%s(%s) = 0", c.op, c.key)
}

// observed keeps LUO's calls into fh about the campaign's files (known):
// other handlers' calls and other files' (a memfd next to them when fh is
// memfd's) are LUO's business with them. FLB calls are left out too.
func observed(all []liveupdate.Callback, fh *liveupdate.FileHandler, known map[string]bool) []obsCall {
	var out []obsCall
	for i := range all {
		c := &all[i]
		if c.Op.IsFLB() || c.Handler != fh {
			continue
		}
		key := fileKey(c.Session, c.Token)
		if !known[key] {
			continue
		}
		o := obsCall{op: c.Op, key: key, err: c.Errno()}
		if c.Op == liveupdate.CallGetID {
			o.id = uint64(c.Ret)
		}
		out = append(out, o)
	}
	return out
}

// cursor walks the observed calls of one syscall along the prediction.
type cursor struct {
	obs  []obsCall
	i    int
	want []string // the prediction so far, for the report
	err  error
}

// next expects LUO's next call to be op on key and returns it (nil after
// a disagreement, which is kept in c.err).
func (c *cursor) next(op liveupdate.CallbackOp, key string) *obsCall {
	if c.err != nil {
		return nil
	}
	c.want = append(c.want, fmt.Sprintf("%s(%s)", op, key))
	if c.i == len(c.obs) {
		c.err = fmt.Errorf("LUO made no call where the contract expects %s(%s)", op, key)
		return nil
	}
	o := &c.obs[c.i]
	c.i++
	if o.op != op || o.key != key {
		c.err = fmt.Errorf("LUO called %s where the contract expects %s(%s)", o, op, key)
		return nil
	}
	return o
}

// failf records a contract violation found in the observed results.
func (c *cursor) failf(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// end requires that LUO made no call beyond the prediction.
func (c *cursor) end() error {
	if c.err == nil && c.i < len(c.obs) {
		c.err = fmt.Errorf("LUO called %s, which the contract does not expect", c.obs[c.i])
	}
	if c.err == nil {
		return nil
	}
	got := make([]string, len(c.obs))
	for i, o := range c.obs {
		got[i] = o.String()
	}
	return fmt.Errorf("%w\nLUO called:\n  %s\nthe contract expects (results as the handler returned them):\n  %s",
		c.err, orNone(got), orNone(c.want))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, "\n  ")
}

// fileState is where a file of the campaign is in its life.
type fileState int

const (
	filePreserved fileState = iota // preserved, not frozen
	fileIncoming                   // handed over, not retrieved
	fileRetrieved
	fileRetrieveFailed
	fileFinished
)

// cfile is the contract's view of one file.
type cfile struct {
	key   string
	sess  string
	tok   uint64
	data  []byte
	state fileState
	// id is get_id's value for the file in the current kernel (hasID
	// once known): it must not change while LUO holds the file.
	id    uint64
	hasID bool
	// retrieveErr is the remembered failure of retrieve.
	retrieveErr syscall.Errno
}

// contract is the model: the handler's optional ops and the campaign's
// files per session, in creation and preservation order.
type contract struct {
	fh       *liveupdate.FileHandler // the running kernel's handler under test
	sessions []string
	files    map[string][]*cfile
	known    map[string]bool
}

func newContract() *contract {
	return &contract{files: map[string][]*cfile{}, known: map[string]bool{}}
}

// getID expects the get_id LUO calls for f, if the handler has one, and
// checks that its value is f's.
func (m *contract) getID(c *cursor, f *cfile) {
	if m.fh.Ops.GetID == nil {
		return
	}
	o := c.next(liveupdate.CallGetID, f.key)
	if o == nil {
		return
	}
	if f.hasID && o.id != f.id {
		c.failf("get_id(%s) returned %#x, earlier %#x: a file's id must not change while LUO holds it", f.key, o.id, f.id)
	}
	f.id, f.hasID = o.id, true
}

// preserve predicts PRESERVE_FD of f (not yet in the contract's files)
// and returns the errno the syscall must return.
func (m *contract) preserve(c *cursor, f *cfile) syscall.Errno {
	m.known[f.key] = true
	if o := c.next(liveupdate.CallCanPreserve, f.key); o != nil && o.err != 0 {
		c.failf("can_preserve(%s) said no to a file NewFile made", f.key)
	}
	f.hasID = false
	m.getID(c, f)
	o := c.next(liveupdate.CallPreserve, f.key)
	if o == nil {
		return 0
	}
	if o.err != 0 {
		m.getID(c, f) // the unwind takes it out of the map again
		return o.err
	}
	f.state = filePreserved
	if !contains(m.sessions, f.sess) {
		m.sessions = append(m.sessions, f.sess)
	}
	m.files[f.sess] = append(m.files[f.sess], f)
	return 0
}

// kexec predicts the reboot: every file frozen, session by session in
// creation order, files in preservation order; a freeze that fails
// unfreezes the files of its session before it, then every file of the
// earlier sessions, last session first. It returns the errno the reboot
// must return.
func (m *contract) kexec(c *cursor) syscall.Errno {
	for si, s := range m.sessions {
		for fi, f := range m.files[s] {
			if m.fh.Ops.Freeze == nil {
				continue
			}
			o := c.next(liveupdate.CallFreeze, f.key)
			if o == nil || o.err == 0 {
				continue
			}
			if m.fh.Ops.Unfreeze != nil {
				for _, g := range m.files[s][:fi] {
					c.next(liveupdate.CallUnfreeze, g.key)
				}
				for sj := si - 1; sj >= 0; sj-- {
					for _, g := range m.files[m.sessions[sj]] {
						c.next(liveupdate.CallUnfreeze, g.key)
					}
				}
			}
			return o.err
		}
	}
	return 0
}

// abort predicts the close of outgoing session s: every file
// unpreserved, newest first, each then taken out of the map (get_id).
func (m *contract) abort(c *cursor, s string) syscall.Errno {
	files := m.files[s]
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		c.next(liveupdate.CallUnpreserve, f.key)
		m.getID(c, f)
		f.state = fileFinished
	}
	delete(m.files, s)
	for i, x := range m.sessions {
		if x == s {
			m.sessions = append(m.sessions[:i:i], m.sessions[i+1:]...)
			break
		}
	}
	return 0
}

// booted moves every file to the next kernel, whose handler is fh.
func (m *contract) booted(fh *liveupdate.FileHandler) {
	m.fh = fh
	for _, s := range m.sessions {
		for _, f := range m.files[s] {
			f.state = fileIncoming
			f.hasID = false
		}
	}
}

// retrieve predicts RETRIEVE_FD of f and returns the errno it must
// return.
func (m *contract) retrieve(c *cursor, f *cfile) syscall.Errno {
	switch f.state {
	case fileRetrieved:
		return 0
	case fileRetrieveFailed:
		return f.retrieveErr
	}
	o := c.next(liveupdate.CallRetrieve, f.key)
	if o == nil {
		return 0
	}
	if o.err != 0 {
		f.state, f.retrieveErr = fileRetrieveFailed, o.err
		return o.err
	}
	f.state = fileRetrieved
	m.getID(c, f)
	return 0
}

// finish predicts SESSION_FINISH of session s: can_finish of every file
// in order, the first no is EBUSY with nothing finished; then finish of
// every file newest first, a retrieved one leaving the map (get_id).
func (m *contract) finish(c *cursor, s string) syscall.Errno {
	files := m.files[s]
	if m.fh.Ops.CanFinish != nil {
		for _, f := range files {
			if o := c.next(liveupdate.CallCanFinish, f.key); o != nil && o.err != 0 {
				return syscall.EBUSY
			}
		}
	}
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		c.next(liveupdate.CallFinish, f.key)
		if f.state == fileRetrieved {
			m.getID(c, f)
		}
		f.state = fileFinished
	}
	delete(m.files, s)
	return 0
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
