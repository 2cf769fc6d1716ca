/* getpid_loop N: N raw getpid syscalls, then _exit(0) without output.
 * Used to measure the cost of one syscall round trip (VM exits, guest instructions). */
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++) {
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_getpid) : "rcx", "r11", "memory");
        if (r <= 0)
            _exit(1);
    }
    _exit(0);
}
