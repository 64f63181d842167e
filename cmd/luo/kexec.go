package main

import (
	"flag"
	"fmt"
	"os"

	"luomodel/serve"
)

// runKexec is `luo kexec`: live-update the machine `luo serve` runs, as
// reboot(LINUX_REBOOT_CMD_KEXEC) would; every client process of the old
// kernel is killed.
func runKexec(args []string) int {
	fs := flag.NewFlagSet("kexec", flag.ExitOnError)
	sock := fs.String("socket", defaultSocket(), "the socket of `luo serve` ($LUO_SOCKET)")
	_ = fs.Parse(args)
	c, err := serve.Dial(*sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luo kexec: %v\n", err)
		return 1
	}
	defer c.Close()
	if err := c.Kexec(); err != nil {
		fmt.Fprintf(os.Stderr, "luo kexec: reboot(LINUX_REBOOT_CMD_KEXEC): %v\n", err)
		return 1
	}
	n, err := c.Kexecs()
	if err == nil {
		fmt.Fprintf(os.Stderr, "luo kexec: kernel %d running\n", n)
	}
	return 0
}
