/* The program `vmm bench` runs natively and on every platform: `bench_prog OP N` does N
 * iterations of OP and prints the mean nanoseconds per iteration on stderr (measured inside,
 * so start-up is excluded; `bench_prog exit` measures start-to-exit from outside). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long raw_getpid(void) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_getpid) : "rcx", "r11", "memory");
    return r;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *op = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 1;
    if (n <= 0)
        return 2;
    long long t0 = 0, t1 = 0;
    if (!strcmp(op, "exit")) {
        return 0;
    } else if (!strcmp(op, "getpid")) {
        t0 = now();
        for (long i = 0; i < n; i++)
            raw_getpid();
        t1 = now();
    } else if (!strcmp(op, "fault")) {
        volatile char *p = mmap(0, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 1;
        t0 = now();
        for (long i = 0; i < n; i++)
            p[i * 4096] = 1;
        t1 = now();
    } else if (!strcmp(op, "mmap16")) {
        t0 = now();
        for (long i = 0; i < n; i++) {
            volatile char *p = mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                return 1;
            for (int j = 0; j < 16; j++)
                p[j * 4096] = 1;
            munmap((void *)p, 16 * 4096);
        }
        t1 = now();
    } else if (!strcmp(op, "write1")) {
        t0 = now();
        for (long i = 0; i < n; i++)
            if (write(1, "x", 1) != 1)
                return 1;
        t1 = now();
    } else {
        return 2;
    }
    fprintf(stderr, "%.1f\n", (double)(t1 - t0) / n);
    return 0;
}
