/* sec_abi_int80: the 32-bit syscall entries. A sandbox that serves only the x86-64 ABI must
 * answer every i386 syscall with -ENOSYS — never run it as the x86-64 syscall of the same
 * number (i386 mkdir, 39, is x86-64 getpid) — and resume the caller in the mode it was in.
 *
 * Usage: sec_abi_int80 DIR MODE...; each MODE makes i386 mkdir(DIR/MODE, 0755) once and
 * prints its result and whether the directory exists afterwards:
 *   int80-64    `int $0x80` from 64-bit code
 *   int80-32    `int $0x80` from 32-bit code (a far jump to cs 0x23 and back to 0x33)
 *   syscall-32  `syscall` from 32-bit code (AMD CPUs run it; Intel's raise #UD: SIGILL)
 *   sysenter-32 `sysenter` from 32-bit code (AMD CPUs raise #UD in long mode: SIGILL)
 * A native run serves these with the host's i386 table (the directories appear). A 32-bit
 * caller resumed in 64-bit mode reports result 57005 (0xdead). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A low page of 32-bit code (copied below 4 GiB: a PIE's text may be anywhere) and the 64-bit
 * way back. On entry to `code32`: edi = the data page (low), esi = the path (low), edx = the
 * entry kind (0 int $0x80, 1 syscall, 2 sysenter). No stack is touched in 32-bit mode. */
__asm__(".pushsection .rodata\n"
	".globl blob_start, blob_code32, blob_back64, blob_end\n"
	"blob_start:\n"
	"blob_code32:\n"
	".code32\n"
	"mov $0x2b, %eax\n"
	"mov %eax, %ds\n" /* a 64-bit process starts with null ds/es: load flat ones */
	"mov %eax, %es\n"
	"mov $39, %eax\n" /* i386 mkdir */
	"mov %esi, %ebx\n"
	"mov $0x1ed, %ecx\n" /* 0755 */
	"mov $0x1ed, %ebp\n" /* (the i386 `syscall` convention passes arg 2 in ebp) */
	"cmp $1, %edx\n"
	"je 1f\n"
	"cmp $2, %edx\n"
	"je 2f\n"
	"int $0x80\n"
	"jmp 3f\n"
	"1: syscall\n"
	"jmp 3f\n"
	"2: sysenter\n"
	"3: mov %eax, %esi\n"
	/* Still in 32-bit mode? 0x48 is `dec %eax` there, a REX prefix in 64-bit mode. */
	"xor %eax, %eax\n"
	".byte 0x48\n"
	"nop\n"
	"test %eax, %eax\n"
	"jnz 5f\n"
	"mov $0xdead, %esi\n" /* resumed in 64-bit mode: say so in the result */
	"5: ljmp *0x10(%edi)\n" /* to blob_back64, cs 0x33 */
	".code64\n"
	"blob_back64:\n"
	"mov %edi, %edi\n"
	"jmp *0x20(%rdi)\n"
	"blob_end:\n"
	".popsection\n"
	/* long far32(void *data, const char *path, long kind) */
	".text\n"
	".globl far32\n"
	"far32:\n"
	"push %rbx\n"
	"push %rbp\n"
	"push %r12\n"
	"push %r13\n"
	"push %r14\n"
	"push %r15\n"
	"mov %rsp, 0x30(%rdi)\n"
	"lea 0x1000(%rdi), %rsp\n" /* a low stack, should anything need one */
	"lea 4f(%rip), %rax\n"
	"mov %rax, 0x20(%rdi)\n"
	"ljmpl *(%rdi)\n" /* to blob_code32, cs 0x23 */
	"4: mov 0x30(%rdi), %rsp\n"
	"movslq %esi, %rax\n"
	"pop %r15\n"
	"pop %r14\n"
	"pop %r13\n"
	"pop %r12\n"
	"pop %rbp\n"
	"pop %rbx\n"
	"ret\n");

extern const char blob_start[], blob_code32[], blob_back64[], blob_end[];
long far32(void *data, const char *path, long kind);

#define LOW ((void *)0x30000000)

static void report(const char *mode, long r, const char *path)
{
	struct stat st;
	int exists = stat(path, &st) == 0;
	printf("%s: result %ld%s, directory %s\n", mode, r, r == -ENOSYS ? " (-ENOSYS)" : "",
	       exists ? "created" : "absent");
	fflush(stdout);
	if (exists)
		rmdir(path);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sec_abi_int80 DIR MODE...\n");
		return 2;
	}
	unsigned char *low = mmap(LOW, 0x2000, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (low != LOW) {
		perror("mmap");
		return 1;
	}
	memcpy(low, blob_start, blob_end - blob_start);
	if (mprotect(low, 0x1000, PROT_READ | PROT_EXEC) != 0) {
		perror("mprotect");
		return 1;
	}
	unsigned char *data = low + 0x1000;
	uint32_t code32 = (uint32_t)(uintptr_t)low + (uint32_t)(blob_code32 - blob_start);
	uint32_t back64 = (uint32_t)(uintptr_t)low + (uint32_t)(blob_back64 - blob_start);
	uint16_t cs32 = 0x23, cs64 = 0x33;
	memcpy(data + 0x00, &code32, 4);
	memcpy(data + 0x04, &cs32, 2);
	memcpy(data + 0x10, &back64, 4);
	memcpy(data + 0x14, &cs64, 2);
	char *path = (char *)data + 0x100;

	for (int i = 2; i < argc; i++) {
		const char *mode = argv[i];
		snprintf(path, 0x800, "%s/%s", argv[1], mode);
		rmdir(path);
		long r;
		if (strcmp(mode, "int80-64") == 0) {
			__asm__ volatile("int $0x80"
					 : "=a"(r)
					 : "a"(39L), "b"(path), "c"(0755L)
					 : "memory");
		} else if (strcmp(mode, "int80-32") == 0) {
			r = far32(data, path, 0);
		} else if (strcmp(mode, "syscall-32") == 0) {
			r = far32(data, path, 1);
		} else if (strcmp(mode, "sysenter-32") == 0) {
			r = far32(data, path, 2);
		} else {
			fprintf(stderr, "unknown mode %s\n", mode);
			return 2;
		}
		report(mode, r, path);
		/* 64-bit arithmetic and a libc call: back in 64-bit mode with a sane stack. */
		volatile uint64_t x = 0x123456789abcdefULL;
		printf("%s: back in 64-bit mode (%#llx)\n", mode, (unsigned long long)(x * 16));
	}
	return 0;
}
