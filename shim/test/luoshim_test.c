// SPDX-License-Identifier: GPL-2.0
/*
 * luoshim_test: a real C program run against `luo serve` through
 * libluoshim.so. It exercises every interposed call, every LUO ioctl and
 * a two-stage live update with a forked daemon holding the sessions:
 *
 *	luoshim_test single		every call and ioctl on one boot
 *	luoshim_test stage1		preserve; leave a daemon; print its pid
 *	luoshim_test kexec		reboot(LINUX_REBOOT_CMD_KEXEC) (is killed)
 *	luoshim_test stage2 PID		retrieve, verify; PID (the daemon) is dead
 *
 * Exit status 0 on success; each failed check prints its line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* include/uapi/linux/liveupdate.h */
#define LIVEUPDATE_SESSION_NAME_LENGTH 64
#define LIVEUPDATE_IOCTL_CREATE_SESSION _IO(0xBA, 0x00)
#define LIVEUPDATE_IOCTL_RETRIEVE_SESSION _IO(0xBA, 0x01)
#define LIVEUPDATE_SESSION_PRESERVE_FD _IO(0xBA, 0x40)
#define LIVEUPDATE_SESSION_RETRIEVE_FD _IO(0xBA, 0x41)
#define LIVEUPDATE_SESSION_FINISH _IO(0xBA, 0x42)
#define LIVEUPDATE_SESSION_GET_NAME _IO(0xBA, 0x43)

struct liveupdate_ioctl_create_session {
	uint32_t size;
	int32_t fd;
	uint8_t name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

struct liveupdate_session_preserve_fd {
	uint32_t size;
	int32_t fd;
	uint64_t token;
};

struct liveupdate_session_finish {
	uint32_t size;
	uint32_t reserved;
};

struct liveupdate_session_get_name {
	uint32_t size;
	uint32_t reserved;
	uint8_t name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

static int failures;

/* An address nothing is mapped at (the compiler must not see through it). */
static void *volatile bad_pointer = (void *)16;

#define CHECK(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "%s:%d: check failed: %s (errno %d %s)\n",	\
			__FILE__, __LINE__, #cond, errno, strerror(errno));	\
		failures++;							\
	}									\
} while (0)

/* CHECK_ERR: call fails with -1 and errno e. */
#define CHECK_ERR(call, e) do {							\
	errno = 0;								\
	long r__ = (long)(call);						\
	if (r__ != -1 || errno != (e)) {					\
		fprintf(stderr, "%s:%d: %s = %ld errno %d (%s), want -1 errno %d (%s)\n", \
			__FILE__, __LINE__, #call, r__, errno, strerror(errno),	\
			(e), strerror(e));					\
		failures++;							\
	}									\
} while (0)

#define REQUIRE(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "%s:%d: requirement failed: %s (errno %d %s)\n", \
			__FILE__, __LINE__, #cond, errno, strerror(errno));	\
		exit(1);							\
	}									\
} while (0)

static int session_ioctl(int fd, unsigned long cmd, const char *name)
{
	struct liveupdate_ioctl_create_session a = { .size = sizeof(a) };

	snprintf((char *)a.name, sizeof(a.name), "%s", name);
	if (ioctl(fd, cmd, &a) < 0)
		return -1;
	return a.fd;
}

static int create_session(int dev, const char *name)
{
	return session_ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, name);
}

static int retrieve_session(int dev, const char *name)
{
	return session_ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, name);
}

static int preserve_fd(int s, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };

	return ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &a);
}

static int retrieve_fd(int s, uint64_t token)
{
	struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .token = token };

	if (ioctl(s, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0)
		return -1;
	return a.fd;
}

static int finish(int s)
{
	struct liveupdate_session_finish a = { .size = sizeof(a) };

	return ioctl(s, LIVEUPDATE_SESSION_FINISH, &a);
}

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void check_bytes(int fd, off_t off, const char *want, size_t n)
{
	char buf[256] = { 0 };

	REQUIRE(n <= sizeof(buf));
	CHECK(pread(fd, buf, n, off) == (ssize_t)n);
	CHECK(memcmp(buf, want, n) == 0);
}

/* ---- single boot --------------------------------------------------------- */

static void test_device(void)
{
	struct stat st;
	int dev, dev2, null;

	dev = open("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	CHECK_ERR(open("/dev/liveupdate", O_RDWR), EBUSY);
	CHECK_ERR(openat(AT_FDCWD, "/dev/liveupdate", O_RDWR), EBUSY);
	CHECK(fstat(dev, &st) == 0 && S_ISCHR(st.st_mode));
	/* Placeholder fds keep numbers unique among the real ones. */
	null = open("/dev/null", O_RDONLY);
	CHECK(null >= 0 && null != dev);
	CHECK(fstat(null, &st) == 0 && S_ISCHR(st.st_mode));
	close(null);
	CHECK(fcntl(dev, F_GETFD) == 0);
	CHECK(fcntl(dev, F_SETFD, FD_CLOEXEC) == 0);
	CHECK(fcntl(dev, F_GETFD) == FD_CLOEXEC);
	CHECK_ERR(fcntl(dev, F_GETFL), EINVAL);
	CHECK_ERR(read(dev, &st, 1), EINVAL);
	CHECK_ERR(ioctl(dev, 0x1234, NULL), EINVAL); /* nr beyond the table */
	CHECK(close(dev) == 0);
	CHECK_ERR(close(dev), EBADF);
	CHECK_ERR(fcntl(dev, F_GETFD), EBADF);
	/* Free again: the open was exclusive, not the device taken for good. */
	dev2 = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
	CHECK(dev2 >= 0);
	CHECK(fcntl(dev2, F_GETFD) == FD_CLOEXEC);
	close(dev2);
}

static void test_memfd_io(void)
{
	char buf[64] = { 0 };
	struct stat st;
	int m, d, d2, d3, d4;

	m = memfd_create("io", 0);
	REQUIRE(m >= 0);
	CHECK(write(m, "hello world", 11) == 11);
	CHECK(lseek(m, 0, SEEK_CUR) == 11);
	CHECK(lseek(m, 0, SEEK_SET) == 0);
	CHECK(read(m, buf, sizeof(buf)) == 11 && memcmp(buf, "hello world", 11) == 0);
	CHECK(read(m, buf, sizeof(buf)) == 0);
	CHECK(pwrite(m, "XY", 2, 100) == 2);
	CHECK(lseek(m, 0, SEEK_CUR) == 11); /* pwrite leaves the position */
	check_bytes(m, 100, "XY", 2);
	check_bytes(m, 50, "\0\0\0", 3);
	CHECK(fstat(m, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 102);
	CHECK(ftruncate(m, 4096) == 0);
	CHECK(fstat(m, &st) == 0 && st.st_size == 4096);
	CHECK_ERR(ftruncate(m, -1), EINVAL);
	CHECK_ERR(lseek(m, 0, 42), EINVAL);
	CHECK_ERR(pread(m, buf, 1, -1), EINVAL);
	CHECK_ERR(read(m, bad_pointer, 10), EFAULT);
	CHECK_ERR(write(m, bad_pointer, 10), EFAULT);
	CHECK_ERR(memfd_create("bad", 0x1000000), EINVAL);
	CHECK(fcntl(m, F_GETFD) == 0);

	/* dup shares the open file (and its position). */
	d = dup(m);
	CHECK(d >= 0 && d != m);
	CHECK(lseek(m, 5, SEEK_SET) == 5);
	CHECK(lseek(d, 0, SEEK_CUR) == 5);
	d2 = dup2(m, 100);
	CHECK(d2 == 100);
	CHECK(fcntl(100, F_GETFD) == 0);
	CHECK(lseek(100, 0, SEEK_CUR) == 5);
	CHECK(dup2(m, m) == m);
	CHECK_ERR(dup3(m, m, 0), EINVAL);
	d3 = dup3(m, 101, O_CLOEXEC);
	CHECK(d3 == 101 && fcntl(101, F_GETFD) == FD_CLOEXEC);
	/* dup2 onto a model fd closes it; onto it from a real fd too. */
	CHECK(dup2(d, 101) == 101 && fcntl(101, F_GETFD) == 0);
	CHECK(dup2(0, 100) == 100);
	CHECK(fcntl(100, F_GETFD) == 0);
	d4 = fcntl(m, F_DUPFD_CLOEXEC, 200);
	CHECK(d4 >= 200 && fcntl(d4, F_GETFD) == FD_CLOEXEC);
	CHECK(lseek(d4, 0, SEEK_CUR) == 5);
	CHECK(close(d) == 0 && close(100) == 0 && close(101) == 0 && close(d4) == 0);
	CHECK_ERR(dup(d), EBADF);
	CHECK(close(m) == 0);
	CHECK_ERR(read(m, buf, 1), EBADF);
	CHECK_ERR(write(m, buf, 1), EBADF);
	CHECK_ERR(lseek(m, 0, SEEK_SET), EBADF);
	CHECK_ERR(fstat(m, &st), EBADF);
}

static void test_mmap(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p, *q;
	int m, ro, dev;

	m = memfd_create("map", MFD_CLOEXEC);
	REQUIRE(m >= 0);
	CHECK(fcntl(m, F_GETFD) == FD_CLOEXEC);
	CHECK(ftruncate(m, 2 * pg) == 0);
	p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	REQUIRE(p != MAP_FAILED);
	strcpy(p, "written through a shared map");
	strcpy(p + pg, "second page");
	CHECK(msync(p, 2 * pg, MS_SYNC) == 0);
	check_bytes(m, 0, "written through a shared map", 28);
	strcpy(p + pg, "changed at munmap");
	/* Unmap the first page only; the second stays mapped. */
	CHECK(munmap(p, pg) == 0);
	CHECK(strcmp(p + pg, "changed at munmap") == 0);
	CHECK(munmap(p + pg, pg) == 0);
	check_bytes(m, pg, "changed at munmap", 17);

	/* A private map sees the file but never writes it back. */
	q = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, m, 0);
	REQUIRE(q != MAP_FAILED);
	CHECK(strcmp(q, "written through a shared map") == 0);
	q[0] = 'W';
	CHECK(munmap(q, pg) == 0);
	check_bytes(m, 0, "w", 1);

	/* The map holds the file: close first, then unmap. */
	q = mmap(NULL, pg, PROT_WRITE, MAP_SHARED, m, pg);
	REQUIRE(q != MAP_FAILED);
	CHECK(strcmp(q, "changed at munmap") == 0);
	ro = dup(m);
	CHECK(close(m) == 0);
	strcpy(q, "after close");
	CHECK(munmap(q, pg) == 0);
	check_bytes(ro, pg, "after close", 11);

	/* Mapping over a shared writable map stores it back first. */
	q = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
	REQUIRE(q != MAP_FAILED);
	strcpy(q + pg, "before MAP_FIXED");
	REQUIRE(mmap(q + pg, pg, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0) == q + pg);
	CHECK(q[pg] == 0);
	check_bytes(ro, pg, "before MAP_FIXED", 16);
	strcpy(q, "first page");
	CHECK(munmap(q, 2 * pg) == 0);
	check_bytes(ro, 0, "first page", 10);
	check_bytes(ro, pg, "before MAP_FIXED", 16);

	CHECK_ERR(mmap(NULL, pg, PROT_READ, MAP_SHARED, ro, 1), EINVAL);
	CHECK_ERR(mmap(NULL, 0, PROT_READ, MAP_SHARED, ro, 0), EINVAL);
	dev = open("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	CHECK_ERR(mmap(NULL, pg, PROT_READ, MAP_SHARED, dev, 0), ENODEV);
	close(dev);
	close(ro);
}

static void test_sessions(void)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	struct liveupdate_session_get_name gn = { .size = sizeof(gn) };
	long pg = sysconf(_SC_PAGESIZE);
	int dev, s1, s2, m1, m2, null, gone;
	char *page;

	dev = open("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	s1 = create_session(dev, "session-one");
	REQUIRE(s1 >= 0);
	CHECK(s1 != dev && fcntl(s1, F_GETFD) == FD_CLOEXEC);
	CHECK_ERR(create_session(dev, "session-one"), EEXIST);
	CHECK_ERR(create_session(dev, ""), EINVAL);
	memset(cs.name, 'X', sizeof(cs.name));
	CHECK_ERR(ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs), EINVAL);
	CHECK(ioctl(s1, LIVEUPDATE_SESSION_GET_NAME, &gn) == 0);
	CHECK(strcmp((char *)gn.name, "session-one") == 0);
	CHECK_ERR(retrieve_session(dev, "session-one"), ENOENT);
	s2 = create_session(dev, "session-two");
	REQUIRE(s2 >= 0);

	/* Bad user memory: EFAULT, and nothing is lost. */
	CHECK_ERR(ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, NULL), EFAULT);
	CHECK_ERR(ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, (void *)16), EFAULT);
	page = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(page != MAP_FAILED);
	CHECK(mprotect(page + pg, pg, PROT_NONE) == 0);
	/* A struct whose declared size runs into the unmapped page. */
	*(uint32_t *)(page + pg - 8) = sizeof(cs);
	CHECK_ERR(ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, page + pg - 8), EFAULT);
	/* A read-only struct: the session is made, its fd cannot be told. */
	memcpy(page, &(struct liveupdate_ioctl_create_session){ .size = sizeof(cs), .name = "ro" },
	       sizeof(cs));
	CHECK(mprotect(page, pg, PROT_READ) == 0);
	CHECK_ERR(ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, page), EFAULT);
	munmap(page, 2 * pg);

	m1 = memfd_create("m1", 0);
	m2 = memfd_create("m2", 0);
	REQUIRE(m1 >= 0 && m2 >= 0);
	CHECK(write(m1, "data one", 8) == 8);
	CHECK(preserve_fd(s1, m1, 0x1111) == 0);
	CHECK_ERR(preserve_fd(s1, m1, 0x2222), EBUSY);
	CHECK_ERR(preserve_fd(s2, m1, 0x3333), EBUSY);
	CHECK_ERR(preserve_fd(s1, m2, 0x1111), EEXIST);
	CHECK(preserve_fd(s2, m2, 0x1111) == 0);
	null = open("/dev/null", O_RDWR);
	REQUIRE(null >= 0);
	CHECK_ERR(preserve_fd(s1, null, 0xdead), ENOENT);
	close(null);
	gone = memfd_create("gone", 0);
	close(gone);
	CHECK_ERR(preserve_fd(s1, gone, 0xbeef), EBADF);
	CHECK_ERR(preserve_fd(s1, -1, 0xbeef), EBADF);
	CHECK_ERR(retrieve_fd(s1, 0x1111), EINVAL);
	CHECK_ERR(finish(s1), EINVAL);
	/* A session command on the device, a device command on a session. */
	CHECK_ERR(ioctl(dev, LIVEUPDATE_SESSION_FINISH, &(struct liveupdate_session_finish){ 8, 0 }), EINVAL);
	CHECK_ERR(ioctl(s1, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs), EINVAL);

	/* The preserved memfd still works. */
	check_bytes(m1, 0, "data one", 8);
	CHECK(close(m1) == 0 && close(m2) == 0);
	CHECK(close(s1) == 0 && close(s2) == 0);
	/* Closing a session unpreserves it: the name is free again. */
	s1 = create_session(dev, "session-one");
	CHECK(s1 >= 0);
	close(s1);
	close(dev);
}

static void test_fork(void)
{
	int dev, s, m, st = 0;
	pid_t pid;

	dev = open("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	s = create_session(dev, "forked");
	m = memfd_create("shared", 0);
	REQUIRE(s >= 0 && m >= 0);
	CHECK(write(m, "0123456789", 10) == 10);
	CHECK(lseek(m, 2, SEEK_SET) == 2);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		char c = 0;
		int own;

		/* The child's table is a copy: same files, same positions. */
		if (read(m, &c, 1) != 1 || c != '2')
			_exit(10);
		if (preserve_fd(s, m, 7) != 0)
			_exit(11);
		own = memfd_create("child-only", 0);
		if (own < 0)
			_exit(12);
		if (close(dev) != 0 || close(s) != 0 || close(m) != 0)
			_exit(13);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The parent's fds survived the child's closes; the file position moved. */
	CHECK(lseek(m, 0, SEEK_CUR) == 3);
	CHECK_ERR(preserve_fd(s, m, 8), EBUSY); /* the child preserved it in our session */
	/* The child's exit closed its own fds before our wait returned. */
	CHECK(fd_is_open(dev) && fd_is_open(s));
	close(m);
	close(s);
	close(dev);

	/* A child dying by a signal loses its fds as at exit. */
	dev = open("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	close(dev);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		if (open("/dev/liveupdate", O_RDWR) < 0)
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
	dev = open("/dev/liveupdate", O_RDWR); /* the dead child's open is gone */
	CHECK(dev >= 0);
	close(dev);
}

static void test_rlimit(void)
{
	struct rlimit old, lim;
	int fds[64], n = 0, i;

	REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
	lim = old;
	lim.rlim_cur = 32;
	CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
	for (i = 0; i < 64; i++) {
		fds[n] = memfd_create("limit", 0);
		if (fds[n] < 0)
			break;
		n++;
	}
	CHECK(i < 64 && errno == EMFILE);
	while (n > 0)
		close(fds[--n]);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
}

/* The large-file and alternative entry points reach the model too. */
static void test_aliases(void)
{
	struct stat64 st;
	siginfo_t si;
	char buf[8] = { 0 };
	int dev, m;
	char *p;
	pid_t pid;

	dev = open64("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	CHECK(fcntl64(dev, F_GETFD) == 0);
	CHECK(fstat64(dev, &st) == 0 && S_ISCHR(st.st_mode));
	m = memfd_create("alias", 0);
	REQUIRE(m >= 0);
	CHECK(ftruncate64(m, 4096) == 0);
	CHECK(pwrite64(m, "abc", 3, 10) == 3);
	CHECK(pread64(m, buf, 3, 10) == 3 && memcmp(buf, "abc", 3) == 0);
	CHECK(lseek64(m, 0, SEEK_END) == 4096);
	p = mmap64(NULL, 4096, PROT_READ, MAP_PRIVATE, m, 0);
	CHECK(p != MAP_FAILED && memcmp(p + 10, "abc", 3) == 0);
	munmap(p, 4096);
	close(m);
	/* waitid reaps the child's task as waitpid does. */
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		_exit(fcntl(dev, F_GETFD) == 0 ? 0 : 1); /* exits holding the device */
	close(dev);
	CHECK(waitid(P_PID, pid, &si, WEXITED) == 0 && si.si_status == 0);
	dev = open("/dev/liveupdate", O_RDWR);
	CHECK(dev >= 0);
	close(dev);
}

static int run_single(void)
{
	test_device();
	test_memfd_io();
	test_mmap();
	test_sessions();
	test_fork();
	test_rlimit();
	test_aliases();
	return failures != 0;
}

/* ---- two stages ----------------------------------------------------------- */

#define DATA "hello kexec world"
#define BIG (1 << 20)

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 131 + (i >> 12));
}

static int run_stage1(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	int dev, state, s, m, big, ready[2];
	unsigned char *buf;
	char *p;
	pid_t pid;
	char c;

	dev = open("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	REQUIRE(retrieve_session(dev, "luoshim-state") < 0 && errno == ENOENT);
	state = create_session(dev, "luoshim-state");
	REQUIRE(state >= 0);
	m = memfd_create("state", 0);
	REQUIRE(m >= 0 && write(m, "2", 1) == 1);
	REQUIRE(preserve_fd(state, m, 999) == 0);
	close(m);

	s = create_session(dev, "luoshim-data");
	REQUIRE(s >= 0);
	m = memfd_create("data", 0);
	REQUIRE(m >= 0 && ftruncate(m, pg) == 0);
	p = mmap(NULL, pg, PROT_WRITE, MAP_SHARED, m, 0);
	REQUIRE(p != MAP_FAILED);
	snprintf(p, pg, "%s", DATA);
	REQUIRE(munmap(p, pg) == 0);
	REQUIRE(lseek(m, 3, SEEK_SET) == 3);
	REQUIRE(preserve_fd(s, m, 0x1a) == 0);
	close(m);

	big = memfd_create("big", 0);
	buf = malloc(BIG);
	REQUIRE(big >= 0 && buf);
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pattern(i);
	REQUIRE(write(big, buf, BIG) == BIG);
	free(buf);
	REQUIRE(preserve_fd(s, big, 0x2b) == 0);
	close(big);
	close(dev);

	/* Leave a daemon holding the sessions (closing them unpreserves). */
	REQUIRE(pipe(ready) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		setsid();
		if (!fd_is_open(s) || !fd_is_open(state))
			_exit(1);
		c = 'r';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		close(ready[1]);
		close(STDIN_FILENO);
		close(STDOUT_FILENO);
		close(STDERR_FILENO);
		for (;;)
			pause();
	}
	close(ready[1]);
	REQUIRE(read(ready[0], &c, 1) == 1 && c == 'r');
	printf("%d\n", pid);
	fflush(stdout);
	return failures != 0;
}

static int run_kexec(void)
{
	/* On success this process is killed, as by a real kexec. */
	if (reboot(LINUX_REBOOT_CMD_KEXEC) < 0) {
		fprintf(stderr, "reboot(LINUX_REBOOT_CMD_KEXEC): %s\n", strerror(errno));
		return 1;
	}
	sleep(10);
	fprintf(stderr, "survived a kexec\n");
	return 1;
}

static int process_gone(pid_t pid)
{
	char path[64], st[256];
	FILE *f;
	int gone = 1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	for (int tries = 0; tries < 200; tries++) {
		f = fopen(path, "r");
		if (!f)
			return 1;
		gone = fgets(st, sizeof(st), f) && strstr(st, ") Z ") != NULL;
		fclose(f);
		if (gone)
			return 1;
		usleep(10000);
	}
	return 0;
}

static int run_stage2(pid_t daemon)
{
	long pg = sysconf(_SC_PAGESIZE);
	int dev, state, s, m, big;
	unsigned char *buf;
	char stage[8] = { 0 };
	struct stat st;
	char *p;

	if (daemon > 0)
		CHECK(process_gone(daemon));
	dev = open("/dev/liveupdate", O_RDWR);
	REQUIRE(dev >= 0);
	/* Only outgoing names must be unique: an incoming one may be reused. */
	m = create_session(dev, "luoshim-state");
	CHECK(m >= 0);
	close(m);
	state = retrieve_session(dev, "luoshim-state");
	REQUIRE(state >= 0);
	CHECK_ERR(retrieve_session(dev, "luoshim-state"), EINVAL); /* retrieved already */
	CHECK_ERR(retrieve_session(dev, "no-such-session"), ENOENT);
	m = retrieve_fd(state, 999);
	REQUIRE(m >= 0);
	CHECK(fcntl(m, F_GETFD) == FD_CLOEXEC);
	CHECK(lseek(m, 0, SEEK_CUR) == 1); /* the position survived */
	CHECK(pread(m, stage, sizeof(stage) - 1, 0) == 1 && strcmp(stage, "2") == 0);
	close(m);

	s = retrieve_session(dev, "luoshim-data");
	REQUIRE(s >= 0);
	CHECK_ERR(preserve_fd(s, dev, 1), EINVAL); /* incoming session: no preserve */
	CHECK_ERR(retrieve_fd(s, 0x3c), ENOENT);
	m = retrieve_fd(s, 0x1a);
	REQUIRE(m >= 0);
	{
		/* A second retrieve hands out the same file again. */
		struct stat st2;
		int again = retrieve_fd(s, 0x1a);

		CHECK(again >= 0 && again != m);
		CHECK(fstat(again, &st2) == 0 && fstat(m, &st) == 0 && st.st_ino == st2.st_ino);
		close(again);
	}
	CHECK(fstat(m, &st) == 0 && st.st_size == pg && S_ISREG(st.st_mode));
	CHECK(lseek(m, 0, SEEK_CUR) == 3);
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, m, 0);
	REQUIRE(p != MAP_FAILED);
	CHECK(strcmp(p, DATA) == 0);
	munmap(p, pg);
	big = retrieve_fd(s, 0x2b);
	REQUIRE(big >= 0);
	buf = malloc(BIG);
	REQUIRE(buf);
	CHECK(pread(big, buf, BIG, 0) == BIG);
	for (size_t i = 0; i < BIG; i++) {
		if (buf[i] != pattern(i)) {
			CHECK(buf[i] == pattern(i));
			break;
		}
	}
	free(buf);
	CHECK(finish(s) == 0);
	CHECK(finish(state) == 0);
	close(m);
	close(big);
	close(s);
	close(state);
	CHECK_ERR(retrieve_session(dev, "luoshim-data"), ENOENT);
	close(dev);
	return failures != 0;
}

int main(int argc, char **argv)
{
	setvbuf(stderr, NULL, _IONBF, 0);
	if (argc >= 2 && strcmp(argv[1], "single") == 0)
		return run_single();
	if (argc >= 2 && strcmp(argv[1], "stage1") == 0)
		return run_stage1();
	if (argc >= 2 && strcmp(argv[1], "kexec") == 0)
		return run_kexec();
	if (argc >= 2 && strcmp(argv[1], "stage2") == 0)
		return run_stage2(argc >= 3 ? atoi(argv[2]) : 0);
	fprintf(stderr, "usage: %s single|stage1|kexec|stage2 [DAEMON-PID]\n", argv[0]);
	return 2;
}
