/* The program `vmm bench` runs natively and on every platform: `bench_prog OP N` does N
 * iterations of OP and prints the mean nanoseconds per iteration on stderr (measured inside,
 * so start-up is excluded; `bench_prog exit` measures start-to-exit from outside).
 * `exec` is a chain: the program execs itself N times, handing on the start time, and the
 * last one prints the mean.
 * Thread and scaling ops: `thread` (pthread_create+join), `futex_pp` (futex ping-pong between
 * two threads), `spinK`/`spinprocK` (K threads / K processes each spinning N blocks of 1000
 * syscall-free steps; prints wall ns / N, so K=2 over K=1 is the wall-time ratio) and `getpid2`
 * (two threads each doing N getpids; prints wall ns / 2N, the aggregate ns per call). */
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
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

static long futex(atomic_int *w, int op, int val) {
    return syscall(SYS_futex, w, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static void *nothing(void *arg) {
    return arg;
}

/* futex_pp: the word is 0 when it is the main thread's turn, 1 when the partner's. */
static atomic_int turn;

static void *futex_partner(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        while (atomic_load(&turn) == 0)
            futex(&turn, FUTEX_WAIT, 0);
        atomic_store(&turn, 0);
        futex(&turn, FUTEX_WAKE, 1);
    }
    return NULL;
}

/* The scaling workers start together when the gate (a pipe) gets a byte each, so thread
 * creation and fork are not in the wall time. */
static int gate[2];
static long worker_n;

static void pass_gate(void) {
    char b;
    if (read(gate[0], &b, 1) != 1)
        _exit(1);
}

/* 1000 steps of a dependent multiply-add chain the compiler cannot drop or vectorise. */
static void *spin_worker(void *arg) {
    pass_gate();
    unsigned long x = (unsigned long)arg;
    for (long i = 0; i < worker_n; i++)
        for (int j = 0; j < 1000; j++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            __asm__ volatile("" : "+r"(x));
        }
    return (void *)x;
}

static void *getpid_worker(void *arg) {
    pass_gate();
    for (long i = 0; i < worker_n; i++)
        raw_getpid();
    return arg;
}

/* Starts k workers (threads or forked processes), opens the gate, waits for all of them;
 * returns the wall ns from gate to the last one's end, or -1. */
static long long run_workers(int k, int processes, void *(*fn)(void *)) {
    pthread_t t[16];
    pid_t p[16];
    if (k < 1 || k > 16 || pipe(gate))
        return -1;
    for (int i = 0; i < k; i++) {
        if (processes) {
            p[i] = fork();
            if (p[i] < 0)
                return -1;
            if (p[i] == 0) {
                fn((void *)(long)i);
                _exit(0);
            }
        } else if (pthread_create(&t[i], NULL, fn, (void *)(long)i)) {
            return -1;
        }
    }
    char bytes[16] = {0};
    long long t0 = now();
    if (write(gate[1], bytes, k) != k)
        return -1;
    for (int i = 0; i < k; i++) {
        if (processes) {
            int st;
            if (waitpid(p[i], &st, 0) != p[i] || st != 0)
                return -1;
        } else if (pthread_join(t[i], NULL)) {
            return -1;
        }
    }
    long long t1 = now();
    close(gate[0]);
    close(gate[1]);
    return t1 - t0;
}

/* A connected pair: AF_UNIX socketpair, or loopback TCP (127.0.0.1, Nagle off), for a
 * parent and a child. 0 on success. */
static int stream_pair(int tcp, int sv[2]) {
    if (!tcp)
        return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &len))
        return -1;
    sv[1] = socket(AF_INET, SOCK_STREAM, 0);
    if (sv[1] < 0 || connect(sv[1], (struct sockaddr *)&a, sizeof a))
        return -1;
    sv[0] = accept(l, NULL, NULL);
    close(l);
    int one = 1;
    if (sv[0] < 0 || setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
        setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one))
        return -1;
    return 0;
}

/* Reads exactly n bytes. */
static int read_full(int fd, char *b, long n) {
    while (n > 0) {
        long r = read(fd, b, n);
        if (r <= 0)
            return -1;
        b += r;
        n -= r;
    }
    return 0;
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
    } else if (!strcmp(op, "unix_pp") || !strcmp(op, "tcp_pp")) {
        /* Ping-pong with a child over a stream socket: one round trip = a 1-byte send each
         * way, each side blocking in read. */
        int sv[2];
        if (stream_pair(op[0] == 't', sv))
            return 1;
        pid_t c = fork();
        if (c < 0)
            return 1;
        char b = 0;
        if (c == 0) {
            for (long i = 0; i < n; i++)
                if (read(sv[1], &b, 1) != 1 || write(sv[1], &b, 1) != 1)
                    _exit(1);
            _exit(0);
        }
        t0 = now();
        for (long i = 0; i < n; i++)
            if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1)
                return 1;
        t1 = now();
        int st;
        if (waitpid(c, &st, 0) != c || st != 0)
            return 1;
    } else if (!strcmp(op, "tcp_64k")) {
        /* Throughput: a child sends N blocks of 64 KiB through one loopback TCP connection;
         * ns per block received (65536 / ns = GB/s). */
        enum { BLOCK = 64 << 10 };
        int sv[2];
        if (stream_pair(1, sv))
            return 1;
        static char buf[BLOCK];
        pid_t c = fork();
        if (c < 0)
            return 1;
        if (c == 0) {
            close(sv[0]);
            for (long i = 0; i < n; i++)
                for (long off = 0; off < BLOCK;) {
                    long w = write(sv[1], buf + off, BLOCK - off);
                    if (w <= 0)
                        _exit(1);
                    off += w;
                }
            _exit(0);
        }
        close(sv[1]);
        t0 = now();
        for (long i = 0; i < n; i++)
            if (read_full(sv[0], buf, BLOCK))
                return 1;
        t1 = now();
        int st;
        if (waitpid(c, &st, 0) != c || st != 0)
            return 1;
    } else if (!strcmp(op, "epoll1")) {
        /* epoll_wait that finds one ready descriptor (a level-triggered eventfd left
         * readable). */
        int ep = epoll_create1(0), ev = eventfd(1, 0);
        struct epoll_event e = {.events = EPOLLIN};
        if (ep < 0 || ev < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e))
            return 1;
        t0 = now();
        for (long i = 0; i < n; i++)
            if (epoll_wait(ep, &e, 1, 0) != 1)
                return 1;
        t1 = now();
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
    } else if (!strcmp(op, "thread")) {
        t0 = now();
        for (long i = 0; i < n; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL))
                return 1;
        }
        t1 = now();
    } else if (!strcmp(op, "futex_pp")) {
        /* One round trip: hand the turn over and wake, wait for it to come back. */
        pthread_t t;
        if (pthread_create(&t, NULL, futex_partner, (void *)n))
            return 1;
        t0 = now();
        for (long i = 0; i < n; i++) {
            atomic_store(&turn, 1);
            futex(&turn, FUTEX_WAKE, 1);
            while (atomic_load(&turn) == 1)
                futex(&turn, FUTEX_WAIT, 1);
        }
        t1 = now();
        if (pthread_join(t, NULL))
            return 1;
    } else if (!strncmp(op, "spinproc", 8) || !strncmp(op, "spin", 4)) {
        int processes = !strncmp(op, "spinproc", 8);
        int k = atoi(op + (processes ? 8 : 4));
        worker_n = n;
        long long wall = run_workers(k, processes, spin_worker);
        if (wall < 0)
            return 1;
        t1 = wall;
    } else if (!strcmp(op, "getpid2")) {
        worker_n = n;
        long long wall = run_workers(2, 0, getpid_worker);
        if (wall < 0)
            return 1;
        t1 = wall;
        n *= 2;
    } else {
        return 2;
    }
    fprintf(stderr, "%.1f\n", (double)(t1 - t0) / n);
    return 0;
}
