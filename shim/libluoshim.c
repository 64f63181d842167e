// SPDX-License-Identifier: GPL-2.0
/*
 * libluoshim.so: run a real program against the luomodel kernel that
 * `luo serve` runs. LD_PRELOAD it; LUO_SOCKET names the server's socket
 * (default /tmp/luo-$UID.sock).
 *
 * Interposed: open/openat of /dev/liveupdate and memfd_create create files
 * in the model; on fds that live in the model, ioctl (the LUO uapi, with
 * the fds inside its structs translated both ways), close, read, write,
 * pread, pwrite, lseek, ftruncate, fstat, fcntl, dup, dup2, dup3, mmap,
 * munmap and msync go to the model. fork gives the child a fork of the
 * task; wait reaps the child's task before returning, as exit_files() runs
 * before a parent's wait returns; reboot(LINUX_REBOOT_CMD_KEXEC) kexecs the
 * served machine; setrlimit(RLIMIT_NOFILE) also sets the task's limit.
 * Everything else, and every call on a real fd, goes to the real kernel.
 *
 * Each model fd is backed by a placeholder, a real fd on /dev/null, so fd
 * numbers stay unique in the process; fds[] maps a placeholder to its model
 * fd. A process connects (and becomes a task) at its first model file. A
 * lost connection means the task is gone (a kexec, or the server ended):
 * the process is killed, as a kexec kills every process.
 *
 * Mappings of model memfds are private anonymous memory filled with the
 * file's bytes at mmap time; a shared writable one is stored back at msync
 * and munmap.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/reboot.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luoshim_proto.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

/* The LUO uapi (include/uapi/linux/liveupdate.h): _IO(0xBA, nr). */
#define LUO_IOCTL_CREATE_SESSION	0xBA00
#define LUO_IOCTL_RETRIEVE_SESSION	0xBA01
#define LUO_SESSION_PRESERVE_FD		0xBA40
#define LUO_SESSION_RETRIEVE_FD		0xBA41
#define LUO_DEVICE			"/dev/liveupdate"

/* The largest user struct an ioctl copies from the caller. */
#define IOCTL_MAX_COPY (16u << 20)

struct mapping {
	char *addr;
	size_t len;
	int64_t id;		/* the server's mapping id */
	off_t off;		/* offset of addr within the server's mapping */
	int shared_writable;
};

/*
 * Shim state. lock guards all of it; it is held across each call to the
 * server, so a process's requests are serialized as on one connection.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int sock = -1;		/* the connection; -1 before the first model file */
static int *fds;		/* placeholder fd -> model fd + 1 (0: not a model fd) */
static int nfds;
static struct mapping *maps;
static int nmaps;
static int rlimit_set;		/* setrlimit(RLIMIT_NOFILE) was called */
static struct rlimit rlimit_nofile;

static pid_t (*real_fork)(void);

/* Real syscalls, bypassing every wrapper here. */
static long rsys_close(int fd) { return syscall(SYS_close, fd); }

static int real_open_null(void)
{
	return syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
}

static void die(const char *why)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "libluoshim: %s: killing process %d\n", why, getpid());

	if (n > 0)
		syscall(SYS_write, 2, buf, (size_t)n);
	kill(getpid(), SIGKILL);
	_exit(137);
}

/* socket_path writes the server's socket path into buf. */
static void socket_path(char *buf, size_t n)
{
	const char *s = getenv("LUO_SOCKET");

	if (s && *s)
		snprintf(buf, n, "%s", s);
	else
		snprintf(buf, n, "/tmp/luo-%u.sock", (unsigned)getuid());
}

/* io_all moves exactly n bytes over the socket; -1 on any failure. */
static int io_all(int write_side, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		long r = syscall(write_side ? SYS_sendto : SYS_recvfrom, sock, c, n,
				 write_side ? MSG_NOSIGNAL : 0, NULL, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * call sends a request and reads the reply header; the reply's data is
 * left for the caller to read with recv_data (rep->len - 12 bytes). A lost
 * connection kills the process: its task is gone.
 */
static void call_begin(uint32_t op, int64_t a0, int64_t a1, int64_t a2, int64_t a3,
		       const void *data, size_t dlen, struct luoshim_rep *rep)
{
	struct luoshim_req q = {
		.len = (uint32_t)(LUOSHIM_REQ_HEADER - 4 + dlen),
		.op = op,
		.arg = { a0, a1, a2, a3 },
	};

	if (io_all(1, &q, sizeof(q)) || (dlen && io_all(1, (void *)data, dlen)))
		die("lost the connection to luo serve");
	if (io_all(0, rep, sizeof(*rep)) || rep->len < LUOSHIM_REP_HEADER - 4)
		die("lost the connection to luo serve");
}

static size_t rep_dlen(const struct luoshim_rep *rep)
{
	return rep->len - (LUOSHIM_REP_HEADER - 4);
}

static void recv_data(void *buf, size_t n)
{
	if (n && io_all(0, buf, n))
		die("lost the connection to luo serve");
}

static void drain(size_t n)
{
	char tmp[4096];

	while (n > 0) {
		size_t k = n < sizeof(tmp) ? n : sizeof(tmp);

		recv_data(tmp, k);
		n -= k;
	}
}

/* call runs a request whose reply data is copied into out (at most outlen). */
static int64_t call(uint32_t op, int64_t a0, int64_t a1, int64_t a2, int64_t a3,
		    const void *data, size_t dlen, void *out, size_t outlen, size_t *got)
{
	struct luoshim_rep rep;
	size_t n, k;

	call_begin(op, a0, a1, a2, a3, data, dlen, &rep);
	n = rep_dlen(&rep);
	k = n < outlen ? n : outlen;
	recv_data(out, k);
	drain(n - k);
	if (got)
		*got = k;
	if (rep.err) {
		errno = rep.err;
		return -1;
	}
	return rep.ret;
}

static int64_t call0(uint32_t op, int64_t a0, int64_t a1, int64_t a2)
{
	return call(op, a0, a1, a2, 0, NULL, 0, NULL, 0, NULL);
}

/* connect_as opens a connection and says hello; 0 or -1 (errno set). */
static int connect_as(int kind, uint64_t token)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[PATH_MAX];
	int s, hi;

	socket_path(path, sizeof(path));
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	s = syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (syscall(SYS_connect, s, &sa, sizeof(sa)) < 0) {
		int e = errno;

		rsys_close(s);
		errno = e;
		return -1;
	}
	/* Keep the connection out of the way of the program's own fds. */
	hi = syscall(SYS_fcntl, s, F_DUPFD_CLOEXEC, 512);
	if (hi >= 0) {
		rsys_close(s);
		s = hi;
	}
	sock = s;
	if (call0(LUOSHIM_OP_HELLO, kind, (int64_t)token, 0) < 0) {
		int e = errno;

		rsys_close(sock);
		sock = -1;
		errno = e;
		return -1;
	}
	return 0;
}

/* ensure_task connects as a new task if the process has none yet. */
static int ensure_task(void)
{
	if (sock >= 0)
		return 0;
	if (connect_as(LUOSHIM_HELLO_TASK, 0) < 0)
		return -1;
	if (rlimit_set)
		call0(LUOSHIM_OP_SETRLIMIT, RLIMIT_NOFILE, (int64_t)rlimit_nofile.rlim_cur,
		      (int64_t)rlimit_nofile.rlim_max);
	return 0;
}

/* model_fd is fd's model fd, or -1 if fd is not a model file. */
static int model_fd(int fd)
{
	if (fd < 0 || fd >= nfds)
		return -1;
	return fds[fd] - 1;
}

static int set_model_fd(int fd, int mfd)
{
	if (fd >= nfds) {
		int n = nfds ? nfds : 64;
		int *nf;

		while (n <= fd)
			n *= 2;
		nf = realloc(fds, (size_t)n * sizeof(*fds));
		if (!nf)
			return -1;
		memset(nf + nfds, 0, (size_t)(n - nfds) * sizeof(*fds));
		fds = nf;
		nfds = n;
	}
	fds[fd] = mfd + 1;
	return 0;
}

/*
 * install backs model fd mfd with a new placeholder and returns the
 * placeholder's number; on failure the model fd is closed again and -1
 * returned with errno set (EMFILE, as the model would have said).
 */
static int install(int mfd)
{
	int fd = real_open_null();

	if (fd >= 0 && set_model_fd(fd, mfd) < 0) {
		rsys_close(fd);
		fd = -1;
		errno = ENOMEM;
	}
	if (fd < 0) {
		int e = errno;

		call0(LUOSHIM_OP_CLOSE, mfd, 0, 0);
		errno = e;
	}
	return fd;
}

/* drop_model_fd forgets placeholder fd's model fd and closes the latter. */
static void drop_model_fd(int fd)
{
	int mfd = model_fd(fd);

	if (mfd >= 0) {
		fds[fd] = 0;
		call0(LUOSHIM_OP_CLOSE, mfd, 0, 0);
	}
}

/* keep_sock_off moves the connection away from fd, which the program is
 * about to take (dup2 onto it). */
static void keep_sock_off(int fd)
{
	if (sock >= 0 && fd == sock) {
		int s = syscall(SYS_fcntl, sock, F_DUPFD_CLOEXEC, fd + 1);

		if (s < 0)
			die("cannot move the luo serve connection");
		rsys_close(sock);
		sock = s;
	}
}

static int is_luo_device(const char *path)
{
	return path && strcmp(path, LUO_DEVICE) == 0;
}

/* ---- open, memfd_create ---------------------------------------------- */

static int model_open(const char *path, int flags)
{
	int mfd, fd = -1;

	pthread_mutex_lock(&lock);
	if (ensure_task() < 0) {
		pthread_mutex_unlock(&lock);
		return -2;	/* no server: the real kernel decides */
	}
	mfd = call(LUOSHIM_OP_OPEN, flags, 0, 0, 0, path, strlen(path), NULL, 0, NULL);
	if (mfd >= 0)
		fd = install(mfd);
	pthread_mutex_unlock(&lock);
	return fd;
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	if (is_luo_device(path)) {
		int fd = model_open(path, flags);

		if (fd != -2)
			return fd;
	}
	return syscall(SYS_openat, dirfd, path, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
	if (flags & (O_CREAT | __O_TMPFILE))
		return va_arg(ap, mode_t);
	return 0;
}

SHIM_EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_common(AT_FDCWD, path, flags, mode);
}

SHIM_EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_common(AT_FDCWD, path, flags, mode);
}

SHIM_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_common(dirfd, path, flags, mode);
}

SHIM_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_common(dirfd, path, flags, mode);
}

SHIM_EXPORT int __open_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0); }
SHIM_EXPORT int __open64_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0); }
SHIM_EXPORT int __openat_2(int d, const char *path, int flags) { return open_common(d, path, flags, 0); }
SHIM_EXPORT int __openat64_2(int d, const char *path, int flags) { return open_common(d, path, flags, 0); }

SHIM_EXPORT int memfd_create(const char *name, unsigned int flags)
{
	int mfd, fd = -1;

	pthread_mutex_lock(&lock);
	if (ensure_task() < 0) {
		pthread_mutex_unlock(&lock);
		return syscall(SYS_memfd_create, name, flags);
	}
	if (!name) {
		pthread_mutex_unlock(&lock);
		errno = EFAULT;
		return -1;
	}
	mfd = call(LUOSHIM_OP_MEMFD, flags, 0, 0, 0, name, strnlen(name, 4096), NULL, 0, NULL);
	if (mfd >= 0)
		fd = install(mfd);
	pthread_mutex_unlock(&lock);
	return fd;
}

/* ---- close, dup ------------------------------------------------------- */

SHIM_EXPORT int close(int fd)
{
	int mfd, r;

	pthread_mutex_lock(&lock);
	if (sock >= 0 && fd == sock) {
		pthread_mutex_unlock(&lock);
		errno = EBADF;	/* the connection is not the program's */
		return -1;
	}
	mfd = model_fd(fd);
	if (mfd < 0) {
		pthread_mutex_unlock(&lock);
		return rsys_close(fd);
	}
	fds[fd] = 0;
	r = call0(LUOSHIM_OP_CLOSE, mfd, 0, 0);
	{
		int e = errno;

		rsys_close(fd);
		errno = e;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

/* model_dup duplicates model fd mfd onto a new placeholder at or above
 * minfd (newfd < 0) or exactly at newfd. */
static int model_dup(int fd, int mfd, int minfd, int newfd, int cloexec)
{
	int m2, l2;

	if (cloexec)
		m2 = call0(LUOSHIM_OP_FCNTL, mfd, F_DUPFD_CLOEXEC, 0);
	else
		m2 = call0(LUOSHIM_OP_DUP, mfd, 0, 0);
	if (m2 < 0)
		return -1;
	if (newfd >= 0) {
		keep_sock_off(newfd);
		l2 = syscall(SYS_dup3, fd, newfd, O_CLOEXEC);
		if (l2 >= 0)
			drop_model_fd(l2);	/* dup2 closes what newfd held */
	} else {
		l2 = syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, minfd);
	}
	if (l2 < 0 || set_model_fd(l2, m2) < 0) {
		int e = l2 < 0 ? errno : ENOMEM;

		call0(LUOSHIM_OP_CLOSE, m2, 0, 0);
		if (l2 >= 0)
			rsys_close(l2);
		errno = e;
		return -1;
	}
	return l2;
}

SHIM_EXPORT int dup(int fd)
{
	int mfd, r;

	pthread_mutex_lock(&lock);
	mfd = model_fd(fd);
	if (mfd < 0)
		r = syscall(SYS_dup, fd);
	else
		r = model_dup(fd, mfd, 0, -1, 0);
	pthread_mutex_unlock(&lock);
	return r;
}

static int dup3_common(int oldfd, int newfd, int flags, int is_dup2)
{
	int mfd, r;

	pthread_mutex_lock(&lock);
	mfd = model_fd(oldfd);
	if (oldfd == newfd) {
		/* dup2 checks oldfd and returns it; dup3 refuses. */
		pthread_mutex_unlock(&lock);
		if (!is_dup2) {
			errno = EINVAL;
			return -1;
		}
		if (mfd >= 0)
			return oldfd;
		return syscall(SYS_fcntl, oldfd, F_GETFD) < 0 ? -1 : oldfd;
	}
	if (flags & ~O_CLOEXEC) {
		pthread_mutex_unlock(&lock);
		errno = EINVAL;
		return -1;
	}
	if (mfd >= 0) {
		r = model_dup(oldfd, mfd, 0, newfd, flags & O_CLOEXEC);
	} else {
		keep_sock_off(newfd);
		r = syscall(SYS_dup3, oldfd, newfd, flags);
		if (r >= 0)
			drop_model_fd(r);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

SHIM_EXPORT int dup2(int oldfd, int newfd) { return dup3_common(oldfd, newfd, 0, 1); }
SHIM_EXPORT int dup3(int oldfd, int newfd, int flags) { return dup3_common(oldfd, newfd, flags, 0); }

/* ---- read, write, lseek, ftruncate, fstat, fcntl ----------------------- */

static size_t cap(size_t n)
{
	return n > LUOSHIM_MAX_DATA ? LUOSHIM_MAX_DATA : n;
}

static ssize_t model_read(int mfd, void *buf, size_t n, int64_t off, int op)
{
	struct luoshim_rep rep;
	size_t k;
	char *tmp;

	n = cap(n);
	call_begin(op, mfd, (int64_t)n, off, 0, NULL, 0, &rep);
	k = rep_dlen(&rep);
	if (rep.err) {
		drain(k);
		errno = rep.err;
		return -1;
	}
	if (k > n)
		die("luo serve sent more than was asked for");
	/* Receive into a bounce buffer: the user buffer may be bad (EFAULT). */
	tmp = malloc(k ? k : 1);
	if (!tmp)
		die("out of memory");
	recv_data(tmp, k);
	if (k && syscall(SYS_process_vm_writev, getpid(),
			 &(struct iovec){ tmp, k }, 1UL, &(struct iovec){ buf, k }, 1UL, 0UL) != (long)k) {
		/* No process_vm_writev (seccomp): copy directly. */
		if (errno == ENOSYS || errno == EPERM)
			memcpy(buf, tmp, k);
		else {
			free(tmp);
			errno = EFAULT;
			return -1;
		}
	}
	free(tmp);
	return (ssize_t)k;
}

/* safe_read copies up to n bytes from user address src; it returns how
 * many leading bytes were readable. */
static size_t safe_read(void *dst, const void *src, size_t n)
{
	long r;

	if (n == 0)
		return 0;
	r = syscall(SYS_process_vm_readv, getpid(), &(struct iovec){ dst, n }, 1UL,
		    &(struct iovec){ (void *)src, n }, 1UL, 0UL);
	if (r >= 0)
		return (size_t)r;
	if (errno == ENOSYS || errno == EPERM) {
		memcpy(dst, src, n);
		return n;
	}
	return 0;
}

static int safe_write(void *dst, const void *src, size_t n)
{
	long r;

	if (n == 0)
		return 0;
	r = syscall(SYS_process_vm_writev, getpid(), &(struct iovec){ (void *)src, n }, 1UL,
		    &(struct iovec){ dst, n }, 1UL, 0UL);
	if (r == (long)n)
		return 0;
	if (r < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy(dst, src, n);
		return 0;
	}
	return -1;
}

static ssize_t model_write(int mfd, const void *buf, size_t n, int64_t off, int op)
{
	char *tmp;
	ssize_t r;
	size_t k;

	n = cap(n);
	tmp = malloc(n ? n : 1);
	if (!tmp) {
		errno = ENOMEM;
		return -1;
	}
	k = safe_read(tmp, buf, n);
	if (k < n && k == 0 && n > 0) {
		free(tmp);
		errno = EFAULT;
		return -1;
	}
	if (op == LUOSHIM_OP_WRITE)
		r = call(op, mfd, 0, 0, 0, tmp, k, NULL, 0, NULL);
	else
		r = call(op, mfd, off, 0, 0, tmp, k, NULL, 0, NULL);
	free(tmp);
	return r;
}

#define WITH_MODEL_FD(fd, mfd, real_call, model_call)	\
	do {						\
		long r__;				\
		pthread_mutex_lock(&lock);		\
		mfd = model_fd(fd);			\
		if (mfd < 0) {				\
			pthread_mutex_unlock(&lock);	\
			return real_call;		\
		}					\
		r__ = model_call;			\
		pthread_mutex_unlock(&lock);		\
		return r__;				\
	} while (0)

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_read, fd, buf, n),
		      model_read(mfd, buf, n, 0, LUOSHIM_OP_READ));
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_write, fd, buf, n),
		      model_write(mfd, buf, n, 0, LUOSHIM_OP_WRITE));
}

SHIM_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_pread64, fd, buf, n, off),
		      model_read(mfd, buf, n, off, LUOSHIM_OP_PREAD));
}

SHIM_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_pwrite64, fd, buf, n, off),
		      model_write(mfd, buf, n, off, LUOSHIM_OP_PWRITE));
}

SHIM_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off) { return pread(fd, buf, n, off); }
SHIM_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		abort();
	return read(fd, buf, n);
}

SHIM_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (n > buflen)
		abort();
	return pread(fd, buf, n, off);
}

SHIM_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (n > buflen)
		abort();
	return pread(fd, buf, n, off);
}

SHIM_EXPORT off_t lseek(int fd, off_t off, int whence)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_lseek, fd, off, whence),
		      call0(LUOSHIM_OP_LSEEK, mfd, off, whence));
}

SHIM_EXPORT off_t lseek64(int fd, off_t off, int whence) { return lseek(fd, off, whence); }

SHIM_EXPORT int ftruncate(int fd, off_t len)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_ftruncate, fd, len),
		      call0(LUOSHIM_OP_FTRUNCATE, mfd, len, 0));
}

SHIM_EXPORT int ftruncate64(int fd, off_t len) { return ftruncate(fd, len); }

static int model_fstat(int mfd, struct stat *st)
{
	struct luoshim_stat ls;
	struct stat out;
	size_t got;

	if (call(LUOSHIM_OP_FSTAT, mfd, 0, 0, 0, NULL, 0, &ls, sizeof(ls), &got) < 0)
		return -1;
	if (got != sizeof(ls))
		die("short stat reply from luo serve");
	memset(&out, 0, sizeof(out));
	out.st_ino = ls.ino;
	out.st_mode = ls.mode;
	out.st_nlink = ls.nlink;
	out.st_rdev = ls.rdev;
	out.st_size = ls.size;
	out.st_blksize = ls.blksize;
	out.st_blocks = ls.blocks;
	out.st_uid = getuid();
	out.st_gid = getgid();
	if (safe_write(st, &out, sizeof(out)) < 0) {
		errno = EFAULT;
		return -1;
	}
	return 0;
}

SHIM_EXPORT int fstat(int fd, struct stat *st)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_fstat, fd, st), model_fstat(mfd, st));
}

SHIM_EXPORT int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }
SHIM_EXPORT int __fxstat(int ver, int fd, struct stat *st) { (void)ver; return fstat(fd, st); }
SHIM_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st) { (void)ver; return fstat(fd, (struct stat *)st); }

static int model_fcntl(int fd, int mfd, int cmd, long arg)
{
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		if (arg < 0 || arg > INT_MAX) {
			errno = EINVAL;
			return -1;
		}
		return model_dup(fd, mfd, (int)arg, -1, cmd == F_DUPFD_CLOEXEC);
	}
	return call0(LUOSHIM_OP_FCNTL, mfd, cmd, arg);
}

static int fcntl_common(int fd, int cmd, long arg)
{
	int mfd;

	WITH_MODEL_FD(fd, mfd, syscall(SYS_fcntl, fd, cmd, arg), model_fcntl(fd, mfd, cmd, arg));
}

SHIM_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

SHIM_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

/* ---- ioctl --------------------------------------------------------------- */

static int ioctl_out_fd(unsigned long cmd)
{
	return cmd == LUO_IOCTL_CREATE_SESSION || cmd == LUO_IOCTL_RETRIEVE_SESSION ||
	       cmd == LUO_SESSION_RETRIEVE_FD;
}

/*
 * model_ioctl copies the user struct the model will read (its leading u32
 * size says how long; a bad pointer leaves a short buffer, which the model
 * faults on as the kernel would), translates the fd a PRESERVE_FD passes
 * from the process's number to the model's, runs the ioctl, translates the
 * fd a CREATE/RETRIEVE returns back to a new placeholder, and stores the
 * bytes the model changed.
 */
static int model_ioctl(int mfd, unsigned long cmd, void *arg)
{
	unsigned char *orig = NULL, *buf = NULL;
	size_t n = 0, got = 0, i;
	uint32_t usize;
	int32_t ufd = 0;
	int tmp_mfd = -1, r, e, newfd = -1;

	if (safe_read(&usize, arg, 4) == 4) {
		n = usize < 4 ? 4 : usize;
		if (n > IOCTL_MAX_COPY)
			n = IOCTL_MAX_COPY;
	}
	orig = malloc(n + 1);
	buf = malloc(n + 1);
	if (!orig || !buf) {
		free(orig);
		free(buf);
		errno = ENOMEM;
		return -1;
	}
	n = safe_read(orig, arg, n);
	memcpy(buf, orig, n);
	if (cmd == LUO_SESSION_PRESERVE_FD && n >= 8) {
		int32_t m;

		memcpy(&ufd, buf + 4, 4);
		m = model_fd(ufd);
		if (m < 0 && ufd >= 0 && ufd != sock && syscall(SYS_fcntl, ufd, F_GETFD) >= 0) {
			/*
			 * A real file: no LUO handler can preserve it, as for
			 * any file the model lacks; stand in /dev/null.
			 */
			tmp_mfd = call(LUOSHIM_OP_OPEN, O_RDONLY, 0, 0, 0, "/dev/null", 9, NULL, 0, NULL);
			m = tmp_mfd;
		}
		memcpy(buf + 4, &m, 4);
	}
	r = call(LUOSHIM_OP_IOCTL, mfd, (int64_t)cmd, 0, 0, buf, n, buf, n, &got);
	e = errno;
	if (tmp_mfd >= 0)
		call0(LUOSHIM_OP_CLOSE, tmp_mfd, 0, 0);
	if (got != n)
		die("ioctl reply of the wrong size from luo serve");
	if (cmd == LUO_SESSION_PRESERVE_FD && n >= 8)
		memcpy(buf + 4, &ufd, 4);
	if (r == 0 && ioctl_out_fd(cmd) && n >= 8) {
		int32_t m;

		memcpy(&m, buf + 4, 4);
		newfd = install(m);
		if (newfd < 0) {
			r = -1;
			e = errno;
		} else {
			memcpy(buf + 4, &newfd, 4);
		}
	}
	/* Store only what changed: the kernel writes only its output fields. */
	for (i = 0; i < n; i++) {
		size_t j = i;

		if (buf[i] == orig[i])
			continue;
		while (j < n && buf[j] != orig[j])
			j++;
		if (safe_write((char *)arg + i, buf + i, j - i) < 0) {
			if (newfd >= 0) {
				drop_model_fd(newfd);
				rsys_close(newfd);
			}
			r = -1;
			e = EFAULT;
			break;
		}
		i = j;
	}
	free(orig);
	free(buf);
	errno = e;
	return r;
}

SHIM_EXPORT int ioctl(int fd, unsigned long cmd, ...)
{
	va_list ap;
	void *arg;
	int mfd;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	WITH_MODEL_FD(fd, mfd, syscall(SYS_ioctl, fd, cmd, arg), model_ioctl(mfd, cmd, arg));
}

/* ---- mmap, msync, munmap ------------------------------------------------- */

static void forget_range(void *addr, size_t len);

static void *model_mmap(void *addr, size_t len, int prot, int flags, int mfd, off_t off)
{
	struct luoshim_rep rep;
	size_t k;
	char *p;
	struct mapping *nm;

	call_begin(LUOSHIM_OP_MMAP, mfd, (int64_t)len,
		   (int64_t)(uint32_t)prot | (int64_t)(uint32_t)flags << 32, off, NULL, 0, &rep);
	k = rep_dlen(&rep);
	if (rep.err) {
		drain(k);
		errno = rep.err;
		return MAP_FAILED;
	}
	p = (void *)syscall(SYS_mmap, addr, k, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)),
			    -1, 0);
	nm = realloc(maps, (size_t)(nmaps + 1) * sizeof(*maps));
	if (p == MAP_FAILED || !nm) {
		int e = p == MAP_FAILED ? errno : ENOMEM;

		if (nm)
			maps = nm;
		if (p != MAP_FAILED)
			syscall(SYS_munmap, p, k);
		drain(k);
		call0(LUOSHIM_OP_MUNMAP, rep.ret, 0, 0);
		errno = e;
		return MAP_FAILED;
	}
	maps = nm;
	recv_data(p, k);
	syscall(SYS_mprotect, p, k, prot);
	maps[nmaps++] = (struct mapping){
		.addr = p, .len = k, .id = rep.ret, .off = 0,
		.shared_writable = (flags & MAP_TYPE) != MAP_PRIVATE && (prot & PROT_WRITE),
	};
	return p;
}

SHIM_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int mfd;
	void *r;

	pthread_mutex_lock(&lock);
	if (flags & MAP_FIXED)
		forget_range(addr, len); /* what was mapped there is replaced */
	if (flags & MAP_ANONYMOUS) {
		pthread_mutex_unlock(&lock);
		return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	}
	mfd = model_fd(fd);
	if (mfd < 0) {
		pthread_mutex_unlock(&lock);
		return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	}
	r = model_mmap(addr, len, prot, flags, mfd, off);
	pthread_mutex_unlock(&lock);
	return r;
}

SHIM_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

/* store_back sends mapping m's bytes in [a, b) to the model. */
static int store_back(struct mapping *m, char *a, char *b)
{
	if (!m->shared_writable || a >= b)
		return 0;
	return call(LUOSHIM_OP_MSYNC, m->id, m->off + (a - m->addr), 0, 0, a, (size_t)(b - a),
		    NULL, 0, NULL) < 0 ? -1 : 0;
}

static int id_in_use(int64_t id)
{
	for (int i = 0; i < nmaps; i++)
		if (maps[i].id == id)
			return 1;
	return 0;
}

/*
 * forget_range drops [addr, addr+len) from the model mappings, storing a
 * shared writable mapping's bytes back first: the range is about to be
 * unmapped or mapped over. Called with lock held.
 */
static void forget_range(void *addr, size_t len)
{
	char *a = addr, *b = (char *)addr + len;
	int i;

	for (i = 0; i < nmaps; i++) {
		struct mapping *m = &maps[i];
		char *s = m->addr, *e = m->addr + m->len;
		char *oa = a > s ? a : s, *ob = b < e ? b : e;
		int64_t id = m->id;

		if (oa >= ob)
			continue;
		store_back(m, oa, ob);
		if (oa == s && ob == e) {
			maps[i--] = maps[--nmaps];
			if (!id_in_use(id))
				call0(LUOSHIM_OP_MUNMAP, id, 0, 0);
		} else if (oa == s) {
			m->off += ob - s;
			m->len = (size_t)(e - ob);
			m->addr = ob;
		} else if (ob == e) {
			m->len = (size_t)(oa - s);
		} else {
			/* A hole in the middle: two pieces of the same mapping. */
			struct mapping tail = *m;
			struct mapping *nm = realloc(maps, (size_t)(nmaps + 1) * sizeof(*maps));

			if (!nm)
				die("out of memory");
			maps = nm;
			m = &maps[i];
			tail.addr = ob;
			tail.off = m->off + (ob - s);
			tail.len = (size_t)(e - ob);
			m->len = (size_t)(oa - s);
			maps[nmaps++] = tail;
		}
	}
}

SHIM_EXPORT int munmap(void *addr, size_t len)
{
	pthread_mutex_lock(&lock);
	forget_range(addr, len);
	pthread_mutex_unlock(&lock);
	return syscall(SYS_munmap, addr, len);
}

SHIM_EXPORT int msync(void *addr, size_t len, int flags)
{
	char *a = addr, *b = (char *)addr + len;
	int i, r = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nmaps; i++) {
		struct mapping *m = &maps[i];
		char *oa = a > m->addr ? a : m->addr;
		char *ob = b < m->addr + m->len ? b : m->addr + m->len;

		if (oa < ob && store_back(m, oa, ob) < 0)
			r = -1;
	}
	pthread_mutex_unlock(&lock);
	if (r < 0)
		return -1;
	return syscall(SYS_msync, addr, len, flags);
}

/* ---- fork, wait, reboot, setrlimit --------------------------------------- */

SHIM_EXPORT pid_t fork(void)
{
	int64_t tok;
	pid_t pid;

	if (!real_fork)
		real_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
	pthread_mutex_lock(&lock);
	if (sock < 0) {
		pid = real_fork();
		if (pid == 0)
			pthread_mutex_init(&lock, NULL);
		else
			pthread_mutex_unlock(&lock);
		return pid;
	}
	tok = call0(LUOSHIM_OP_FORK, 0, 0, 0);
	if (tok < 0) {
		pthread_mutex_unlock(&lock);
		return -1;	/* the model's fork failed: errno is its */
	}
	pid = real_fork();
	if (pid == 0) {
		pthread_mutex_init(&lock, NULL);
		rsys_close(sock);
		sock = -1;
		if (connect_as(LUOSHIM_HELLO_FORK, (uint64_t)tok) < 0)
			die("the forked child could not claim its task");
		return 0;
	}
	{
		int e = errno;

		call0(LUOSHIM_OP_FORKWAIT, tok, pid < 0, 0);
		errno = e;
	}
	pthread_mutex_unlock(&lock);
	return pid;
}

/*
 * reap makes a parent's wait return only after the child's task exited,
 * as exit_files() runs before the parent can reap: a process that never
 * connected has none and the server answers at once.
 */
static void reap(pid_t pid)
{
	int own;

	if (pid <= 0)
		return;
	pthread_mutex_lock(&lock);
	own = sock < 0;
	if (own && connect_as(LUOSHIM_HELLO_CONTROL, 0) < 0) {
		pthread_mutex_unlock(&lock);
		return;	/* no server */
	}
	call0(LUOSHIM_OP_REAP, pid, 0, 0);
	if (own) {
		rsys_close(sock);
		sock = -1;
	}
	pthread_mutex_unlock(&lock);
}

static int gone(int status)
{
	return WIFEXITED(status) || WIFSIGNALED(status);
}

SHIM_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	int st = 0, e;
	pid_t r = syscall(SYS_wait4, pid, &st, options, ru);

	e = errno;
	if (r > 0 && gone(st))
		reap(r);
	if (r > 0 && status)
		*status = st;
	errno = e;
	return r;
}

SHIM_EXPORT pid_t waitpid(pid_t pid, int *status, int options) { return wait4(pid, status, options, NULL); }
SHIM_EXPORT pid_t wait(int *status) { return wait4(-1, status, 0, NULL); }
SHIM_EXPORT pid_t wait3(int *status, int options, struct rusage *ru) { return wait4(-1, status, options, ru); }

SHIM_EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	int r = syscall(SYS_waitid, idtype, id, info, options, NULL), e = errno;

	if (r == 0 && info && info->si_pid > 0 && !(options & WNOWAIT) &&
	    (info->si_code == CLD_EXITED || info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED))
		reap(info->si_pid);
	errno = e;
	return r;
}

SHIM_EXPORT int reboot(int howto)
{
	int r, own;

	if ((unsigned int)howto != LINUX_REBOOT_CMD_KEXEC)
		return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, howto, NULL);
	pthread_mutex_lock(&lock);
	own = sock < 0;
	if (own && connect_as(LUOSHIM_HELLO_CONTROL, 0) < 0) {
		pthread_mutex_unlock(&lock);
		return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, howto, NULL);
	}
	/* On success the server kills every process of the old kernel, this one too. */
	r = call0(LUOSHIM_OP_KEXEC, 1, 0, 0);
	if (own) {
		int e = errno;

		rsys_close(sock);
		sock = -1;
		errno = e;
	}
	pthread_mutex_unlock(&lock);
	return r < 0 ? -1 : 0;
}

/*
 * setrlimit(RLIMIT_NOFILE) sets the task's limit too, the model's answer
 * first: a limit the model refuses is refused. A process without a task
 * yet gets it when it connects.
 */
SHIM_EXPORT int setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
	struct rlimit v;

	if (res != RLIMIT_NOFILE)
		return syscall(SYS_prlimit64, 0, res, rl, NULL);
	if (safe_read(&v, rl, sizeof(v)) != sizeof(v)) {
		errno = EFAULT;
		return -1;
	}
	pthread_mutex_lock(&lock);
	if (sock >= 0 && call0(LUOSHIM_OP_SETRLIMIT, res, (int64_t)v.rlim_cur, (int64_t)v.rlim_max) < 0) {
		pthread_mutex_unlock(&lock);
		return -1;
	}
	if (syscall(SYS_prlimit64, 0, res, &v, NULL) < 0) {
		pthread_mutex_unlock(&lock);
		return -1;
	}
	rlimit_set = 1;
	rlimit_nofile = v;
	pthread_mutex_unlock(&lock);
	return 0;
}

SHIM_EXPORT int setrlimit64(__rlimit_resource_t res, const struct rlimit64 *rl)
{
	return setrlimit(res, (const struct rlimit *)rl);
}
