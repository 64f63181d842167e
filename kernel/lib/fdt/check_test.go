package fdt

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func withHeader(b []byte, field int, v uint32) []byte {
	c := append([]byte(nil), b...)
	put32(c, field, v)
	return c
}

func TestCheckHeaderErrors(t *testing.T) {
	b := mustLUO(t)
	h := decodeHeader(b)
	require.NoError(t, CheckHeader(b))

	// every truncation
	for n := range len(b) {
		require.ErrorIs(t, CheckHeader(b[:n]), ErrTruncated, "len %d", n)
		_, err := Open(b[:n])
		require.ErrorIs(t, err, ErrTruncated)
		require.ErrorIs(t, Check(b[:n]), ErrTruncated)
	}

	for _, c := range []struct {
		name  string
		field int
		v     uint32
		want  error
	}{
		{"bad magic", hdrMagic, 0xd00dfeee, ErrBadMagic},
		{"sw magic", hdrMagic, SWMagic, ErrBadState},
		{"version 15", hdrVersion, 15, ErrBadVersion},
		{"version 2", hdrVersion, 2, ErrBadVersion},
		{"last comp 18", hdrLastCompVersion, 18, ErrBadVersion},
		{"totalsize below header", hdrTotalSize, 39, ErrTruncated},
		{"totalsize over blob", hdrTotalSize, h.TotalSize + 1, ErrTruncated},
		{"totalsize huge", hdrTotalSize, math.MaxUint32, ErrTruncated},
		{"rsvmap in header", hdrOffMemRsvmap, 8, ErrTruncated},
		{"rsvmap past end", hdrOffMemRsvmap, h.TotalSize + 1, ErrTruncated},
		{"struct in header", hdrOffDtStruct, 0, ErrTruncated},
		{"struct past end", hdrOffDtStruct, h.TotalSize - 4, ErrTruncated},
		{"struct size too big", hdrSizeDtStruct, h.TotalSize, ErrTruncated},
		{"struct size wraps", hdrSizeDtStruct, math.MaxUint32 - 8, ErrTruncated},
		{"strings past end", hdrOffDtStrings, h.TotalSize + 1, ErrTruncated},
		{"strings size too big", hdrSizeDtStrings, h.SizeDtStrings + 1, ErrTruncated},
		{"strings size wraps", hdrSizeDtStrings, math.MaxUint32, ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := withHeader(b, c.field, c.v)
			require.ErrorIs(t, CheckHeader(bad), c.want)
			require.ErrorIs(t, Check(bad), c.want)
			_, err := Open(bad)
			require.ErrorIs(t, err, c.want)
		})
	}

	// version 16 is > last_comp_version 17
	bad := withHeader(withHeader(b, hdrVersion, 16), hdrLastCompVersion, 17)
	require.ErrorIs(t, CheckHeader(bad), ErrBadVersion)
	// a newer version with a compatible last_comp_version is fine
	require.NoError(t, Check(withHeader(b, hdrVersion, 18)))
}

// TestReadVersion16: version 16 headers have no size_dt_struct; the
// structure block then runs to the end of the blob.
func TestReadVersion16(t *testing.T) {
	b := withHeader(mustLUO(t), hdrVersion, 16)
	put32(b, hdrSizeDtStruct, 0xdeadbeef) // not part of a v16 header
	f := openT(t, b)
	require.NoError(t, f.Check())
	require.Zero(t, f.Header().SizeDtStruct)
	require.Greater(t, f.StructSize(), int(decodeHeader(mustLUO(t)).SizeDtStruct))
	s, err := dumpTree(f)
	require.NoError(t, err)
	want, err := dumpTree(openT(t, mustLUO(t)))
	require.NoError(t, err)
	require.Equal(t, want, s)
}

func deep(n int) *rawTree {
	r := &rawTree{}
	r.begin("")
	for range n - 1 {
		r.begin("d")
	}
	for range n {
		r.end()
	}
	return r.fin()
}

func TestCheckStructure(t *testing.T) {
	valid := func() *rawTree {
		r := &rawTree{}
		return r.begin("").prop("compatible", []byte("x\x00")).begin("a").prop("p", []byte{1, 2, 3}).end().end().fin()
	}
	require.NoError(t, Check(valid().blob()))
	require.NoError(t, Check(valid().blob(0x1000, 0x1000, 0x4000, 0x10)))

	nopTree := &rawTree{}
	nopTree.begin("").nop().prop("a", nil).nop().begin("b").nop().end().nop().end().nop().fin()
	require.NoError(t, Check(nopTree.blob()))

	for _, c := range []struct {
		name string
		blob func() []byte
		want error
	}{
		{"only END", func() []byte { return (&rawTree{}).fin().blob() }, ErrBadStructure},
		{"empty structure block", func() []byte { return (&rawTree{}).blob() }, ErrTruncated},
		{"no FDT_END", func() []byte { return (&rawTree{}).begin("").end().blob() }, ErrTruncated},
		{"never closes", func() []byte { return (&rawTree{}).begin("").begin("a").end().fin().blob() }, ErrBadStructure},
		{"never closes, no END", func() []byte { return (&rawTree{}).begin("").begin("a").blob() }, ErrTruncated},
		{"too deep", func() []byte { return deep(MaxDepth + 1).blob() }, ErrBadStructure},
		{"NOP before the root", func() []byte { return (&rawTree{}).nop().begin("").end().fin().blob() }, ErrBadStructure},
		{"unknown tag", func() []byte { return (&rawTree{}).begin("").u32(7).end().fin().blob() }, ErrBadStructure},
		{"END_NODE at depth 0", func() []byte { return (&rawTree{}).end().fin().blob() }, ErrBadStructure},
		{"property outside a node", func() []byte { return (&rawTree{}).prop("a", nil).begin("").end().fin().blob() }, ErrBadStructure},
		{"second root", func() []byte { return (&rawTree{}).begin("").end().begin("").end().fin().blob() }, ErrBadStructure},
		{"property after subnode", func() []byte {
			return (&rawTree{}).begin("").begin("a").end().nop().prop("p", nil).end().fin().blob()
		}, ErrBadStructure},
		{"named root", func() []byte { return (&rawTree{}).begin("root").end().fin().blob() }, ErrBadStructure},
		{"empty child name", func() []byte { return (&rawTree{}).begin("").begin("").end().end().fin().blob() }, ErrBadStructure},
		{"slash in name", func() []byte { return (&rawTree{}).begin("").begin("a/b").end().end().fin().blob() }, ErrBadStructure},
		{"unterminated node name", func() []byte {
			r := &rawTree{}
			r.u32(TagBeginNode)
			r.st = append(r.st, "abcd"...)
			return r.blob()
		}, ErrBadStructure},
		{"property value past block", func() []byte {
			r := (&rawTree{}).begin("")
			r.u32(TagProp).u32(1000).u32(r.str("p"))
			return r.end().fin().blob()
		}, ErrBadStructure},
		{"property header past block", func() []byte {
			return (&rawTree{}).begin("").u32(TagProp).u32(0).blob()
		}, ErrBadStructure},
		{"name offset outside strings", func() []byte {
			return (&rawTree{}).begin("").propOff(100, nil).end().fin().blob()
		}, ErrBadOffset},
		{"name offset huge", func() []byte {
			return (&rawTree{}).begin("").propOff(math.MaxUint32, nil).end().fin().blob()
		}, ErrBadOffset},
		{"name unterminated", func() []byte {
			r := (&rawTree{}).begin("")
			r.strs = append(r.strs, "abc"...)
			return r.propOff(0, nil).end().fin().blob()
		}, ErrTruncated},
		{"unterminated reserve map", func() []byte {
			b := valid().blob()
			for len(b)%8 != 0 {
				b = append(b, 0)
			}
			put32(b, hdrTotalSize, uint32(len(b)))
			put32(b, hdrOffMemRsvmap, uint32(len(b)-8)) // 8-aligned, no room for an entry
			return b
		}, ErrTruncated},
		{"misaligned structure block", func() []byte {
			r := valid()
			b := r.blob()
			// shift the structure block by 2 bytes
			off := be32(b, hdrOffDtStruct)
			nb := append(append(append([]byte(nil), b[:off]...), 0, 0), b[off:]...)
			put32(nb, hdrOffDtStruct, off+2)
			put32(nb, hdrOffDtStrings, be32(b, hdrOffDtStrings)+2)
			put32(nb, hdrTotalSize, uint32(len(nb)))
			return nb
		}, ErrAlignment},
		{"misaligned reserve map", func() []byte { return withHeader(valid().blob(), hdrOffMemRsvmap, 44) }, ErrAlignment},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.blob()
			require.ErrorIs(t, Check(b), c.want)
			readAll(t, b) // and nothing else panics or hangs on it
		})
	}
}

// readAll runs every reader entry point on b at every offset and checks
// that nothing panics; errors are expected.
func readAll(t testing.TB, b []byte) { readAllStep(t, b, 1) }

// readAllStep is readAll probing every step-th offset (and a few unaligned
// ones) only.
func readAllStep(t testing.TB, b []byte, step int) {
	f, err := Open(b)
	if err != nil {
		return
	}
	_ = f.Check()
	_, _ = dumpTree(f)
	_, _ = f.NumMemRsv()
	for off := -8; off < f.StructSize()+8; off += step {
		probeOffset(f, off)
	}
	probeOffset(f, 1)
	probeOffset(f, 6)
	for _, p := range []string{"/", "/a", "/a/b", "//a/", "a", "/luo-session", "/cpus/cpu", "/d/d/d"} {
		_, _ = f.PathOffset(p)
	}
	_, _ = f.String(0)
	_, _ = f.String(math.MaxUint32)
}

// probeOffset calls every function that takes a structure block offset.
func probeOffset(f *FDT, off int) {
	_, _, _ = f.NextTag(off)
	d := 0
	_, _ = f.NextNode(off, &d)
	_, _ = f.NextNode(off, nil)
	_, _ = f.FirstSubnode(off)
	_, _ = f.NextSubnode(off)
	_, _ = f.SubnodeOffset(off, "a")
	_, _ = f.GetName(off)
	_, _ = f.GetPath(off)
	_, _ = f.NodeDepth(off)
	_, _ = f.ParentOffset(off)
	_, _, _ = f.SupernodeAtDepthOffset(off, 1)
	_, _ = f.FirstProperty(off)
	_, _ = f.NextProperty(off)
	_, _, _ = f.GetPropertyByOffset(off)
	_, _ = f.GetProp(off, "compatible")
	_, _ = f.GetPropU32(off, "p")
	_, _ = f.GetPropU64(off, "p")
	_, _ = f.GetPropU64LE(off, "liveupdate-number")
	_, _ = f.GetPropString(off, "compatible")
	_ = f.NodeCheckCompatible(off, "luo-v1")
	_, _ = f.StringlistCount(off, "compatible")
	_, _ = f.StringlistSearch(off, "compatible", "x")
	_, _ = f.StringlistGet(off, "compatible", 1)
	_, _ = f.NodeOffsetByCompatible(off, "luo-session-v2")
	_, _ = f.NodeOffsetByPropValue(off, "p", []byte{1})
	_, _, _ = f.GetMemRsv(off)
}

func TestReadMalformed(t *testing.T) {
	// An unterminated nest: lookups end with errors, walks terminate.
	f := openT(t, (&rawTree{}).begin("").begin("a").begin("b").fin().blob())
	_, err := f.SubnodeOffset(0, "x")
	require.ErrorIs(t, err, ErrNotFound)
	off, err := f.PathOffset("/a/b")
	require.NoError(t, err)
	_, err = f.FirstSubnode(off)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.GetPath(off)
	require.NoError(t, err)

	// Deeper than MaxDepth: Check refuses, readers still work.
	n := 10 * MaxDepth
	f = openT(t, deep(n).blob())
	require.ErrorIs(t, f.Check(), ErrBadStructure)
	path := ""
	for range n - 1 {
		path += "/d"
	}
	off, err = f.PathOffset(path)
	require.NoError(t, err)
	d, err := f.NodeDepth(off)
	require.NoError(t, err)
	require.Equal(t, n-1, d)

	// Property name outside the strings block: skipped by lookups,
	// reported by offset.
	f = openT(t, (&rawTree{}).begin("").propOff(1000, []byte{1}).prop("ok", []byte{2}).end().fin().blob())
	v, err := f.GetProp(0, "ok")
	require.NoError(t, err)
	require.Equal(t, []byte{2}, v)
	p, err := f.FirstProperty(0)
	require.NoError(t, err)
	_, _, err = f.GetPropertyByOffset(p)
	require.ErrorIs(t, err, ErrBadOffset)

	// Unaligned and negative offsets.
	f = openT(t, mustLUO(t))
	for _, off := range []int{-4, -1, 1, 2, 3, 5} {
		_, err := f.GetName(off)
		require.ErrorIs(t, err, ErrBadOffset, "offset %d", off)
		_, err = f.FirstProperty(off)
		require.ErrorIs(t, err, ErrBadOffset)
		_, err = f.NextProperty(off)
		require.ErrorIs(t, err, ErrBadOffset)
	}
	_, err = f.SubnodeOffset(-1, "luo-session")
	require.ErrorIs(t, err, ErrBadOffset)
	_, err = f.SubnodeOffset(1, "luo-session")
	require.ErrorIs(t, err, ErrBadOffset)
	_, err = f.GetName(f.StructSize())
	require.ErrorIs(t, err, ErrBadOffset)
	_, err = f.GetName(1 << 40)
	require.ErrorIs(t, err, ErrBadOffset)

	// A string property without its NUL.
	f = openT(t, (&rawTree{}).begin("").prop("compatible", []byte("luo-v1")).end().fin().blob())
	_, err = f.GetPropString(0, "compatible")
	require.ErrorIs(t, err, ErrBadValue)
	require.ErrorIs(t, f.NodeCheckCompatible(0, "luo-v1"), ErrNotCompatible)
}

// TestCorruptEveryByte corrupts each byte of small valid blobs in several
// ways, and truncates them at every length, and runs every reader on the
// result: errors are fine, panics and hangs are not. Whatever Check
// accepts must also be walkable without errors.
func TestCorruptEveryByte(t *testing.T) {
	misc, err := writeMisc(make([]byte, 4096), 0)
	require.NoError(t, err)
	for name, b := range map[string][]byte{"luo": mustLUO(t), "kho": mustKHO(t), "misc": misc} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			try := func(c []byte) {
				readAllStep(t, c, TagSize)
				if Check(c) == nil {
					_, err := dumpTree(openT(t, c))
					require.NoError(t, err)
				}
			}
			c := make([]byte, len(b))
			for i := range b {
				for _, v := range []byte{0x00, 0xff, b[i] ^ 0x01, b[i] ^ 0x80, b[i] + 4, b[i] - 4} {
					copy(c, b)
					c[i] = v
					try(c)
				}
			}
			for n := range len(b) {
				try(b[:n])
			}
			// shrink totalsize with the bytes still there
			for n := range len(b) {
				c := append([]byte(nil), b...)
				binary.BigEndian.PutUint32(c[hdrTotalSize:], uint32(n))
				try(c)
			}
		})
	}
}

// TestOpenIsolatedFromLaterWrites: the header is cached by Open, so
// scribbling on it afterwards cannot move the bounds.
func TestOpenIsolatedFromLaterWrites(t *testing.T) {
	b := mustLUO(t)
	f := openT(t, b)
	put32(b, hdrTotalSize, math.MaxUint32)
	put32(b, hdrOffDtStruct, 0)
	put32(b, hdrSizeDtStrings, math.MaxUint32)
	require.NoError(t, f.Check())
	_, err := dumpTree(f)
	require.NoError(t, err)
	for i := range b {
		b[i] = 0xff
	}
	readAll(t, f.Bytes())
	for off := -4; off < f.StructSize()+4; off++ {
		probeOffset(f, off)
	}
	require.Error(t, f.Check())
}
