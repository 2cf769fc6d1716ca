/* syscalls: a tour of simple syscalls; prints only facts that are stable
 * between a native run and a sandboxed one. Exit 0 iff every check holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int fails;

static void check(int cond, const char *okmsg, const char *failmsg)
{
	if (cond) {
		printf("%s\n", okmsg);
	} else {
		printf("FAIL %s (errno %d %s)\n", failmsg, errno, strerror(errno));
		fails++;
	}
}

static void on_usr1(int sig)
{
	(void)sig;
}

static void ioctl_result(const char *name, unsigned long req)
{
	unsigned char buf[256]; /* big enough for struct winsize / kernel termios */
	errno = 0;
	int r = ioctl(1, req, buf);
	if (r == 0)
		printf("%s: 0\n", name);
	else if (errno == ENOTTY)
		printf("%s: ENOTTY\n", name);
	else {
		printf("FAIL %s: %d errno %d (%s)\n", name, r, errno, strerror(errno));
		fails++;
	}
}

int main(int argc, char **argv)
{
	(void)argc;
	pid_t pid = getpid();
	pid_t tid = (pid_t)syscall(SYS_gettid);
	check(pid > 0, "getpid positive", "getpid");
	check(tid == pid, "gettid == getpid", "gettid != getpid");
	check(getppid() >= 0, "getppid nonnegative", "getppid");
	uid_t uid = getuid(), euid = geteuid();
	gid_t gid = getgid(), egid = getegid();
	check(uid == euid, "getuid == geteuid", "getuid != geteuid");
	check(gid == egid, "getgid == getegid", "getgid != getegid");

	struct utsname u;
	if (uname(&u) == 0) {
		printf("sysname=%s\n", u.sysname);
		printf("machine=%s\n", u.machine);
	} else {
		check(0, "", "uname");
	}

	struct timespec m1, m2, rt;
	int r1 = clock_gettime(CLOCK_MONOTONIC, &m1);
	int r2 = clock_gettime(CLOCK_MONOTONIC, &m2);
	check(r1 == 0 && r2 == 0 &&
		      (m2.tv_sec > m1.tv_sec ||
		       (m2.tv_sec == m1.tv_sec && m2.tv_nsec >= m1.tv_nsec)),
	      "monotonic ok", "CLOCK_MONOTONIC went backwards or failed");
	check(clock_gettime(CLOCK_REALTIME, &rt) == 0 && rt.tv_sec > 1577836800 &&
		      rt.tv_nsec >= 0 && rt.tv_nsec < 1000000000,
	      "realtime ok", "CLOCK_REALTIME implausible");

	unsigned char rnd[32];
	memset(rnd, 0, sizeof rnd);
	long gr = syscall(SYS_getrandom, rnd, sizeof rnd, 0);
	unsigned acc = 0;
	for (size_t i = 0; i < sizeof rnd; i++)
		acc |= rnd[i];
	check(gr == (long)sizeof rnd && acc != 0, "getrandom ok", "getrandom");

	struct rlimit rl = {0, 0};
	long pr = syscall(SYS_prlimit64, 0, RLIMIT_STACK, NULL, &rl);
	check(pr == 0 && rl.rlim_cur > 0, "rlimit ok", "prlimit64(RLIMIT_STACK)");

	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		char a0[4096];
		snprintf(a0, sizeof a0, "%s", argv[0]);
		check(strcmp(basename(exe), basename(a0)) == 0, "exe ok",
		      "/proc/self/exe basename != argv[0] basename");
	} else {
		check(0, "", "readlink(/proc/self/exe)");
	}

	ioctl_result("TIOCGWINSZ", TIOCGWINSZ);
	ioctl_result("TCGETS", TCGETS);

	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	memset(&old, 0, sizeof old);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	int s1 = sigaction(SIGUSR1, &sa, NULL);
	int s2 = sigaction(SIGUSR1, NULL, &old);
	check(s1 == 0 && s2 == 0 && old.sa_handler == on_usr1, "sigaction ok",
	      "sigaction(SIGUSR1) did not read back the handler");

	sigset_t set, cur;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	int p1 = sigprocmask(SIG_BLOCK, &set, NULL);
	sigemptyset(&cur);
	int p2 = sigprocmask(SIG_BLOCK, NULL, &cur);
	check(p1 == 0 && p2 == 0 && sigismember(&cur, SIGUSR2) == 1 &&
		      sigismember(&cur, SIGUSR1) == 0,
	      "sigprocmask ok", "sigprocmask did not report SIGUSR2 blocked");

	int pfd[2], qfd[2];
	check(pipe2(pfd, O_CLOEXEC) == 0 && fcntl(pfd[0], F_GETFD) == FD_CLOEXEC &&
		      fcntl(pfd[1], F_GETFD) == FD_CLOEXEC,
	      "pipe2(O_CLOEXEC) sets close-on-exec", "pipe2(O_CLOEXEC) left FD_CLOEXEC clear");
	check(pipe2(qfd, 0) == 0 && fcntl(qfd[0], F_GETFD) == 0 && fcntl(qfd[1], F_GETFD) == 0,
	      "pipe2(0) leaves close-on-exec clear", "pipe2(0) set FD_CLOEXEC");
	close(pfd[0]);
	close(pfd[1]);
	close(qfd[0]);
	close(qfd[1]);

	if (fails)
		printf("syscalls: %d FAILED\n", fails);
	else
		printf("syscalls: all ok\n");
	return fails ? 1 : 0;
}
