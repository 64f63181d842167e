// Package concurrent is the concurrent lockstep checker: several tasks
// (threads of one process, sharing its fd table) run short programs of
// LUO syscalls on shared session names and fds, under the controlled
// scheduler of kernel/sched; the history of calls and returns is checked
// for linearizability against the sequential model (model/) with
// porcupine. Invariants and lockdep are checked at the quiescent point
// after each round, and a kexec between rounds checks that what crossed
// matches the linearized history. An fd table that no syscall is using
// (the process's at the quiescent point, a child's right after its fork)
// must hold no fd reserved but not installed: such a number is lost to
// the next open, which the fd-identity comparison cannot see.
//
// The threads learn a call's fd at its fd_install() (the kernel's install
// observer puts it in the call's slot), not at its return, as real threads
// can; once a round the chooser steers a thread whose next instruction
// names that slot into the window (steeredChooser.publication).
//
// A check is a number of rounds on one machine:
//
//	setup   (sequential, in lockstep with the model) sessions "a" and "b"
//	        are created, a memfd is preserved in "a" and a test module
//	        file (whose handler counts on the test FLBs) in each, and the
//	        machine live-updates, so that round 1 has incoming sessions;
//	round r a fresh process opens /dev/liveupdate and the fixed files,
//	        two memfds and two test files (slots 0-4), runs the round's
//	        drawn prologue sequentially, in lockstep (retrieves, creates
//	        and preserves whose fds go to slots 5-8, so that the threads
//	        start on sessions they can meet on at once), then its threads
//	        run their programs concurrently: they preserve the fixed
//	        files (test files as well as memfds, so that two sessions
//	        meet on an FLB's outgoing lock and a release's last put of
//	        the test module meets its unload), retrieve, finish and close;
//	        fds they obtain go to slots 5-9, which every
//	        thread may use and close, as threads share an fd table, so
//	        two threads meet on one session or file and a close races
//	        the users of its fd (prog.go);
//	        a "reboot" instruction (at most one per round) live-updates the
//	        machine from inside the round: every other thread is killed
//	        where it stands, as the jump to the next kernel would; a call
//	        on the kernel as a whole (an FLB's registration, a module
//	        load) that overlaps it may run in the old kernel after the
//	        serialization, and is linearized there (lin.go: linState.old);
//	quiesce the port's session lists are compared with the model, then the
//	        machine live-updates (unless the round did); a probe process
//	        of the new kernel runs the round's epilogue (mostly: the test
//	        module loaded, as user space loads the modules it needs at
//	        boot), then opens /dev/liveupdate, whose first open
//	        deserializes what crossed (a test file without its module
//	        fails it, ENOENT, cached); the model runs the same probe, and
//	        the probe's results, the sessions and FLBs that crossed, the
//	        registry and the count of the WARNs the model predicts (a
//	        refcount WARN of an FLB linked while files counted on it) are
//	        compared. Both comparisons are operations of the history, so
//	        porcupine picks a linearization that explains them.
//
// Linearizability is checked on the whole history, not per session name:
// the threads share one fd table and the device, and fd numbers (lowest
// free fd) and EBADF results tie operations on different sessions
// together, so a partition by name would not be sound. An fd returned by a
// call is accepted if it was free in the model (not necessarily the
// lowest): the kernel reserves an fd before the operation can fail, so a
// concurrent call may see a higher one, which no sequential order explains.
//
// The search (lin.go): most histories linearize along porcupine's first
// descent, taken without porcupine (firstDescent); most others along a
// descent that tries the calls that returned first, and releases last
// (lateDescent); the rest go to porcupine's whole search, whose states
// are interned, compared by identity and stepped once per operation
// (linStates). A history no descent linearizes is judged by porcupine
// alone, and so is every failure. A search that outlasts
// Config.LinTimeout gives no verdict and no state for the next round to
// start from: the check stops there, counted as undecided.
//
// A close drops the fd at once but the file's release may come later (a
// concurrent call holds it) or be cut short by a reboot: the check splits
// such a close into the close and the release (lin.go).
//
// LUO's in-kernel face is in the rounds too (churn.go): the test module
// is loaded and unloaded (a round whose first module instruction is a
// load starts without it), its FLBs are linked and unlinked, an FLB's
// incoming object is taken and put, and the memfd handler is unregistered
// and registered, against the sessions' and files' calls. init_module()
// and delete_module() are checked in their atomic phases (coming, live,
// going, gone), which kernel/module reports as they happen; an unload or
// unregistration refused while another call may hold a transient
// reference is accepted; the quiescent point and the crossed state
// compare the test module's reference count, the registered handlers
// and the FLBs linked to the test handler with the model's. A session's
// finish or unpreserve puts its test files' FLBs one file at a time, so
// one that an FLB's (un)registration overlaps is split between its test
// files (flbsplit.go).
//
// Critical-section coverage (cscov.go): for every lock of LUO's lock order
// and every pair of instructions that take it (takes, less the pairs that
// can never meet on one instance: unreachable), the campaign counts the
// schedules where one was preempted inside the critical section while the
// other went to take the lock; `luo check` and `luo concurrent` print the
// table, and TestCSTakesDeclared checks that takes declares every lock a
// campaign takes. The scheduler can preempt right after a LUO lock is
// taken (a critical section with no lock or yield inside is preemptible
// too, as in a preemptible kernel), and steers there: those points are
// drawn only where the current thread holds a lock that another runnable
// thread's instruction takes, for a pair the check has not reached, and
// after such a preemption that thread runs on, undisturbed, to the lock
// (a steered window). The generator plants, in one round in three, a pair
// the check has not reached (its two instructions first in two threads,
// on sessions a fixed prologue prepares) and weights the instructions of
// pairs not reached. Steering is per check, so that a seed replays the
// same draws. One row is not a lock: the test module's last reference
// (module_put() dropping it, locking.PointModulePut) met by a
// delete_module(), where a caller that still runs the module's code after
// its last put (M16) meets the unload; the thread that can drop it runs
// undisturbed to the put while a delete-module is ready, and the put
// hands the CPU to it.
//
// The same programs also run free on real goroutines (Stress), under the
// race detector with go-deadlock's watchdog on, as a second, independent
// check; there reboot instructions are skipped, since nothing could stop
// the other threads at the kexec.
package concurrent
