package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// TestDemo runs `luo demo` end to end: a failed step or a kernel report
// makes demoRun return an error.
func TestDemo(t *testing.T) {
	require.NoError(t, demoRun())
}

// TestPrintHandoverDecodesSessions checks the DTS rendering of a real
// hand-over: KHO's root, LUO's nested tree (its root printed as "/"), and
// the serialized session and file decoded as comments.
func TestPrintHandoverDecodesSessions(t *testing.T) {
	m, err := machine.New(machine.Config{LiveUpdate: true, Report: func(r *bug.Report) { t.Errorf("%s", r.String()) }})
	require.NoError(t, err)
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	s, err := lu.CreateSession(task, dev, "vm7")
	require.NoError(t, err)
	mfd, err := task.MemfdCreate("ram", 0)
	require.NoError(t, err)
	_, err = task.Write(mfd, []byte("x"))
	require.NoError(t, err)
	require.NoError(t, lu.PreserveFD(task, s, mfd, 99))
	require.NoError(t, m.Kexec())

	var out bytes.Buffer
	require.NoError(t, printHandover(&out, m))
	for _, want := range []string{
		"/dts-v1/;\n/ {\n\tcompatible = \"kho-v1\";",
		"\tLUO {\n",
		"\t\t/ {\n\t\t\tcompatible = \"luo-v1\";",
		"liveupdate-number = <0x01000000 0x00000000>; /* 0x1 */",
		"compatible = \"luo-session-v2\";",
		"/* luo_session_header_ser: count = 1 */",
		"luo_session_ser { name = \"vm7\";",
		"luo_file_ser { compatible = \"memfd-v1\";",
		"token = 99; } */",
	} {
		require.Contains(t, out.String(), want)
	}
}
