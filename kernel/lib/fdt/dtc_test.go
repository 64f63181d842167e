package fdt

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Interop with the reference implementation: real dtc and fdtdump decompile
// what the Writer produces (compared with goldens), and the reader parses
// what dtc compiles. Set LUOMODEL_UPDATE_GOLDEN=1 to rewrite the goldens.

func updateGolden() bool { return os.Getenv("LUOMODEL_UPDATE_GOLDEN") == "1" }

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updateGolden() {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden; run with LUOMODEL_UPDATE_GOLDEN=1")
	require.Equal(t, string(want), string(got), "golden %s", name)
}

// runTool runs a tool and returns its stdout; stderr (warnings) goes to the
// test log only.
func runTool(t *testing.T, tool string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "%s %s: %s", tool, strings.Join(args, " "), stderr.String())
	return stdout.Bytes()
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func goldenTrees(t *testing.T) map[string][]byte {
	misc, err := writeMisc(make([]byte, 4096), 0)
	require.NoError(t, err)
	return map[string][]byte{"luo": mustLUO(t), "kho": mustKHO(t), "misc": misc}
}

// TestDtcDecompilesWriterOutput: dtc and fdtdump read the Writer's blobs
// and print the expected trees.
func TestDtcDecompilesWriterOutput(t *testing.T) {
	dtc := requireTool(t, "dtc")
	fdtdump := requireTool(t, "fdtdump")
	for name, b := range goldenTrees(t) {
		t.Run(name, func(t *testing.T) {
			p := writeTemp(t, name+".dtb", b)
			checkGolden(t, name+".dts.golden", runTool(t, dtc, "-q", "-I", "dtb", "-O", "dts", p))
			checkGolden(t, name+".fdtdump.golden", runTool(t, fdtdump, p))
		})
	}
}

// TestDtcRoundTrip: dtc's re-encodings of the Writer's blobs (dtb -> dtb,
// and dtb -> dts -> dtb) read back as the same tree.
func TestDtcRoundTrip(t *testing.T) {
	dtc := requireTool(t, "dtc")
	for name, b := range goldenTrees(t) {
		t.Run(name, func(t *testing.T) {
			want, err := dumpTree(openT(t, b))
			require.NoError(t, err)
			p := writeTemp(t, name+".dtb", b)
			direct := runTool(t, dtc, "-q", "-I", "dtb", "-O", "dtb", p)
			dts := writeTemp(t, name+".dts", runTool(t, dtc, "-q", "-I", "dtb", "-O", "dts", p))
			viaDts := runTool(t, dtc, "-q", "-I", "dts", "-O", "dtb", dts)
			for _, blob := range [][]byte{direct, viaDts} {
				require.NoError(t, Check(blob))
				got, err := dumpTree(openT(t, blob))
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
		})
	}
}

// checkInterop checks the reader's view of testdata/interop.dts compiled by
// dtc, and returns its dump.
func checkInterop(t *testing.T, b []byte) string {
	t.Helper()
	f := openT(t, b)
	require.NoError(t, f.Check())

	n, err := f.NumMemRsv()
	require.NoError(t, err)
	require.Equal(t, 2, n)
	a, s, err := f.GetMemRsv(1)
	require.NoError(t, err)
	require.Equal(t, [2]uint64{0x20000000, 0x100000}, [2]uint64{a, s})

	cnt, err := f.StringlistCount(0, "compatible")
	require.NoError(t, err)
	require.Equal(t, 2, cnt)
	require.NoError(t, f.NodeCheckCompatible(0, "luomodel,generic"))
	model, err := f.GetPropString(0, "model")
	require.NoError(t, err)
	require.Equal(t, "luomodel interop tree", model)

	sess, err := f.PathOffset("/luo-session")
	require.NoError(t, err)
	viaAlias, err := f.PathOffset("session")
	require.NoError(t, err)
	require.Equal(t, sess, viaAlias)
	require.NoError(t, f.NodeCheckCompatible(sess, "luo-session-v2"))
	hdr, err := f.GetPropU64(sess, "luo-session-header")
	require.NoError(t, err)
	require.Equal(t, uint64(0x123456000), hdr)
	num, err := f.GetPropU64LE(sess, "liveupdate-number")
	require.NoError(t, err)
	require.Equal(t, uint64(3), num)
	ph, err := f.GetPropU32(sess, "phandle")
	require.NoError(t, err)

	luo, err := f.PathOffset("/LUO")
	require.NoError(t, err)
	pa, err := f.GetPropU64(luo, "fdt")
	require.NoError(t, err)
	require.Equal(t, uint64(0x100042000), pa)

	serial, err := f.PathOffset("serial0")
	require.NoError(t, err)
	path, err := f.GetPath(serial)
	require.NoError(t, err)
	require.Equal(t, "/soc/serial@1000", path)
	ref, err := f.GetPropU32(serial, "session")
	require.NoError(t, err)
	require.Equal(t, ph, ref)
	b8, err := f.GetProp(serial, "bytes8")
	require.NoError(t, err)
	require.Equal(t, []byte{1, 2, 3}, b8)
	soc, err := f.ParentOffset(serial)
	require.NoError(t, err)
	r, err := f.GetProp(soc, "ranges")
	require.NoError(t, err)
	require.Empty(t, r)

	first, err := f.NodeOffsetByCompatible(-1, "ns16550a")
	require.NoError(t, err)
	require.Equal(t, serial, first)
	second, err := f.NodeOffsetByCompatible(first, "ns16550a")
	require.NoError(t, err)
	st, err := f.GetPropString(second, "status")
	require.NoError(t, err)
	require.Equal(t, "disabled", st)
	_, err = f.NodeOffsetByCompatible(second, "ns16550a")
	require.ErrorIs(t, err, ErrNotFound)

	dump, err := dumpTree(f)
	require.NoError(t, err)
	return dump
}

// TestDtcCompiledBlob parses the committed dtc output (no tools needed) and
// checks it against a golden dump of the reader's view.
func TestDtcCompiledBlob(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "interop.dtb"))
	require.NoError(t, err)
	checkGolden(t, "interop.tree.golden", []byte(checkInterop(t, b)))
}

// TestDtcCompiles compiles testdata/interop.dts with the installed dtc, in
// several output variants, and parses the results.
func TestDtcCompiles(t *testing.T) {
	dtc := requireTool(t, "dtc")
	want, err := os.ReadFile(filepath.Join("testdata", "interop.tree.golden"))
	require.NoError(t, err)
	for _, variant := range [][]string{
		nil,
		{"-V", "16"},         // version 16: no size_dt_struct
		{"-p", "100"},        // padding after the strings block
		{"-R", "3"},          // extra empty reserve map entries
		{"-a", "64"},         // totalsize aligned up
		{"-S", "4096"},       // a page, as LUO allocates
		{"-H", "epapr"},      // only "phandle"
		{"-b", "1"},          // boot_cpuid_phys
		{"-@", "-H", "both"}, // __symbols__ node and linux,phandle
	} {
		t.Run(strings.Join(variant, ""), func(t *testing.T) {
			args := append([]string{"-q", "-I", "dts", "-O", "dtb"}, variant...)
			args = append(args, filepath.Join("testdata", "interop.dts"))
			b := runTool(t, dtc, args...)
			got := checkInterop(t, b)
			switch {
			case len(variant) > 0 && variant[0] == "-@":
				require.Contains(t, got, "/__symbols__\n")
				require.Contains(t, got, "linux,phandle")
			default:
				require.Equal(t, string(want), got)
			}
		})
	}
}
