/* The program `vmm bench` runs natively and on every platform: `bench_prog OP N` does N
 * iterations of OP and prints the mean nanoseconds per iteration on stderr (measured inside,
 * so start-up is excluded; `bench_prog exit` measures start-to-exit from outside).
 * `exec` is a chain: the program execs itself N times, handing on the start time, and the
 * last one prints the mean. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
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

/* getpid through a site of the form libc wrappers use, `mov $39, %eax; syscall` (the systrap
 * platform rewrites such sites into jumps after their first trap). */
long site_getpid(void);
__asm__(".text\n"
        "  nop\n"
        ".globl site_getpid\n"
        "site_getpid:\n"
        "  mov $39, %eax\n"
        "  syscall\n"
        "  ret\n");

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
    } else if (!strcmp(op, "getpid_site")) {
        t0 = now();
        for (long i = 0; i < n; i++)
            site_getpid();
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
    } else if (!strcmp(op, "pipe")) {
        /* Ping-pong with a child: one round trip = two writes, two blocking reads. */
        int there[2], back[2];
        if (pipe(there) || pipe(back))
            return 1;
        pid_t c = fork();
        if (c < 0)
            return 1;
        char b = 0;
        if (c == 0) {
            for (long i = 0; i < n; i++)
                if (read(there[0], &b, 1) != 1 || write(back[1], &b, 1) != 1)
                    _exit(1);
            _exit(0);
        }
        t0 = now();
        for (long i = 0; i < n; i++)
            if (write(there[1], &b, 1) != 1 || read(back[0], &b, 1) != 1)
                return 1;
        t1 = now();
        int st;
        if (waitpid(c, &st, 0) != c || st != 0)
            return 1;
    } else if (!strcmp(op, "fork")) {
        t0 = now();
        for (long i = 0; i < n; i++) {
            pid_t c = fork();
            if (c < 0)
                return 1;
            if (c == 0)
                _exit(0);
            int st;
            if (waitpid(c, &st, 0) != c || st != 0)
                return 1;
        }
        t1 = now();
    } else if (!strcmp(op, "exec")) {
        /* argv: exec K [T0 TOTAL]: the first run (no T0) has N execs to do, a chained one
         * K - 1. */
        long long start = argc > 3 ? atoll(argv[3]) : now();
        long total = argc > 4 ? atol(argv[4]) : n;
        long remaining = argc > 3 ? n - 1 : n;
        if (remaining > 0) {
            char k[32], s[32], tot[32];
            snprintf(k, sizeof k, "%ld", remaining);
            snprintf(s, sizeof s, "%lld", start);
            snprintf(tot, sizeof tot, "%ld", total);
            char *args[] = {argv[0], "exec", k, s, tot, NULL};
            execv("/proc/self/exe", args);
            return 1;
        }
        t0 = start;
        t1 = now();
        n = total;
    } else {
        return 2;
    }
    fprintf(stderr, "%.1f\n", (double)(t1 - t0) / n);
    return 0;
}
