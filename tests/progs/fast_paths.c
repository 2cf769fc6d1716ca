/* fast_paths CLASS N: N iterations of one syscall class that the Sentry serves without the
 * host, then _exit(0) with no output. Single-stepped under kvm (tests/measure-kvm,
 * tests/tests/fast_paths.rs), the difference between two N gives the Sentry's instructions
 * per iteration. Raw `syscall` instructions throughout (no libc wrappers, no vDSO).
 *   getpid        getpid
 *   gettid        gettid
 *   clock         clock_gettime(CLOCK_MONOTONIC)
 *   futex_wake    futex(FUTEX_WAKE) on a word nobody waits on
 *   brk           brk(b0 + 4096) and brk(b0) alternately: one brk per iteration
 *   fault         first touch of a fresh anonymous page, 16 pages apart (a fault each)
 *   pipe          a 1-byte ping-pong with a child over two pipes: per iteration each side
 *                 writes 1 byte and reads 1 byte (2 writes, 2 reads, 2 task switches)
 *   futex_pp      a ping-pong between two threads of the process over one futex word: per
 *                 iteration each side hands the turn over (a store and a FUTEX_WAKE) and
 *                 waits for it back (FUTEX_WAIT while the word is not its turn) */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#define PAGE 4096UL

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}

static long sys(long n, long a, long b, long c, long d)
{
	return sys6(n, a, b, c, d, 0, 0);
}

static void die(int code)
{
	sys(SYS_exit_group, code, 0, 0, 0);
	for (;;)
		;
}

/* futex_pp: whose turn it is (0 main, 1 the other thread), and how many rounds. */
static int turn;
static long rounds;

/* Hands the turn to `to` and waits until it is `mine` again. */
static void hand_over(int to, int mine)
{
	__atomic_store_n(&turn, to, __ATOMIC_SEQ_CST);
	sys(SYS_futex, (long)&turn, 129 /* FUTEX_WAKE_PRIVATE */, 1, 0);
	while (__atomic_load_n(&turn, __ATOMIC_SEQ_CST) != mine) {
		long r = sys(SYS_futex, (long)&turn, 128 /* FUTEX_WAIT_PRIVATE */, to, 0);
		if (r != 0 && r != -11 /* EAGAIN */)
			die(1);
	}
}

static void *other(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++) {
		while (__atomic_load_n(&turn, __ATOMIC_SEQ_CST) != 1) {
			long r = sys(SYS_futex, (long)&turn, 128 /* FUTEX_WAIT_PRIVATE */, 0, 0);
			if (r != 0 && r != -11)
				die(1);
		}
		if (i + 1 < rounds)
			hand_over(0, 1);
		else {
			__atomic_store_n(&turn, 0, __ATOMIC_SEQ_CST);
			sys(SYS_futex, (long)&turn, 129, 1, 0);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die(2);
	const char *c = argv[1];
	long n = atol(argv[2]);
	if (!strcmp(c, "getpid")) {
		for (long i = 0; i < n; i++)
			if (sys(SYS_getpid, 0, 0, 0, 0) <= 0)
				die(1);
	} else if (!strcmp(c, "gettid")) {
		for (long i = 0; i < n; i++)
			if (sys(SYS_gettid, 0, 0, 0, 0) <= 0)
				die(1);
	} else if (!strcmp(c, "clock")) {
		struct timespec ts;
		for (long i = 0; i < n; i++)
			if (sys(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0, 0) != 0)
				die(1);
	} else if (!strcmp(c, "futex_wake")) {
		static int word;
		for (long i = 0; i < n; i++)
			if (sys(SYS_futex, (long)&word, 1 /* FUTEX_WAKE */, 1, 0) != 0)
				die(1);
	} else if (!strcmp(c, "brk")) {
		uintptr_t b0 = sys(SYS_brk, 0, 0, 0, 0);
		for (long i = 0; i < n; i++) {
			uintptr_t want = i % 2 == 0 ? b0 + PAGE : b0;
			if ((uintptr_t)sys(SYS_brk, want, 0, 0, 0) != want)
				die(1);
		}
	} else if (!strcmp(c, "fault")) {
		/* One page in FAULT_AROUND (16: the Sentry populates that many per fault), so that
		 * every touch faults. A fixed size, so that only the touches depend on N. */
		long stride = 16 * PAGE, len = 1024 * stride;
		if (n > 1024)
			die(2);
		unsigned char *p = (unsigned char *)sys6(SYS_mmap, 0, len, 3 /* RW */,
							 0x22 /* PRIVATE|ANON */, -1, 0);
		if ((unsigned long)p > -4096UL)
			die(1);
		for (long i = 0; i < n; i++)
			((volatile unsigned char *)p)[i * stride] = 1;
	} else if (!strcmp(c, "pipe")) {
		int a[2], b[2];
		if (sys(SYS_pipe, (long)a, 0, 0, 0) || sys(SYS_pipe, (long)b, 0, 0, 0))
			die(1);
		long pid = sys(SYS_fork, 0, 0, 0, 0);
		if (pid < 0)
			die(1);
		char x = 'x';
		for (long i = 0; i < n; i++) {
			if (pid == 0) {
				if (sys(SYS_read, a[0], (long)&x, 1, 0) != 1 ||
				    sys(SYS_write, b[1], (long)&x, 1, 0) != 1)
					die(1);
			} else {
				if (sys(SYS_write, a[1], (long)&x, 1, 0) != 1 ||
				    sys(SYS_read, b[0], (long)&x, 1, 0) != 1)
					die(1);
			}
		}
		if (pid == 0)
			die(0);
		int st = 0;
		if (sys(SYS_wait4, pid, (long)&st, 0, 0) != pid || st != 0)
			die(1);
	} else if (!strcmp(c, "futex_pp")) {
		rounds = n;
		pthread_t th;
		if (pthread_create(&th, 0, other, 0) != 0)
			die(1);
		for (long i = 0; i < n; i++)
			hand_over(1, 0);
		if (pthread_join(th, 0) != 0)
			die(1);
	} else {
		die(2);
	}
	die(0);
	return 0;
}
