package fdt

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLibfdtDifferential compares the reader with the real libfdt (the
// system's libfdt.so.1, driven by testdata/libfdt_diff.c) over mutants of
// the golden trees: Check must reject every blob fdt_check_full() rejects,
// and the lookups and walks must give the same offsets, lengths, names and
// error codes. It needs gcc and libfdt.so.1 and runs only with
// LUOMODEL_LIBFDT_DIFF=1.
//
// The one known difference: libfdt's fdt_stringlist_contains() reads one
// byte past a string list that is not NUL-terminated, so a "compatible"
// value "luo-v1" without its NUL (followed by padding) matches "luo-v1" in
// libfdt and not here.
func TestLibfdtDifferential(t *testing.T) {
	if os.Getenv("LUOMODEL_LIBFDT_DIFF") != "1" {
		t.Skip("set LUOMODEL_LIBFDT_DIFF=1 to compare with the system libfdt")
	}
	const lib = "/usr/lib/x86_64-linux-gnu/libfdt.so.1"
	gcc := requireTool(t, "gcc")
	dir := t.TempDir()
	bin := filepath.Join(dir, "libfdt_diff")
	out, err := exec.Command(gcc, "-O1", "-o", bin, filepath.Join("testdata", "libfdt_diff.c"), lib).CombinedOutput()
	require.NoError(t, err, "%s", out)

	misc, err := writeMisc(make([]byte, 4096), 0)
	require.NoError(t, err)
	interop, err := os.ReadFile(filepath.Join("testdata", "interop.dtb"))
	require.NoError(t, err)
	var blobs [][]byte
	for _, b := range [][]byte{mustLUO(t), mustKHO(t), misc, interop} {
		for i := range b {
			for _, v := range []byte{0x00, 0xff, b[i] ^ 0x01, b[i] ^ 0x80, b[i] + 4, b[i] - 4, b[i] ^ 0x10} {
				c := append([]byte(nil), b...)
				c[i] = v
				blobs = append(blobs, c)
			}
		}
		for n := range len(b) {
			blobs = append(blobs, b[:n])
		}
		rng := rand.New(rand.NewPCG(1, uint64(len(b))))
		for range 5000 {
			c := append([]byte(nil), b...)
			for range 1 + rng.IntN(4) {
				i := HeaderSizeV17 + rng.IntN(len(c)-HeaderSizeV17)
				if rng.IntN(2) == 0 {
					c[i] = byte(rng.IntN(16))
				} else {
					c[i] = byte(rng.IntN(256))
				}
			}
			blobs = append(blobs, c)
		}
	}
	in := filepath.Join(dir, "blobs.bin")
	fh, err := os.Create(in)
	require.NoError(t, err)
	w := bufio.NewWriter(fh)
	for _, b := range blobs {
		require.NoError(t, binary.Write(w, binary.BigEndian, uint32(len(b))))
		_, err := w.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
	require.NoError(t, fh.Close())
	out, err = exec.Command(bin, in).Output()
	require.NoError(t, err)
	clines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, clines, len(blobs))

	compat := regexp.MustCompile(`compat=(-?\d+)`)
	prop := regexp.MustCompile(` prop=\d+:([0-9a-f]*)`)
	stricter, known := 0, 0
	for i, b := range blobs {
		g, c := diffLine(b), clines[i]
		gFull, cFull := strings.Fields(g)[0], strings.Fields(c)[0]
		if gFull == "full=0" && cFull != "full=0" {
			t.Errorf("blob %d: Check accepts, libfdt fdt_check_full() says %s", i, cFull)
		}
		if gFull != "full=0" && cFull == "full=0" {
			stricter++
		}
		gr, cr := strings.TrimPrefix(g, gFull), strings.TrimPrefix(c, cFull)
		if gr == cr {
			continue
		}
		if m := prop.FindStringSubmatch(g); m != nil && !strings.HasSuffix(m[1], "00") &&
			compat.ReplaceAllString(gr, "") == compat.ReplaceAllString(cr, "") {
			known++ // libfdt's stringlist over-read
			continue
		}
		t.Errorf("blob %d (len %d):\n go: %s\n  c: %s", i, len(b), g, c)
	}
	t.Logf("%d blobs; Check stricter than fdt_check_full() on %d; %d known stringlist differences", len(blobs), stricter, known)
}

// diffLine prints what testdata/libfdt_diff.c prints for a blob.
func diffLine(b []byte) string {
	var sb strings.Builder
	full := Code(Check(b))
	if full > 0 {
		full = 0
	}
	fmt.Fprintf(&sb, "full=%d", full)
	f, err := Open(b)
	if err == nil {
		code := func(v int, err error) int {
			if err != nil {
				return Code(err)
			}
			return v
		}
		fmt.Fprintf(&sb, " sub=%d", code(f.SubnodeOffset(0, "luo-session")))
		fmt.Fprintf(&sb, " path=%d", code(f.PathOffset("/luo-session")))
		v, err := f.GetProp(0, "compatible")
		if err != nil {
			fmt.Fprintf(&sb, " prop=%d:", Code(err))
		} else {
			fmt.Fprintf(&sb, " prop=%d:%s", len(v), hex.EncodeToString(v))
		}
		fmt.Fprintf(&sb, " compat=%d", Code(f.NodeCheckCompatible(0, "luo-v1")))
		o, err := f.FirstSubnode(0)
		fmt.Fprintf(&sb, " fsub=%d", code(o, err))
		if err == nil {
			fmt.Fprintf(&sb, " nsub=%d", code(f.NextSubnode(o)))
		}
		fmt.Fprintf(&sb, " fprop=%d", code(f.FirstProperty(0)))
		fmt.Fprintf(&sb, " nrsv=%d", code(f.NumMemRsv()))
		depth, k := 0, 0
		o = 0
		for o >= 0 && k < 200 {
			k++
			nm, err := f.GetName(o)
			if err != nil {
				fmt.Fprintf(&sb, " n%d=%d", o, Code(err))
			} else {
				fmt.Fprintf(&sb, " n%d=%d:%s", o, len(nm), hex.EncodeToString([]byte(nm)))
			}
			p, err := f.FirstProperty(o)
			for j := 0; err == nil && j < 50; j++ {
				pn, pv, perr := f.GetPropertyByOffset(p)
				if perr != nil {
					fmt.Fprintf(&sb, " p%d=%d", p, Code(perr))
				} else {
					fmt.Fprintf(&sb, " p%d=%d:%s", p, len(pv), hex.EncodeToString([]byte(pn)))
				}
				p, err = f.NextProperty(p)
			}
			fmt.Fprintf(&sb, " pe=%d", code(p, err))
			o, err = f.NextNode(o, &depth)
			o = code(o, err)
			fmt.Fprintf(&sb, " d=%d", depth)
			if depth < 0 {
				break
			}
		}
		if o > 0 {
			o = 0
		}
		fmt.Fprintf(&sb, " end=%d", o)
	}
	return sb.String()
}
