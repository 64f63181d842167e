package fdt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzReaderSeeds is the committed seed corpus of FuzzReader
// (testdata/fuzz/FuzzReader/seed-*): valid trees from the Writer and from
// dtc, and damaged variants of them.
func fuzzReaderSeeds(t *testing.T) map[string][]byte {
	luo := mustLUO(t)
	misc, err := writeMisc(make([]byte, 4096), 0)
	require.NoError(t, err)
	interop, err := os.ReadFile(filepath.Join("testdata", "interop.dtb"))
	require.NoError(t, err)
	mutate := func(b []byte, off int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[off] = v
		return c
	}
	h := decodeHeader(luo)
	return map[string][]byte{
		"luo":                luo,
		"kho":                mustKHO(t),
		"misc":               misc,
		"interop-dtc":        interop,
		"luo-v16":            withHeader(luo, hdrVersion, 16),
		"luo-truncated":      luo[:len(luo)/2],
		"luo-bad-magic":      mutate(luo, 3, 0xee),
		"luo-nameoff":        mutate(luo, int(h.OffDtStruct)+8+8+2, 0x7f), // first property's nameoff
		"luo-bad-tag":        mutate(luo, int(h.OffDtStruct)+3, 0x07),
		"luo-strings-unterm": mutate(luo, len(luo)-1, 'x'),
		"deep":               deep(MaxDepth + 2).blob(),
		"unclosed":           (&rawTree{}).begin("").begin("a").prop("p", []byte("v\x00")).fin().blob(),
		"nops":               (&rawTree{}).nop().begin("").nop().prop("compatible", []byte("luo-v1\x00")).nop().begin("luo-session").end().nop().end().nop().fin().blob(),
		"nop-before-root":    (&rawTree{}).nop().begin("").end().fin().blob(),
		"prop-after-node":    (&rawTree{}).begin("").begin("a").end().prop("p", nil).end().fin().blob(),
	}
}

// TestFuzzReaderSeeds keeps the committed corpus in sync with
// fuzzReaderSeeds (LUOMODEL_UPDATE_GOLDEN=1 rewrites it) and runs the
// reader over it.
func TestFuzzReaderSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	for name, b := range fuzzReaderSeeds(t) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, "seed-"+name)
		if updateGolden() {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err, "run with LUOMODEL_UPDATE_GOLDEN=1")
		require.Equal(t, content, string(got))
		readAll(t, b)
	}
}
