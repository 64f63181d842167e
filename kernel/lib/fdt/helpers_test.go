package fdt

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Values of the golden LUO and KHO trees.
const (
	testLiveupdateNum = 3
	testSessionHdrPA  = 0x0000000123456000
	testKHOMemMapPA   = 0x00000000abcd0000
	testLUOFdtPA      = 0x0000000100042000
)

// writeLUO writes the outgoing LUO tree of luo_fdt_setup() and
// luo_session_setup_outgoing() (spec Part 5.1, 6.19 ABI) into buf.
func writeLUO(buf []byte) ([]byte, error) {
	w, err := Create(buf)
	if err != nil {
		return nil, err
	}
	steps := []func() error{
		w.FinishReservemap,
		func() error { return w.BeginNode("") },
		func() error { return w.PropertyString("compatible", "luo-v1") },
		func() error { return w.PropertyU64LE("liveupdate-number", testLiveupdateNum) },
		func() error { return w.BeginNode("luo-session") },
		func() error { return w.PropertyString("compatible", "luo-session-v2") },
		func() error { return w.PropertyU64LE("luo-session-header", testSessionHdrPA) },
		w.EndNode,
		w.EndNode,
		w.Finish,
	}
	for i, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
	}
	return w.Bytes(), nil
}

// writeKHO writes a KHO root tree as kexec_handover.c (6.19) builds it, with
// the "LUO" subtree registered: the memory map is reserved with a
// placeholder and filled in later, as KHO does.
func writeKHO(buf []byte) ([]byte, error) {
	w, err := Create(buf)
	if err != nil {
		return nil, err
	}
	if err := w.FinishReservemap(); err != nil {
		return nil, err
	}
	if err := w.BeginNode(""); err != nil {
		return nil, err
	}
	if err := w.PropertyString("compatible", "kho-v1"); err != nil {
		return nil, err
	}
	mm, err := w.PropertyPlaceholder("preserved-memory-map", 8)
	if err != nil {
		return nil, err
	}
	for _, s := range []func() error{
		func() error { return w.BeginNode("LUO") },
		func() error { return w.PropertyU64LE("fdt", testLUOFdtPA) },
		w.EndNode,
		w.EndNode,
		w.Finish,
	} {
		if err := s(); err != nil {
			return nil, err
		}
	}
	// the placeholder still points into the finished tree
	for i := range 8 {
		mm[i] = byte(uint64(testKHOMemMapPA) >> (8 * i))
	}
	return w.Bytes(), nil
}

func mustLUO(t testing.TB) []byte {
	t.Helper()
	b, err := writeLUO(make([]byte, 4096))
	require.NoError(t, err)
	return b
}

func mustKHO(t testing.TB) []byte {
	t.Helper()
	b, err := writeKHO(make([]byte, 4096))
	require.NoError(t, err)
	return b
}

// dumpTree walks every node and property of f in document order and renders
// them as text (path, then "  name = hex" lines), failing on the first
// error. It exercises the iteration API the way a consumer would.
func dumpTree(f *FDT) (string, error) {
	var sb strings.Builder
	n, err := f.NumMemRsv()
	if err != nil {
		return "", err
	}
	for i := range n {
		a, s, err := f.GetMemRsv(i)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&sb, "/memreserve/ %#x %#x;\n", a, s)
	}
	depth := 0
	for off := 0; ; {
		path, err := f.GetPath(off)
		if err != nil {
			return "", fmt.Errorf("path of %d: %w", off, err)
		}
		fmt.Fprintf(&sb, "%s\n", path)
		p, err := f.FirstProperty(off)
		for ; err == nil; p, err = f.NextProperty(p) {
			name, val, perr := f.GetPropertyByOffset(p)
			if perr != nil {
				return "", perr
			}
			fmt.Fprintf(&sb, "  %s = %s\n", name, hex.EncodeToString(val))
		}
		if err != ErrNotFound {
			return "", err
		}
		off, err = f.NextNode(off, &depth)
		if err == ErrNotFound {
			return sb.String(), nil
		}
		if err != nil {
			return "", err
		}
		if depth <= 0 {
			return sb.String(), nil
		}
	}
}
