package fdt

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeMisc writes the "misc" tree of testdata/libfdt_ref.c.
func writeMisc(buf []byte, flags uint32) ([]byte, error) {
	w, err := CreateWithFlags(buf, flags)
	if err != nil {
		return nil, err
	}
	steps := []func() error{
		func() error { return w.AddReservemapEntry(0x1000, 0x2000) },
		func() error { return w.AddReservemapEntry(0xffffffff00000000, 0x10) },
		w.FinishReservemap,
		func() error { return w.BeginNode("") },
		func() error { return w.PropertyString("compatible", "test,misc") },
		func() error { return w.PropertyU32("#address-cells", 2) },
		func() error { return w.PropertyU32("#size-cells", 1) },
		func() error { return w.PropertyString("model", "luomodel misc tree") },
		func() error { return w.BeginNode("cpus") },
		func() error { return w.BeginNode("cpu@0") },
		func() error { return w.PropertyU32("linux,phandle", 1) },
		func() error { return w.PropertyU32("phandle", 1) },
		func() error { return w.PropertyString("compatible", "test,cpu") },
		w.EndNode,
		func() error { return w.BeginNode("cpu@1") },
		func() error { return w.PropertyU32("phandle", 2) },
		w.EndNode,
		w.EndNode,
		func() error { return w.BeginNode("memory@80000000") },
		func() error { return w.Property("compatible", []byte("test,mem\x00test,generic\x00")) },
		func() error { return w.PropertyU64("reg", 0x80000000) },
		func() error { return w.Property("empty", nil) },
		func() error { return w.Property("bytes", []byte{0xde, 0xad, 0xbe, 0xef, 0x01}) },
		w.EndNode,
		w.EndNode,
		w.Finish,
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	return w.Bytes(), nil
}

// TestWriterMatchesLibfdt compares the whole 4096-byte buffer with what the
// real libfdt (1.6.1, testdata/libfdt_ref.c) leaves in it for the same calls.
func TestWriterMatchesLibfdt(t *testing.T) {
	cases := []struct {
		file  string
		write func([]byte) ([]byte, error)
	}{
		{"luo.libfdt.bin", writeLUO},
		{"kho.libfdt.bin", writeKHO},
		{"misc.libfdt.bin", func(b []byte) ([]byte, error) { return writeMisc(b, 0) }},
		{"misc-nodedup.libfdt.bin", func(b []byte) ([]byte, error) { return writeMisc(b, CreateFlagNoNameDedup) }},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", c.file))
			require.NoError(t, err)
			buf := bytes.Repeat([]byte{0xa5}, 4096) // Create must clear it
			blob, err := c.write(buf)
			require.NoError(t, err)
			require.Equal(t, want, buf)
			require.NoError(t, Check(blob))
		})
	}
}

func TestCreateErrors(t *testing.T) {
	_, err := Create(make([]byte, 47))
	require.ErrorIs(t, err, ErrNoSpace)
	w, err := Create(make([]byte, 48))
	require.NoError(t, err)
	require.ErrorIs(t, w.FinishReservemap(), ErrNoSpace) // no room for the terminator
	_, err = CreateWithFlags(make([]byte, 64), 2)
	require.ErrorIs(t, err, ErrBadFlags)
	_, err = Create(nil)
	require.ErrorIs(t, err, ErrNoSpace)
}

func TestWriterInProgressHeader(t *testing.T) {
	buf := make([]byte, 256)
	w, err := Create(buf)
	require.NoError(t, err)
	require.Equal(t, SWMagic, be32(buf, hdrMagic))
	require.Equal(t, uint32(256), be32(buf, hdrTotalSize))
	require.Equal(t, uint32(0), be32(buf, hdrOffDtStrings)) // memrsv state
	require.NoError(t, w.FinishReservemap())
	require.Equal(t, uint32(256), be32(buf, hdrOffDtStrings)) // struct state
	require.NoError(t, w.BeginNode(""))
	require.NoError(t, w.PropertyU32("a", 1))
	require.Equal(t, uint32(2), be32(buf, hdrSizeDtStrings))
	require.Equal(t, []byte("a\x00"), buf[254:])
	require.Nil(t, w.Bytes())
	// a reader refuses an unfinished tree
	require.ErrorIs(t, CheckHeader(buf), ErrBadState)
}

func TestWriterStateErrors(t *testing.T) {
	newW := func() *Writer {
		w, err := Create(make([]byte, 1024))
		require.NoError(t, err)
		return w
	}

	// memrsv state: no struct calls
	w := newW()
	require.ErrorIs(t, w.BeginNode(""), ErrBadState)
	require.ErrorIs(t, w.Property("a", nil), ErrBadState)
	require.ErrorIs(t, w.EndNode(), ErrBadState)
	require.ErrorIs(t, w.Finish(), ErrBadState)
	require.NoError(t, w.AddReservemapEntry(1, 2))
	require.NoError(t, w.FinishReservemap())

	// struct state: no reserve map calls
	require.ErrorIs(t, w.AddReservemapEntry(1, 2), ErrBadState)
	require.ErrorIs(t, w.FinishReservemap(), ErrBadState)
	// no property, EndNode or Finish before the root
	require.ErrorIs(t, w.Property("a", nil), ErrBadState)
	require.ErrorIs(t, w.EndNode(), ErrBadState)
	require.ErrorIs(t, w.Finish(), ErrBadState)
	// names
	require.ErrorIs(t, w.BeginNode("root"), ErrBadValue)
	require.NoError(t, w.BeginNode(""))
	require.ErrorIs(t, w.BeginNode(""), ErrBadValue)
	require.ErrorIs(t, w.BeginNode("a/b"), ErrBadValue)
	require.ErrorIs(t, w.BeginNode("a\x00b"), ErrBadValue)
	require.ErrorIs(t, w.Property("", nil), ErrBadValue)
	require.ErrorIs(t, w.Property("a\x00", nil), ErrBadValue)
	require.ErrorIs(t, w.PropertyString("s", "a\x00b"), ErrBadValue)
	_, err := w.PropertyPlaceholder("p", -1)
	require.ErrorIs(t, err, ErrBadValue)
	require.NoError(t, w.Property("a", nil))
	require.NoError(t, w.BeginNode("child"))
	require.ErrorIs(t, w.Finish(), ErrBadState) // open nodes
	require.NoError(t, w.Property("b", []byte{1}))
	require.NoError(t, w.EndNode())
	// properties after a subnode
	require.ErrorIs(t, w.Property("c", nil), ErrBadState)
	require.ErrorIs(t, w.Finish(), ErrBadState) // root still open
	require.NoError(t, w.BeginNode("sibling"))
	require.NoError(t, w.Property("c", nil)) // a new node takes properties again
	require.NoError(t, w.EndNode())
	require.NoError(t, w.EndNode())
	// a second root
	require.ErrorIs(t, w.BeginNode(""), ErrBadState)
	require.ErrorIs(t, w.EndNode(), ErrBadState)
	require.ErrorIs(t, w.Property("x", nil), ErrBadState)
	require.NoError(t, w.Finish())
	require.NotNil(t, w.Bytes())
	// complete state: nothing
	require.ErrorIs(t, w.Finish(), ErrBadState)
	require.ErrorIs(t, w.BeginNode("x"), ErrBadState)
	require.ErrorIs(t, w.AddReservemapEntry(0, 0), ErrBadState)
	require.NoError(t, Check(w.Bytes()))
}

func TestWriterMaxDepth(t *testing.T) {
	w, err := Create(make([]byte, 8192))
	require.NoError(t, err)
	require.NoError(t, w.FinishReservemap())
	require.NoError(t, w.BeginNode(""))
	for i := 1; i < MaxDepth; i++ {
		require.NoError(t, w.BeginNode("n"))
	}
	require.ErrorIs(t, w.BeginNode("n"), ErrBadStructure)
	for range MaxDepth {
		require.NoError(t, w.EndNode())
	}
	require.NoError(t, w.Finish())
	require.NoError(t, Check(w.Bytes()))
	f, err := Open(w.Bytes())
	require.NoError(t, err)
	path := ""
	for i := 1; i < MaxDepth; i++ {
		path += "/n"
	}
	off, err := f.PathOffset(path)
	require.NoError(t, err)
	d, err := f.NodeDepth(off)
	require.NoError(t, err)
	require.Equal(t, MaxDepth-1, d)
	p, err := f.GetPath(off)
	require.NoError(t, err)
	require.Equal(t, path, p)
}

// TestWriterNoSpaceBoundary: a tree that takes exactly N bytes fits in an
// N-byte buffer and fails with ErrNoSpace in N-1, and every failing call
// leaves the writer usable (errors are not sticky).
func TestWriterNoSpaceBoundary(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func([]byte) ([]byte, error)
	}{
		{"luo", writeLUO},
		{"kho", writeKHO},
		{"misc", func(b []byte) ([]byte, error) { return writeMisc(b, 0) }},
		{"misc-nodedup", func(b []byte) ([]byte, error) { return writeMisc(b, CreateFlagNoNameDedup) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			full, err := c.write(make([]byte, 4096))
			require.NoError(t, err)
			n := len(full)
			exact, err := c.write(make([]byte, n))
			require.NoError(t, err)
			require.Equal(t, full, exact)
			require.NoError(t, Check(exact))
			for size := 0; size < n; size++ {
				_, err := c.write(make([]byte, size))
				require.ErrorIs(t, err, ErrNoSpace, "size %d", size)
			}
		})
	}
}

func TestWriterNotSticky(t *testing.T) {
	// Room for the header, terminator, root, one small property; a big one
	// fails and changes nothing.
	buf := make([]byte, 128)
	w, err := Create(buf)
	require.NoError(t, err)
	require.NoError(t, w.FinishReservemap())
	require.NoError(t, w.BeginNode(""))
	before := append([]byte(nil), buf...)
	require.ErrorIs(t, w.Property("big", make([]byte, 100)), ErrNoSpace)
	require.ErrorIs(t, w.Property("huge", make([]byte, 1<<20)), ErrNoSpace)
	_, err = w.PropertyPlaceholder("huge", 1<<40)
	require.ErrorIs(t, err, ErrNoSpace)
	require.Equal(t, before[:60], buf[:60]) // header and struct block untouched
	require.Equal(t, uint32(0), be32(buf, hdrSizeDtStrings), "the name was rolled back")
	require.NoError(t, w.PropertyU32("small", 7))
	require.NoError(t, w.EndNode())
	require.NoError(t, w.Finish())
	f, err := Open(w.Bytes())
	require.NoError(t, err)
	v, err := f.GetPropU32(0, "small")
	require.NoError(t, err)
	require.Equal(t, uint32(7), v)
	_, err = f.GetProp(0, "big")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestWriterStringDedup(t *testing.T) {
	write := func(flags uint32) *FDT {
		w, err := CreateWithFlags(make([]byte, 512), flags)
		require.NoError(t, err)
		require.NoError(t, w.FinishReservemap())
		require.NoError(t, w.BeginNode(""))
		require.NoError(t, w.PropertyU32("linux,phandle", 1))
		require.NoError(t, w.PropertyU32("phandle", 2)) // a suffix of the first
		require.NoError(t, w.BeginNode("c"))
		require.NoError(t, w.PropertyU32("phandle", 3))
		require.NoError(t, w.PropertyU32("linux,phandle", 4))
		require.NoError(t, w.EndNode())
		require.NoError(t, w.EndNode())
		require.NoError(t, w.Finish())
		f, err := Open(w.Bytes())
		require.NoError(t, err)
		require.NoError(t, f.Check())
		for _, c := range []struct {
			node  string
			name  string
			value uint32
		}{{"/", "linux,phandle", 1}, {"/", "phandle", 2}, {"/c", "phandle", 3}, {"/c", "linux,phandle", 4}} {
			off, err := f.PathOffset(c.node)
			require.NoError(t, err)
			v, err := f.GetPropU32(off, c.name)
			require.NoError(t, err)
			require.Equal(t, c.value, v)
		}
		return f
	}
	require.Equal(t, uint32(len("linux,phandle")+1), write(0).Header().SizeDtStrings)
	require.Equal(t, uint32(2*len("linux,phandle")+2+2*len("phandle")+2), write(CreateFlagNoNameDedup).Header().SizeDtStrings)
}

func TestWriterPlaceholder(t *testing.T) {
	b := mustKHO(t)
	f, err := Open(b)
	require.NoError(t, err)
	v, err := f.GetPropU64LE(0, "preserved-memory-map")
	require.NoError(t, err)
	require.Equal(t, uint64(testKHOMemMapPA), v)
	_, err = f.GetPropU64LE(0, "compatible")
	require.ErrorIs(t, err, ErrBadValue)
}

func TestWriterHeader(t *testing.T) {
	b := mustLUO(t)
	h := decodeHeader(b)
	require.Equal(t, Magic, h.Magic)
	require.Equal(t, uint32(Version), h.Version)
	require.Equal(t, uint32(LastCompatibleVersion), h.LastCompVersion)
	require.Equal(t, uint32(len(b)), h.TotalSize)
	require.Equal(t, uint32(48), h.OffMemRsvmap)
	require.Equal(t, h.OffMemRsvmap+ReserveEntrySize, h.OffDtStruct)
	require.Equal(t, h.OffDtStruct+h.SizeDtStruct, h.OffDtStrings)
	require.Equal(t, h.TotalSize, h.OffDtStrings+h.SizeDtStrings)
	require.Equal(t, TagEnd, binary.BigEndian.Uint32(b[h.OffDtStrings-4:]))
}

// TestWriterRollbackLeavesNoGarbage: a property whose name was added to the
// strings block but whose value did not fit is rolled back; the structure
// block may later grow over the bytes the name left behind, and those must
// not leak into names, padding or placeholders. (Found by
// FuzzWriterRoundTrip.)
func TestWriterRollbackLeavesNoGarbage(t *testing.T) {
	buf := make([]byte, 160)
	w, err := Create(buf)
	require.NoError(t, err)
	require.NoError(t, w.FinishReservemap())
	require.NoError(t, w.BeginNode(""))
	long := string(bytes.Repeat([]byte{'x'}, 60))
	require.ErrorIs(t, w.Property(long, make([]byte, 64)), ErrNoSpace)
	require.Equal(t, bytes.Repeat([]byte{'x'}, 60), buf[160-61:159], "the rolled-back name is still there")
	require.NoError(t, w.BeginNode("abcde")) // padding runs over the stale name
	p, err := w.PropertyPlaceholder("p", 5)
	require.NoError(t, err)
	require.Equal(t, make([]byte, 5), p)
	require.NoError(t, w.EndNode())
	require.NoError(t, w.EndNode())
	require.NoError(t, w.Finish())
	b := w.Bytes()
	require.NoError(t, Check(b))
	require.NotContains(t, string(b), "x")
}
