// Command luo is the luomodel command line.
//
//	luo check [-duration 1m] [-checks N] [-steps N] [-seed N] [-campaign N] [-j N] [-shard I/N] [-json F] [-shrinktime D] [-skip A,B] [-cpuprofile F] [-q]
//	    run the lockstep checking campaign (port vs model, invariants,
//	    reports, leaks) on -j workers (default GOMAXPROCS) and print the
//	    coverage tables; on failure print the shrunk trace, the seed and
//	    the replay command, and exit 1. -shard I/N runs one part of the
//	    campaign; -json writes the summary (docs/summary-format.md).
//	luo report [-json F] SUMMARY.json...
//	    merge the summaries of a campaign's shards, print the tables luo
//	    check prints for the whole campaign; exit 1 if a shard failed or
//	    is missing.
//	luo mutants [-run REGEXP] [-ci] [-j N] [-v]
//	    apply each bug of mutants/ to a scratch copy, run its checks and
//	    print the kill table; exit 1 unless every mutant is killed by its
//	    expected check and the unpatched tree passes every check.
//	luo concurrent [-duration 1m] [-checks N] [-seed N] [-campaign N] [-j N] [-shard I/N] [-json F] [-out DIR]
//	    run the concurrent campaign alone (luo check runs it after the
//	    lockstep one for -concurrent 15s): threads under the controlled
//	    scheduler, linearizability against the model; on failure print the
//	    minimized interleaving, porcupine's HTML and the replay command.
//	luo serve [-socket PATH] [-memory MiB] [-q]
//	    boot a machine and serve the LUO syscalls of real processes run
//	    with LD_PRELOAD=shim/libluoshim.so (make shim) until interrupted.
//	luo kexec [-socket PATH]
//	    live-update the machine luo serve runs; its client processes are
//	    killed, later ones talk to the new kernel.
//	luo demo
//	    walk through one live update of a VM-like workload, narrating each
//	    syscall and printing the hand-over tree in DTS form.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: luo check [-duration D] [-concurrent D] [-concurrent-checks N] [-checks N] [-steps N] [-seed N] [-campaign N] [-j N] [-shard I/N] [-json FILE] [-shrinktime D] [-skip A,B] [-cpuprofile F] [-q]\n       luo report [-json FILE] SUMMARY.json...\n       luo concurrent [-duration D] [-checks N] [-seed N] [-campaign N] [-j N] [-shard I/N] [-json FILE] [-out DIR]\n       luo mutants [-run REGEXP] [-ci] [-list] [-j N] [-v]\n       luo serve [-socket PATH] [-memory MiB] [-q]\n       luo kexec [-socket PATH]\n       luo demo\n")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		os.Args = append(os.Args, "check")
	}
	switch os.Args[1] {
	case "check", "concurrent":
		reexecForCampaign()
	}
	var code int
	switch os.Args[1] {
	case "check":
		code = runCheck(os.Args[2:])
	case "demo":
		code = runDemo(os.Args[2:])
	case "mutants":
		code = runMutants(os.Args[2:])
	case "report":
		code = runReport(os.Args[2:])
	case "concurrent":
		code = runConcurrent(os.Args[2:])
	case "serve":
		code = runServe(os.Args[2:])
	case "kexec":
		code = runKexec(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
	default:
		usage()
	}
	os.Exit(code)
}
