/* escape_stub PATH: tries to reach the host kernel directly by jumping to a `syscall`
 * instruction inside the range the fallback platforms reserve for their stub code (just above
 * the app's address range), asking for mkdir(PATH). The sandbox must never let that through:
 * natively and on kvm the range is unmapped (SIGSEGV); on systrap the stub's seccomp filter
 * kills the stub; on ptrace every syscall is stopped anyway. The test checks PATH was not made. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const unsigned char *page = (const unsigned char *)0x7ffffffe0000UL;
    for (int i = 0; i < 4095; i++) {
        if (page[i] == 0x0f && page[i + 1] == 0x05) {
            __asm__ volatile("jmp *%[g]" : : [g] "r"(page + i), "a"(83L), "D"(argv[1]), "S"(0755L) : "memory");
        }
    }
    puts("no syscall instruction found");
    return 0;
}
