/* exits_loop N: N iterations of syscalls and page faults that need no host
 * I/O (getpid; brk grow+shrink; mmap+touch+munmap; first touch of a fresh page
 * in a pre-mapped region), then exit 0 with no output. Under kvm the number
 * of VM exits must not depend on N. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL
#define REGION_PAGES 64

static unsigned char *map_region(void)
{
	void *p = mmap(NULL, REGION_PAGES * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		syscall(SYS_exit_group, 3);
	return p;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 0;
	unsigned char *region = map_region();
	uintptr_t b0 = (uintptr_t)syscall(SYS_brk, 0);

	for (long i = 0; i < n; i++) {
		if (syscall(SYS_getpid) <= 0)
			syscall(SYS_exit_group, 1);

		if ((uintptr_t)syscall(SYS_brk, b0 + PAGE) != b0 + PAGE)
			syscall(SYS_exit_group, 2);
		((volatile unsigned char *)b0)[0] = 1;
		syscall(SYS_brk, b0);

		volatile unsigned char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
						 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			syscall(SYS_exit_group, 3);
		p[0] = 1;
		munmap((void *)p, PAGE);

		long idx = i % REGION_PAGES;
		if (idx == 0 && i != 0) {
			/* Region used up: replace it so every touch is a first touch. */
			munmap(region, REGION_PAGES * PAGE);
			region = map_region();
		}
		((volatile unsigned char *)region)[idx * PAGE] = 1;
	}
	syscall(SYS_exit_group, 0);
	return 0;
}
