package fdt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzReaderMaxInput bounds a FuzzReader input to a page, the size of
// every hand-over FDT the kernel parses (KHO's root FDT, LUO's FDTSize).
// The body probes each structure offset with lookups that each walk the
// tree, so its work grows with the square of the input (the cube for a
// deep chain): grown inputs of 50 KiB took 3 to 8 s per execution, which
// collapsed execs/s and kept the fuzzer from stopping at -fuzztime.
const fuzzReaderMaxInput = 4096

// FuzzReader opens arbitrary bytes (the first fuzzReaderMaxInput of them),
// runs Check, walks every node and property and probes every offset-taking
// function at every tag; nothing may panic or hang, and every error is a
// libfdt error. A tree that Check accepts must also be walkable without
// any error, and its lookups must agree with the walk.
//
//	go test -run='^$' -fuzz=FuzzReader ./kernel/lib/fdt/
func FuzzReader(f *testing.F) {
	misc, _ := writeMisc(make([]byte, 4096), 0)
	for _, b := range [][]byte{mustLUO(f), mustKHO(f), misc, deep(MaxDepth + 2).blob()} {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRead(t, b) })
}

// isLibfdtErr reports whether err is nil or one of the package's errors.
func isLibfdtErr(err error) bool {
	return err == nil || errors.As(err, new(Error))
}

// fuzzRead is FuzzReader's body. It returns the number of offsets it
// probed, the measure of its work (each probe walks the tree a few times).
func fuzzRead(t testing.TB, b []byte) (probes int) {
	b = b[:min(len(b), fuzzReaderMaxInput)]
	fz, err := Open(b)
	if err != nil {
		if !isLibfdtErr(err) {
			t.Fatalf("Open: non-libfdt error %v", err)
		}
		return 0
	}
	checkErr := fz.Check()
	_, walkErr := dumpTree(fz)
	if !isLibfdtErr(checkErr) || !isLibfdtErr(walkErr) {
		t.Fatalf("non-libfdt error: Check %v, walk %v", checkErr, walkErr)
	}
	if checkErr == nil && walkErr != nil {
		t.Fatalf("Check accepted a tree the walk fails on: %v", walkErr)
	}
	// Exercise the offset-taking functions at every tag and at some
	// bogus offsets.
	probe := func(off int) {
		probeOffset(fz, off)
		probes++
	}
	probe(-1)
	probe(1)
	probe(fz.StructSize())
	for off := 0; off >= 0; {
		tag, next, err := fz.NextTag(off)
		probe(off)
		if err != nil || tag == TagEnd {
			break
		}
		if next <= off {
			t.Fatalf("NextTag(%d) went back to %d", off, next)
		}
		off = next
	}
	for _, p := range []string{"/", "/luo-session", "/LUO", "/cpus/cpu@0", "/a/b", "alias/x"} {
		if _, err := fz.PathOffset(p); !isLibfdtErr(err) {
			t.Fatalf("PathOffset(%q): non-libfdt error %v", p, err)
		}
	}
	if checkErr == nil {
		checkLookups(t, fz)
	}
	return probes
}

// checkLookups walks a tree Check accepted node by node and checks the
// lookups against the walk: every node's path leads back to a node of
// that path (the first of equal siblings), its depth and parent are the
// walk's, and each of its property names finds the first property of that
// name of the node.
func checkLookups(t testing.TB, fz *FDT) {
	var parents []int // offsets of the open nodes, root first
	depth := 0
	for off := 0; ; {
		parents = append(parents[:depth], off)
		path, err := fz.GetPath(off)
		if err != nil {
			t.Fatalf("GetPath(%d): %v", off, err)
		}
		found, err := fz.PathOffset(path)
		if err != nil {
			t.Fatalf("PathOffset(%q): %v", path, err)
		}
		if back, err := fz.GetPath(found); err != nil || back != path {
			t.Fatalf("PathOffset(%q) = %d, whose path is %q (%v)", path, found, back, err)
		}
		if d, err := fz.NodeDepth(off); err != nil || d != depth {
			t.Fatalf("NodeDepth(%d) = %d, %v; the walk is at %d", off, d, err, depth)
		}
		if depth > 0 {
			if p, err := fz.ParentOffset(off); err != nil || p != parents[depth-1] {
				t.Fatalf("ParentOffset(%d) = %d, %v; want %d", off, p, err, parents[depth-1])
			}
		}
		first := map[string][]byte{}
		p, err := fz.FirstProperty(off)
		for ; err == nil; p, err = fz.NextProperty(p) {
			name, val, perr := fz.GetPropertyByOffset(p)
			if perr != nil {
				t.Fatalf("property at %d: %v", p, perr)
			}
			if _, dup := first[name]; !dup {
				first[name] = val
			}
		}
		if err != ErrNotFound {
			t.Fatalf("properties of %q: %v", path, err)
		}
		for name, val := range first {
			if got, err := fz.GetProp(off, name); err != nil || !bytes.Equal(got, val) {
				t.Fatalf("GetProp(%q, %q) = %x, %v; want %x", path, name, got, err, val)
			}
		}
		next := depth
		off, err = fz.NextNode(off, &next)
		if err == ErrNotFound || (err == nil && next < 0) {
			return // past the root's FDT_END_NODE
		}
		if err != nil {
			t.Fatalf("NextNode after %q: %v", path, err)
		}
		depth = next
	}
}

// TestFuzzReaderBoundsWork: the tree shapes that make FuzzReader's probes
// quadratic or worse (a deep chain, a long sibling list, runs of NOPs or
// properties) are probed at every tag while they fit in a page, and cut to
// a page beyond it, so no input costs more than a page's probes. Without
// the bound the 16-page chain below takes tens of seconds.
func TestFuzzReaderBoundsWork(t *testing.T) {
	shapes := map[string]func(n int) *rawTree{
		"deep chain": deep,
		"siblings": func(n int) *rawTree {
			r := (&rawTree{}).begin("")
			for range n {
				r.begin("a").end()
			}
			return r.end().fin()
		},
		"nops": func(n int) *rawTree {
			r := (&rawTree{}).begin("")
			for range n {
				r.nop()
			}
			return r.end().fin()
		},
		"properties": func(n int) *rawTree {
			r := (&rawTree{}).begin("")
			for range n {
				r.prop("compatible", []byte("luo-v1\x00"))
			}
			return r.end().fin()
		},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			n := 1
			for len(shape(n+1).blob()) <= fuzzReaderMaxInput {
				n++
			}
			page := shape(n).blob()
			f := openT(t, page)
			tags := 0 // FDT_END included
			for off := 0; ; off = tagsNext(t, f, off) {
				tags++
				if tag, _, _ := f.NextTag(off); tag == TagEnd {
					break
				}
			}
			require.Equal(t, 3+tags, fuzzRead(t, page), "3 bogus offsets and every tag of a page-sized tree are probed")
			big := shape(16 * n).blob()
			require.Greater(t, len(big), 8*fuzzReaderMaxInput)
			require.Zero(t, fuzzRead(t, big), "a %d-byte tree is cut to a page", len(big))
		})
	}
}

// tagsNext returns the offset of the tag after the one at off, which must
// be well formed.
func tagsNext(t *testing.T, f *FDT, off int) int {
	_, next, err := f.NextTag(off)
	require.NoError(t, err)
	return next
}

// fuzzWriterMaxOps bounds the operation bytes of a FuzzWriterRoundTrip
// input: the tree is at most 8 KiB, filled by a few thousand operations;
// the rest of a grown input would only repeat ErrNoSpace.
const fuzzWriterMaxOps = 16 << 10

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
		roundTrip(t, int(size), data[:min(len(data), fuzzWriterMaxOps)])
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
