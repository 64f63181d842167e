package kernel

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKstrtobool(t *testing.T) {
	for s, want := range map[string]bool{
		"y": true, "Y": true, "t": true, "T": true, "1": true, "on": true, "ON": true, "yes": true, "true": true,
		"n": false, "N": false, "f": false, "F": false, "0": false, "off": false, "Off": false, "no": false,
	} {
		got, err := Kstrtobool(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "o", "ox", "2", "x", "-1", " on"} {
		_, err := Kstrtobool(s)
		require.ErrorIs(t, err, syscall.EINVAL, "%q", s)
	}
}

func TestParseCmdline(t *testing.T) {
	require.Equal(t, Cmdline{KHO: true}, ParseCmdline(""))
	require.Equal(t, Cmdline{LiveUpdate: true, KHO: true}, ParseCmdline("liveupdate=on"))
	require.Equal(t, Cmdline{LiveUpdate: true, KHO: false}, ParseCmdline("console=ttyS0 liveupdate=1 kho=off quiet"))
	// An invalid value leaves the default; the last valid one wins.
	require.Equal(t, Cmdline{KHO: true}, ParseCmdline("liveupdate=maybe kho"))
	require.Equal(t, Cmdline{LiveUpdate: false, KHO: true}, ParseCmdline("liveupdate=y liveupdate=n"))
	c := Cmdline{LiveUpdate: true}
	require.Equal(t, c, ParseCmdline(c.String()))
}
