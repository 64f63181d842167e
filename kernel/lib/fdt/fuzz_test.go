package fdt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzReader opens arbitrary bytes, runs Check, walks every node and
// property and calls the lookups; nothing may panic or hang. A tree that
// Check accepts must also be walkable without any error.
//
//	go test -run='^$' -fuzz=FuzzReader ./kernel/lib/fdt/
func FuzzReader(f *testing.F) {
	misc, _ := writeMisc(make([]byte, 4096), 0)
	for _, b := range [][]byte{mustLUO(f), mustKHO(f), misc, deep(MaxDepth + 2).blob()} {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fz, err := Open(b)
		if err != nil {
			if !errors.As(err, new(Error)) {
				t.Fatalf("Open: non-libfdt error %v", err)
			}
			return
		}
		checkErr := fz.Check()
		dump, walkErr := dumpTree(fz)
		if checkErr == nil && walkErr != nil {
			t.Fatalf("Check accepted a tree the walk fails on: %v", walkErr)
		}
		// Exercise the offset-taking functions at every node and
		// property the walk can reach, and at some bogus offsets.
		probeOffset(fz, -1)
		probeOffset(fz, 1)
		probeOffset(fz, fz.StructSize())
		for off := 0; off >= 0; {
			tag, next, err := fz.NextTag(off)
			probeOffset(fz, off)
			if err != nil || tag == TagEnd {
				break
			}
			if next <= off {
				t.Fatalf("NextTag(%d) went back to %d", off, next)
			}
			off = next
		}
		for _, p := range []string{"/", "/luo-session", "/LUO", "/cpus/cpu@0", "/a/b", "alias/x"} {
			_, _ = fz.PathOffset(p)
		}
		if checkErr != nil {
			return
		}
		// Every node's path leads to a node; every property name of a
		// node finds a property of that node.
		for _, line := range strings.Split(strings.TrimSuffix(dump, "\n"), "\n") {
			if strings.HasPrefix(line, "/memreserve/") || strings.HasPrefix(line, "  ") {
				continue
			}
			if _, err := fz.PathOffset(line); err != nil {
				t.Fatalf("PathOffset(%q): %v", line, err)
			}
		}
	})
}

// FuzzWriterRoundTrip drives the Writer with operations decoded from the
// input, keeping a model of the tree it should hold; whatever the writer
// accepts must read back exactly, and the only errors it may return are
// the ones the model predicts (or ErrNoSpace).
//
//	go test -run='^$' -fuzz=FuzzWriterRoundTrip ./kernel/lib/fdt/
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add(uint16(4096), []byte("\x02\x01\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00"+
		"\x01\x0acompatible\x06luo-v1\x00\x05child\x01\x01p\x03abc\x02"))
	f.Add(uint16(100), []byte("\x00\x01\x01a\x00\x00\x01b\x01\x01a\x01x\x02\x01\x01a\x01y"))
	f.Add(uint16(0), []byte("\x00\x00\x00\x00\x00\x00\x02\x02\x02"))
	f.Add(uint16(300), []byte("\x00\x00\x02a/b\x00\x00\x00\x01\x00\x02\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, size uint16, data []byte) {
		roundTrip(t, int(size), data)
	})
}

// opReader decodes fuzz input.
type opReader struct{ b []byte }

func (r *opReader) byte() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

// bytes returns a length-prefixed byte string.
func (r *opReader) bytes() []byte {
	n, _ := r.byte()
	if int(n) > len(r.b) {
		n = byte(len(r.b))
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *opReader) u64() uint64 {
	var v uint64
	for range 8 {
		c, _ := r.byte()
		v = v<<8 | uint64(c)
	}
	return v
}

type modelNode struct {
	path  string
	props []string // "  name = hex" lines
}

func roundTrip(t *testing.T, size int, data []byte) {
	r := &opReader{data}
	buf := make([]byte, size%8192)
	w, err := Create(buf)
	if len(buf) < 48 {
		if err != ErrNoSpace {
			t.Fatalf("Create(%d bytes): %v", len(buf), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	var want strings.Builder
	nrsv, _ := r.byte()
	rsvDone := false
	for range nrsv % 4 {
		a, s := r.u64(), r.u64()
		err := w.AddReservemapEntry(a, s)
		if err == ErrNoSpace {
			continue
		}
		if err != nil {
			t.Fatalf("AddReservemapEntry: %v", err)
		}
		if s == 0 {
			rsvDone = true // fdt_num_mem_rsv() stops at the first size 0
		}
		if !rsvDone {
			fmt.Fprintf(&want, "/memreserve/ %#x %#x;\n", a, s)
		}
	}
	if err := w.FinishReservemap(); err != nil {
		if err != ErrNoSpace {
			t.Fatalf("FinishReservemap: %v", err)
		}
		return
	}

	var nodes []*modelNode
	var stack []*modelNode
	afterSub := false
	rootDone := false
	finished := false
	// predicted error of each call, before space is considered
	beginErr := func(name string) error {
		switch {
		case finished || rootDone:
			return ErrBadState
		case len(stack) >= MaxDepth:
			return ErrBadStructure
		case strings.IndexByte(name, 0) >= 0:
			return ErrBadValue
		case len(stack) == 0 && name != "":
			return ErrBadValue
		case len(stack) > 0 && (name == "" || strings.IndexByte(name, '/') >= 0):
			return ErrBadValue
		}
		return nil
	}
	propErr := func(name string) error {
		switch {
		case finished || len(stack) == 0 || afterSub:
			return ErrBadState
		case name == "" || strings.IndexByte(name, 0) >= 0:
			return ErrBadValue
		}
		return nil
	}
	expect := func(what string, got, predicted error) bool {
		if got == predicted {
			return got == nil
		}
		if got == ErrNoSpace && predicted == nil {
			return false
		}
		t.Fatalf("%s: got %v, model predicted %v", what, got, predicted)
		return false
	}
	begin := func(name string) {
		if !expect("BeginNode("+name+")", w.BeginNode(name), beginErr(name)) {
			return
		}
		path := "/"
		if len(stack) > 0 {
			parent := stack[len(stack)-1].path
			path = strings.TrimSuffix(parent, "/") + "/" + name
		}
		n := &modelNode{path: path}
		nodes = append(nodes, n)
		stack = append(stack, n)
		afterSub = false
	}
	end := func() {
		var predicted error
		if finished || len(stack) == 0 {
			predicted = ErrBadState
		}
		if !expect("EndNode", w.EndNode(), predicted) {
			return
		}
		stack = stack[:len(stack)-1]
		afterSub = true
		if len(stack) == 0 {
			rootDone = true
		}
	}

	for {
		op, ok := r.byte()
		if !ok {
			break
		}
		switch op % 8 {
		case 0:
			begin(string(r.bytes()))
		case 1, 5:
			name, val := string(r.bytes()), r.bytes()
			if expect("Property("+name+")", w.Property(name, val), propErr(name)) {
				stack[len(stack)-1].props = append(stack[len(stack)-1].props,
					fmt.Sprintf("  %s = %s\n", name, hex.EncodeToString(val)))
			}
		case 2:
			end()
		case 3:
			name, v := string(r.bytes()), r.u64()
			if expect("PropertyU64("+name+")", w.PropertyU64(name, v), propErr(name)) {
				stack[len(stack)-1].props = append(stack[len(stack)-1].props,
					fmt.Sprintf("  %s = %016x\n", name, v))
			}
		case 4:
			name, s := string(r.bytes()), string(r.bytes())
			predicted := propErr(name)
			if predicted == nil && strings.IndexByte(s, 0) >= 0 {
				predicted = ErrBadValue
			}
			if expect("PropertyString("+name+")", w.PropertyString(name, s), predicted) {
				stack[len(stack)-1].props = append(stack[len(stack)-1].props,
					fmt.Sprintf("  %s = %s\n", name, hex.EncodeToString(append([]byte(s), 0))))
			}
		case 6:
			// a root, if there is none yet
			if len(nodes) == 0 {
				begin("")
			}
		case 7:
			var predicted error
			if finished || len(stack) != 0 || !rootDone {
				predicted = ErrBadState
			}
			if expect("Finish(early)", w.Finish(), predicted) {
				finished = true
			}
		}
	}
	if !finished {
		// close what is open (a tiny buffer may not allow even that)
		if len(nodes) == 0 {
			begin("")
			if len(nodes) == 0 {
				return // ErrNoSpace
			}
		}
		for len(stack) > 0 {
			before := len(stack)
			end()
			if len(stack) == before {
				return // ErrNoSpace
			}
		}
		if err := w.Finish(); err != nil {
			if err == ErrNoSpace {
				return
			}
			t.Fatalf("Finish: %v", err)
		}
	}
	blob := w.Bytes()
	if blob == nil {
		t.Fatal("Bytes() nil after Finish")
	}
	if err := Check(blob); err != nil {
		t.Fatalf("Check of the writer's output: %v", err)
	}
	for _, n := range nodes {
		want.WriteString(n.path + "\n")
		for _, p := range n.props {
			want.WriteString(p)
		}
	}
	got, err := dumpTree(openT(t, blob))
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if got != want.String() {
		t.Fatalf("round trip mismatch:\n got:\n%s\nwant:\n%s", got, want.String())
	}
}
