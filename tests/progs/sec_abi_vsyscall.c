/* sec_abi_vsyscall: the legacy vsyscall page. Old static binaries call gettimeofday, time and
 * getcpu at fixed addresses (0xffffffffff600000, +0x400, +0x800); in a sandbox those calls
 * must reach the sandbox's kernel like any syscall, and come back as from a Linux kernel: the
 * result in rax, a return to the caller, the stack pointer and callee-saved registers as
 * before.
 *
 * Default mode: checks each entry against the same syscall made with `syscall` and prints
 * what must match a native run. `only-vsyscalls`: calls each entry once with null arguments
 * and nothing else that asks for the time or the CPU (the test checks --strace shows them). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define VSYS_GETTIMEOFDAY 0xffffffffff600000UL
#define VSYS_TIME 0xffffffffff600400UL
#define VSYS_GETCPU 0xffffffffff600800UL

/* Calls the vsyscall at `addr` with three arguments and checks the stack pointer and every
 * callee-saved register come back unchanged (a bad emulated `ret` would show here first). */
static long vcall(unsigned long addr, long a0, long a1, long a2, int *regs_ok)
{
	long ret, bad;
	__asm__ volatile(
		"lea -128(%%rsp), %%rsp\n\t" /* keep clear of the red zone */
		"push %%rbx\n\t"
		"push %%rbp\n\t"
		"push %%r12\n\t"
		"push %%r13\n\t"
		"push %%r14\n\t"
		"push %%r15\n\t"
		"mov $0x1111111111111111, %%rbx\n\t"
		"mov $0x2222222222222222, %%rbp\n\t"
		"mov $0x3333333333333333, %%r12\n\t"
		"mov $0x4444444444444444, %%r13\n\t"
		"mov $0x5555555555555555, %%r14\n\t"
		"mov %%rsp, %%r15\n\t"
		"call *%%rax\n\t"
		"xor %%ecx, %%ecx\n\t"
		"cmp %%rsp, %%r15\n\t"
		"setne %%cl\n\t"
		"mov $0x1111111111111111, %%r8\n\t"
		"cmp %%r8, %%rbx\n\t"
		"jne 1f\n\t"
		"mov $0x2222222222222222, %%r8\n\t"
		"cmp %%r8, %%rbp\n\t"
		"jne 1f\n\t"
		"mov $0x3333333333333333, %%r8\n\t"
		"cmp %%r8, %%r12\n\t"
		"jne 1f\n\t"
		"mov $0x4444444444444444, %%r8\n\t"
		"cmp %%r8, %%r13\n\t"
		"jne 1f\n\t"
		"mov $0x5555555555555555, %%r8\n\t"
		"cmp %%r8, %%r14\n\t"
		"je 2f\n\t"
		"1: or $2, %%ecx\n\t"
		"2: mov %%r15, %%rsp\n\t"
		"pop %%r15\n\t"
		"pop %%r14\n\t"
		"pop %%r13\n\t"
		"pop %%r12\n\t"
		"pop %%rbp\n\t"
		"pop %%rbx\n\t"
		"lea 128(%%rsp), %%rsp\n\t"
		: "=a"(ret), "=c"(bad), "+D"(a0), "+S"(a1), "+d"(a2)
		: "a"(addr)
		: "r8", "r9", "r10", "r11", "memory", "cc");
	if (bad)
		*regs_ok = 0;
	return ret;
}

static int nprocs(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > n)
		n = CPU_COUNT(&set);
	return n < 1 ? 1 : (int)n;
}

static int only_vsyscalls(void)
{
	int regs_ok = 1;
	long t = vcall(VSYS_TIME, 0, 0, 0, &regs_ok);
	long g = vcall(VSYS_GETTIMEOFDAY, 0, 0, 0, &regs_ok);
	long c = vcall(VSYS_GETCPU, 0, 0, 0, &regs_ok);
	printf("time %s, gettimeofday %ld, getcpu %s, registers %s\n", t > 1000000000 ? "sane" : "BAD",
	       g, c == 0 || c == -38 ? "answered" : "BAD", regs_ok ? "ok" : "BAD");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "only-vsyscalls") == 0)
		return only_vsyscalls();
	int ok = 1, regs_ok = 1;

	/* time: the result and *tloc agree, within a few seconds of time(2). */
	long before = syscall(SYS_time, 0);
	long tloc = -1;
	long t = vcall(VSYS_TIME, (long)&tloc, 0, 0, &regs_ok);
	long t0 = vcall(VSYS_TIME, 0, 0, 0, &regs_ok);
	long after = syscall(SYS_time, 0);
	int time_ok = t == tloc && t >= before && t <= after + 1 && t0 >= before && t0 <= after + 1;
	printf("time: %s\n", time_ok ? "ok" : "BAD");
	if (!time_ok)
		fprintf(stderr, "time: before %ld, vsyscall %ld (*tloc %ld), %ld, after %ld\n", before, t,
			tloc, t0, after);
	ok &= time_ok;

	/* gettimeofday: 0, a timeval between two gettimeofday(2) calls; null pointers are fine. */
	struct timeval a, v, b;
	struct timezone tz = {-1, -1};
	syscall(SYS_gettimeofday, &a, 0);
	long g = vcall(VSYS_GETTIMEOFDAY, (long)&v, (long)&tz, 0, &regs_ok);
	syscall(SYS_gettimeofday, &b, 0);
	long us_v = v.tv_sec * 1000000L + v.tv_usec;
	int gtod_ok = g == 0 && v.tv_usec >= 0 && v.tv_usec < 1000000 &&
		      us_v >= a.tv_sec * 1000000L + a.tv_usec && us_v <= b.tv_sec * 1000000L + b.tv_usec &&
		      tz.tz_minuteswest != -1;
	long g0 = vcall(VSYS_GETTIMEOFDAY, 0, 0, 0, &regs_ok);
	gtod_ok &= g0 == 0;
	printf("gettimeofday: %s\n", gtod_ok ? "ok" : "BAD");
	if (!gtod_ok)
		fprintf(stderr, "gettimeofday: %ld %ld, %ld.%06ld <= %ld.%06ld <= %ld.%06ld\n", g, g0,
			(long)a.tv_sec, (long)a.tv_usec, (long)v.tv_sec, (long)v.tv_usec, (long)b.tv_sec,
			(long)b.tv_usec);
	ok &= gtod_ok;

	/* getcpu: answers as getcpu(2) does (the same result; when that is 0, a CPU below the
	 * number of CPUs and the same node). */
	unsigned cpu = ~0u, node = ~0u, scpu = ~0u, snode = ~0u;
	long c = vcall(VSYS_GETCPU, (long)&cpu, (long)&node, 0, &regs_ok);
	long sc = syscall(SYS_getcpu, &scpu, &snode, 0);
	if (sc == -1)
		sc = -errno;
	int getcpu_ok = c == sc && (sc != 0 || (cpu < (unsigned)nprocs() && node == snode));
	printf("getcpu: %s\n", getcpu_ok ? "ok" : "BAD");
	if (!getcpu_ok)
		fprintf(stderr, "getcpu: vsyscall %ld cpu %u node %u; syscall %ld cpu %u node %u; %d cpus\n",
			c, cpu, node, sc, scpu, snode, nprocs());
	ok &= getcpu_ok;

	printf("stack and callee-saved registers: %s\n", regs_ok ? "ok" : "BAD");
	ok &= regs_ok;
	return ok ? 0 : 1;
}
