package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"luomodel/serve"
)

// defaultSocket is the socket `luo serve`, `luo kexec` and the shim use
// unless told otherwise: $LUO_SOCKET, else /tmp/luo-$UID.sock.
func defaultSocket() string {
	if s := os.Getenv("LUO_SOCKET"); s != "" {
		return s
	}
	return fmt.Sprintf("/tmp/luo-%d.sock", os.Getuid())
}

// runServe is `luo serve`: boot a machine and serve client processes (run
// them with LD_PRELOAD=shim/libluoshim.so) until interrupted.
func runServe(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	sock := fs.String("socket", defaultSocket(), "the Unix socket to serve on ($LUO_SOCKET)")
	mib := fs.Int("memory", 0, "simulated physical memory in MiB (0: the machine's default)")
	quiet := fs.Bool("q", false, "do not log connections and kexecs")
	_ = fs.Parse(args)
	cfg := serve.Config{Socket: *sock, MemoryMiB: *mib, Log: os.Stderr}
	if *quiet {
		cfg.Log = nil
	}
	// Catch the signals first: once the socket exists a client may be told
	// to stop us.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	s, err := serve.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luo serve: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "luo serve: machine booted (liveupdate=on); serving on %s\n"+
		"  run a program against it: LUO_SOCKET=%s LD_PRELOAD=$PWD/shim/libluoshim.so ./prog\n"+
		"  live-update it: luo kexec -socket %s\n", s.Addr(), s.Addr(), s.Addr())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-sig:
			_ = s.Close()
		case <-stop:
		}
	}()
	if err := s.Serve(); err != nil {
		fmt.Fprintf(os.Stderr, "luo serve: %v\n", err)
		return 1
	}
	_ = s.Close()
	return 0
}
