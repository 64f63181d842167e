package main

import (
	"bytes"
	"fmt"
	"os"
	"syscall"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

// guestPattern fills the "guest memory" memfd: three pages of a
// recognizable pattern.
func guestPattern() []byte {
	p := make([]byte, 3*4096)
	for i := range p {
		p[i] = byte('A' + i%26)
	}
	copy(p, "guest memory of vm0: ")
	return p
}

// demo narrates every step on stdout and stops at the first error.
type demo struct {
	step int
	err  error
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Printf("\n[%d] %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) call(desc string, ret any, err error) {
	if d.err != nil {
		return
	}
	if err != nil {
		fmt.Printf("    %s = -1 (%v)\n", desc, err)
		d.err = fmt.Errorf("%s: %w", desc, err)
		return
	}
	fmt.Printf("    %s = %v\n", desc, ret)
}

// runDemo is `luo demo`: one live update of a VM-like workload.
func runDemo(args []string) int {
	if len(args) > 0 {
		usage()
	}
	if err := demoRun(); err != nil {
		fmt.Fprintf(os.Stderr, "\nluo demo: %v\n", err)
		return 1
	}
	return 0
}

func demoRun() error {
	d := &demo{}
	d.say("Cold boot: a machine with liveupdate=on (LUO) and KHO.")
	reports := 0
	m, err := machine.New(machine.Config{LiveUpdate: true, Report: func(r *bug.Report) {
		reports++
		fmt.Fprintf(os.Stderr, "%s\n", r.String())
	}})
	if err != nil {
		return err
	}
	t := m.Kernel().NewTask()
	fmt.Printf("    cmdline: %s\n", m.Cmdline())

	d.say("The VMM opens /dev/liveupdate and creates session \"vm0\".")
	dev, err := lu.OpenDevice(t)
	d.call(`open("/dev/liveupdate", O_RDWR)`, dev, err)
	sess, err := lu.CreateSession(t, dev, "vm0")
	d.call(`ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, {name="vm0"})`, fmt.Sprintf("0, fd=%d", sess), err)

	d.say("Guest memory lives in a memfd; the VMM writes a pattern into it.")
	mem, err := t.MemfdCreate("guest-ram", 0)
	d.call(`memfd_create("guest-ram", 0)`, mem, err)
	pat := guestPattern()
	n, err := t.Write(mem, pat)
	d.call(fmt.Sprintf("write(%d, %q..., %d)", mem, pat[:20], len(pat)), n, err)
	off, err := t.Lseek(mem, 100, 0)
	d.call(fmt.Sprintf("lseek(%d, 100, SEEK_SET)", mem), off, err)

	d.say("The memfd is preserved in the session under token 7; its size is now frozen.")
	err = lu.PreserveFD(t, sess, mem, 7)
	d.call(fmt.Sprintf("ioctl(%d, LIVEUPDATE_SESSION_PRESERVE_FD, {fd=%d, token=7})", sess, mem), 0, err)
	err = t.Ftruncate(mem, 1)
	fmt.Printf("    ftruncate(%d, 1) = %v (a preserved memfd cannot change size)\n", mem, errString(err))
	if d.err != nil {
		return d.err
	}

	d.say("Live update: reboot(LINUX_REBOOT_CMD_KEXEC). LUO freezes and serializes the session; KHO hands over the preserved memory; only preserved pages survive.")
	if err := m.Kexec(); err != nil || reports > 0 {
		return fmt.Errorf("kexec: %v (%d kernel reports)", err, reports)
	}
	fmt.Printf("    kexec() = 0; the old tasks are gone: close(%d) from the old task = %v\n", dev, errString(t.Close(dev)))
	d.say("The hand-over the new kernel booted from (KHO root FDT at %#x):", uint64(m.LastHandover()))
	if err := printHandover(os.Stdout, m); err != nil {
		fmt.Printf("    (cannot decode the hand-over: %v)\n", err)
	}
	if err := demoAfter(d, m.Kernel(), pat); err != nil {
		return err
	}
	if reports > 0 {
		return fmt.Errorf("%d kernel reports", reports)
	}
	return nil
}

func demoAfter(d *demo, k *kernel.Kernel, pat []byte) error {
	d.say("In the new kernel the VMM opens /dev/liveupdate and retrieves \"vm0\".")
	t := k.NewTask()
	dev, err := lu.OpenDevice(t)
	d.call(`open("/dev/liveupdate", O_RDWR)`, dev, err)
	sess, err := lu.RetrieveSession(t, dev, "vm0")
	d.call(`ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, {name="vm0"})`, fmt.Sprintf("0, fd=%d", sess), err)
	name, err := lu.SessionName(t, sess)
	d.call(fmt.Sprintf("ioctl(%d, LIVEUPDATE_SESSION_GET_NAME)", sess), fmt.Sprintf("0, name=%q", name), err)
	mem, err := lu.RetrieveFD(t, sess, 7)
	d.call(fmt.Sprintf("ioctl(%d, LIVEUPDATE_SESSION_RETRIEVE_FD, {token=7})", sess), fmt.Sprintf("0, fd=%d", mem), err)
	if d.err != nil {
		return d.err
	}

	d.say("Verify guest memory: position and every byte survived.")
	pos, err := t.Lseek(mem, 0, 1)
	d.call(fmt.Sprintf("lseek(%d, 0, SEEK_CUR)", mem), pos, err)
	size, err := t.Lseek(mem, 0, 2)
	d.call(fmt.Sprintf("lseek(%d, 0, SEEK_END)", mem), size, err)
	_, err = t.Lseek(mem, 0, 0)
	d.call(fmt.Sprintf("lseek(%d, 0, SEEK_SET)", mem), 0, err)
	got := make([]byte, len(pat)+10)
	n, err := t.Read(mem, got)
	d.call(fmt.Sprintf("read(%d, buf, %d)", mem, len(got)), n, err)
	if d.err != nil {
		return d.err
	}
	if pos != 100 || !bytes.Equal(got[:n], pat) {
		return fmt.Errorf("guest memory differs after the live update (pos %d, %d bytes)", pos, n)
	}
	fmt.Printf("    %d bytes identical, position 100 kept\n", n)

	d.say("FINISH the session: LUO lets go; the memfd lives on through the VMM's fd.")
	err = lu.FinishSession(t, sess)
	d.call(fmt.Sprintf("ioctl(%d, LIVEUPDATE_SESSION_FINISH)", sess), 0, err)
	d.call(fmt.Sprintf("close(%d)", sess), 0, t.Close(sess))
	t.Exit()
	if d.err != nil {
		return d.err
	}
	fmt.Printf("\nDone: one live update of vm0, guest memory intact.\n")
	return nil
}

func errString(err error) string {
	if err == nil {
		return "0"
	}
	if e, ok := err.(syscall.Errno); ok {
		return fmt.Sprintf("-1 %s (%v)", errnoName(e), err)
	}
	return err.Error()
}
