package fdt

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func openT(t *testing.T, b []byte) *FDT {
	t.Helper()
	f, err := Open(b)
	require.NoError(t, err)
	return f
}

// TestReadLUO reads the LUO tree the way luo_early_startup() and
// luo_session_setup_incoming() do.
func TestReadLUO(t *testing.T) {
	b := mustLUO(t)
	// the blob may be followed by other bytes
	f := openT(t, append(append([]byte(nil), b...), 0xff, 0xff, 0xff))
	require.Equal(t, len(b), f.TotalSize())
	require.Equal(t, b, f.Bytes())
	require.Equal(t, 17, f.Version())
	require.NoError(t, f.Check())

	require.NoError(t, f.NodeCheckCompatible(0, "luo-v1"))
	err := f.NodeCheckCompatible(0, "luo-v2")
	require.ErrorIs(t, err, ErrNotCompatible)
	require.ErrorIs(t, err, ErrNotFound, "not compatible is NotFound-ish")
	require.Equal(t, 1, Code(err), "libfdt returns 1")

	num, err := f.GetProp(0, "liveupdate-number")
	require.NoError(t, err)
	require.Len(t, num, 8)
	n, err := f.GetPropU64LE(0, "liveupdate-number")
	require.NoError(t, err)
	require.Equal(t, uint64(testLiveupdateNum), n)

	off, err := f.SubnodeOffset(0, "luo-session")
	require.NoError(t, err)
	require.Positive(t, off)
	p, err := f.PathOffset("/luo-session")
	require.NoError(t, err)
	require.Equal(t, off, p)
	require.NoError(t, f.NodeCheckCompatible(off, "luo-session-v2"))
	pa, err := f.GetPropU64LE(off, "luo-session-header")
	require.NoError(t, err)
	require.Equal(t, uint64(testSessionHdrPA), pa)
	s, err := f.GetPropString(off, "compatible")
	require.NoError(t, err)
	require.Equal(t, "luo-session-v2", s)
	name, err := f.GetName(off)
	require.NoError(t, err)
	require.Equal(t, "luo-session", name)

	_, err = f.SubnodeOffset(0, "luo-flb") // 7.0 node, absent in 6.19
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.GetProp(off, "nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, f.NodeCheckCompatible(off+4, "x"), ErrBadOffset)
}

func TestReadKHO(t *testing.T) {
	f := openT(t, mustKHO(t))
	require.NoError(t, f.NodeCheckCompatible(0, "kho-v1"))
	mm, err := f.GetPropU64LE(0, "preserved-memory-map")
	require.NoError(t, err)
	require.Equal(t, uint64(testKHOMemMapPA), mm)
	// kho_retrieve_subtree(): iterate the root's subnodes by name
	var names []string
	for n, err := f.FirstSubnode(0); err == nil; n, err = f.NextSubnode(n) {
		name, gerr := f.GetName(n)
		require.NoError(t, gerr)
		names = append(names, name)
		pa, gerr := f.GetPropU64LE(n, "fdt")
		require.NoError(t, gerr)
		require.Equal(t, uint64(testLUOFdtPA), pa)
	}
	require.Equal(t, []string{"LUO"}, names)
}

func TestReadMisc(t *testing.T) {
	b, err := writeMisc(make([]byte, 4096), 0)
	require.NoError(t, err)
	f := openT(t, b)

	n, err := f.NumMemRsv()
	require.NoError(t, err)
	require.Equal(t, 2, n)
	a, s, err := f.GetMemRsv(1)
	require.NoError(t, err)
	require.Equal(t, [2]uint64{0xffffffff00000000, 0x10}, [2]uint64{a, s})
	_, _, err = f.GetMemRsv(-1)
	require.ErrorIs(t, err, ErrBadOffset)
	_, _, err = f.GetMemRsv(1 << 40)
	require.ErrorIs(t, err, ErrBadOffset)

	// unit addresses
	cpu0, err := f.PathOffset("/cpus/cpu@0")
	require.NoError(t, err)
	cpu, err := f.PathOffset("//cpus//cpu/") // first match without unit address
	require.NoError(t, err)
	require.Equal(t, cpu0, cpu)
	cpu1, err := f.PathOffset("/cpus/cpu@1")
	require.NoError(t, err)
	_, err = f.PathOffset("/cpus/cpu@2")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.PathOffset("/cpus/cp")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.PathOffset("/cpus/cpu@")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.PathOffset("")
	require.ErrorIs(t, err, ErrBadPath)
	_, err = f.PathOffset("noalias/x")
	require.ErrorIs(t, err, ErrBadPath)
	root, err := f.PathOffset("/")
	require.NoError(t, err)
	require.Zero(t, root)

	// paths, depth, parents
	for _, c := range []struct {
		path   string
		depth  int
		parent string
	}{{"/", 0, ""}, {"/cpus", 1, "/"}, {"/cpus/cpu@1", 2, "/cpus"}, {"/memory@80000000", 1, "/"}} {
		off, err := f.PathOffset(c.path)
		require.NoError(t, err)
		p, err := f.GetPath(off)
		require.NoError(t, err)
		require.Equal(t, c.path, p)
		d, err := f.NodeDepth(off)
		require.NoError(t, err)
		require.Equal(t, c.depth, d)
		par, err := f.ParentOffset(off)
		if c.parent == "" {
			require.ErrorIs(t, err, ErrNotFound)
			continue
		}
		require.NoError(t, err)
		pp, err := f.GetPath(par)
		require.NoError(t, err)
		require.Equal(t, c.parent, pp)
	}
	_, err = f.GetPath(cpu1 + 4)
	require.ErrorIs(t, err, ErrBadOffset)
	_, err = f.GetPath(1 << 20)
	require.ErrorIs(t, err, ErrBadOffset)

	// values
	ac, err := f.GetPropU32(0, "#address-cells")
	require.NoError(t, err)
	require.Equal(t, uint32(2), ac)
	_, err = f.GetPropU64(0, "#address-cells")
	require.ErrorIs(t, err, ErrBadValue)
	_, err = f.GetPropU32(0, "model")
	require.ErrorIs(t, err, ErrBadValue)
	mem, err := f.PathOffset("/memory")
	require.NoError(t, err)
	reg, err := f.GetPropU64(mem, "reg")
	require.NoError(t, err)
	require.Equal(t, uint64(0x80000000), reg)
	e, err := f.GetProp(mem, "empty")
	require.NoError(t, err)
	require.Empty(t, e)
	_, err = f.GetPropString(mem, "empty")
	require.ErrorIs(t, err, ErrBadValue)
	_, err = f.GetPropString(mem, "compatible") // a list, not a string
	require.ErrorIs(t, err, ErrBadValue)
	_, err = f.GetPropString(mem, "bytes")
	require.ErrorIs(t, err, ErrBadValue)
	_, err = f.GetProp(mem, "bytes\x00")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.SubnodeOffset(0, "cpus\x00")
	require.ErrorIs(t, err, ErrNotFound)

	// the value aliases the blob, but appending cannot overwrite it
	bv, err := f.GetProp(mem, "bytes")
	require.NoError(t, err)
	require.Equal(t, len(bv), cap(bv))

	// string lists
	cnt, err := f.StringlistCount(mem, "compatible")
	require.NoError(t, err)
	require.Equal(t, 2, cnt)
	idx, err := f.StringlistSearch(mem, "compatible", "test,generic")
	require.NoError(t, err)
	require.Equal(t, 1, idx)
	_, err = f.StringlistSearch(mem, "compatible", "test")
	require.ErrorIs(t, err, ErrNotFound)
	s1, err := f.StringlistGet(mem, "compatible", 1)
	require.NoError(t, err)
	require.Equal(t, "test,generic", s1)
	_, err = f.StringlistGet(mem, "compatible", 2)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.StringlistCount(mem, "bytes") // not terminated
	require.ErrorIs(t, err, ErrBadValue)
	require.NoError(t, f.NodeCheckCompatible(mem, "test,generic"))
	require.NoError(t, f.NodeCheckCompatible(mem, "test,mem"))
	require.ErrorIs(t, f.NodeCheckCompatible(mem, "test,me"), ErrNotCompatible)
	err = f.NodeCheckCompatible(cpu1, "x")
	require.ErrorIs(t, err, ErrNotFound)
	require.NotErrorIs(t, err, ErrNotCompatible)

	c, err := f.NodeOffsetByCompatible(-1, "test,cpu")
	require.NoError(t, err)
	require.Equal(t, cpu0, c)
	_, err = f.NodeOffsetByCompatible(c, "test,cpu")
	require.ErrorIs(t, err, ErrNotFound)
	ph, err := f.NodeOffsetByPropValue(-1, "phandle", []byte{0, 0, 0, 2})
	require.NoError(t, err)
	require.Equal(t, cpu1, ph)

	// property iteration order
	var props []string
	for p, err := f.FirstProperty(cpu0); err == nil; p, err = f.NextProperty(p) {
		name, _, err := f.GetPropertyByOffset(p)
		require.NoError(t, err)
		props = append(props, name)
	}
	require.Equal(t, []string{"linux,phandle", "phandle", "compatible"}, props)
	cpus, err := f.PathOffset("/cpus")
	require.NoError(t, err)
	_, err = f.FirstProperty(cpus)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.NextProperty(cpus) // a node, not a property
	require.ErrorIs(t, err, ErrBadOffset)
	_, _, err = f.GetPropertyByOffset(cpus)
	require.ErrorIs(t, err, ErrBadOffset)

	// subnode iteration
	var kids []string
	for n, err := f.FirstSubnode(cpus); err == nil; n, err = f.NextSubnode(n) {
		name, err := f.GetName(n)
		require.NoError(t, err)
		kids = append(kids, name)
	}
	require.Equal(t, []string{"cpu@0", "cpu@1"}, kids)
	_, err = f.FirstSubnode(cpu0)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.NextSubnode(mem)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestReadAliases(t *testing.T) {
	r := &rawTree{}
	r.begin("").
		begin("aliases").
		prop("mem", []byte("/soc/mem@0\x00")).
		prop("rel", []byte("soc\x00")).
		prop("bad", []byte("/soc")).
		end().
		begin("soc").begin("mem@0").end().end().
		end().fin()
	f := openT(t, r.blob())
	require.NoError(t, f.Check())
	want, err := f.PathOffset("/soc/mem@0")
	require.NoError(t, err)
	got, err := f.PathOffset("mem")
	require.NoError(t, err)
	require.Equal(t, want, got)
	a, err := f.GetAlias("mem")
	require.NoError(t, err)
	require.Equal(t, "/soc/mem@0", a)
	_, err = f.PathOffset("mem/x")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.PathOffset("rel") // relative alias: refused
	require.ErrorIs(t, err, ErrBadPath)
	_, err = f.PathOffset("bad") // unterminated alias
	require.ErrorIs(t, err, ErrBadPath)
	_, err = f.GetAlias("bad")
	require.ErrorIs(t, err, ErrBadValue)
	_, err = f.PathOffset("nope")
	require.ErrorIs(t, err, ErrBadPath)
}

func TestStringlistContains(t *testing.T) {
	for _, c := range []struct {
		list string
		s    string
		want bool
	}{
		{"a\x00b\x00", "a", true},
		{"a\x00b\x00", "b", true},
		{"a\x00b\x00", "", false},
		{"a\x00\x00b\x00", "", true},
		{"ab\x00", "a", false},
		{"a", "a", false}, // unterminated
		{"a\x00b", "b", false},
		{"", "", false},
		{"a\x00", "a\x00", false},
	} {
		require.Equal(t, c.want, StringlistContains([]byte(c.list), c.s), "%q in %q", c.s, c.list)
	}
}

func TestErrors(t *testing.T) {
	require.Equal(t, "FDT_ERR_NOTFOUND", ErrNotFound.Error())
	require.Equal(t, "FDT_ERR_ALIGNMENT", ErrAlignment.Error())
	require.Equal(t, "<unknown error>", Error(99).Error())
	require.Equal(t, "FDT_ERR_BADSTRUCTURE", Strerror(-11))
	require.Equal(t, "<no error>", Strerror(0))
	require.Equal(t, "<valid offset/length>", Strerror(8))
	require.Equal(t, "<unknown error>", Strerror(-99))
	require.Equal(t, -3, Code(ErrNoSpace))
	require.Equal(t, -3, Code(errors.Join(errors.New("ctx"), ErrNoSpace)))
	require.Equal(t, 0, Code(nil))
	require.Equal(t, -13, Code(errors.New("other")))
	require.Equal(t, ErrNoSpace, ErrorFromCode(-3))
	require.Equal(t, ErrInternal, ErrorFromCode(-99))
	require.NoError(t, ErrorFromCode(0))
	require.NoError(t, ErrorFromCode(48))
	require.ErrorIs(t, ErrNotCompatible, ErrNotCompatible)
	require.ErrorIs(t, ErrNotCompatible, ErrNotFound)
	require.NotErrorIs(t, ErrNotFound, ErrNotCompatible)
	require.NotErrorIs(t, ErrNoSpace, ErrNotFound)
	for e := ErrNotFound; e <= ErrAlignment; e++ {
		require.Equal(t, Strerror(-int(e)), e.Error())
		require.Equal(t, e, ErrorFromCode(Code(e)))
	}
	// libfdt returns the negative code as the offset
	off, err := openT(t, mustLUO(t)).SubnodeOffset(0, "x")
	require.Equal(t, -1, off)
	require.Equal(t, Code(err), off)
}
