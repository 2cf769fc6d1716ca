/* fuzz SEED COUNT [-v] [-b FIRST_BATCH] [-n PER_BATCH]
 *
 * A syscall fuzzer for the sandbox. NEVER run it natively on a host you care about: it issues
 * random syscalls (numbers 0..460, half of them from a list of commonly served ones, and some
 * out of range) with hostile arguments — NULL, -1,
 * small ints, kernel addresses, unmapped, read-only and end-of-page pointers, pointers into the
 * fallbacks' stub range just below 0x7ffffffff000, huge lengths, random flag words, a few path
 * strings. It is meant to run only as `vmm run ... -- fuzz SEED COUNT`.
 *
 * COUNT calls are issued in batches of PER_BATCH (default 64); each batch runs in a forked
 * child (its own process group, stdin/stdout/stderr on /dev/null) whose random sequence depends
 * only on (SEED, batch number), so `-b B -n N` reproduces batch B alone. Every call is armed
 * with a 20 ms ITIMER_REAL whose SIGALRM handler longjmps out, so blocking calls end; a batch
 * that still runs past its deadline (or stops) is killed. Only these are never issued, because
 * they would only end the batch early or hit the fuzzer's own parent: exit, exit_group; and
 * pid arguments of kill-like calls that name the parent, a group (<= 0) or -1 are replaced by
 * the child's own pid. Children created by fork/vfork/clone/clone3 exit at once.
 *
 * -v: before each call, the child writes `fuzz: b=B i=I nr=NR a=A0,A1,A2,A3,A4,A5` to stderr,
 * so the call that crashed the sandbox is the last line logged.
 *
 * Output (stdout, from the parent): `fuzz: seed=S calls=N batches=B signalled=K killed=T`.
 * Exit status 0 unless the fuzzer itself failed (usage 2, fork failure 3). */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define LOGFD 200
#define PAGE 4096UL

/* Raw syscall; a child made by a fork-family call (rax == 0 for nr 56/57/58/435) exits at
 * once through SYS_exit without touching its stack, which may be a random pointer or shared
 * with its parent (CLONE_VM). */
long fuzz_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
__asm__(".text\n"
        ".globl fuzz_syscall\n"
        ".type fuzz_syscall,@function\n"
        "fuzz_syscall:\n"
        "  push %rbx\n"
        "  mov %rdi, %rbx\n"
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n"
        "  mov %r9, %r8\n"
        "  mov 16(%rsp), %r9\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jnz 2f\n"
        "  cmp $56, %rbx\n"
        "  je 1f\n"
        "  cmp $57, %rbx\n"
        "  je 1f\n"
        "  cmp $58, %rbx\n"
        "  je 1f\n"
        "  cmp $435, %rbx\n"
        "  jne 2f\n"
        "1: mov $60, %eax\n"
        "  xor %edi, %edi\n"
        "  syscall\n"
        "  ud2\n"
        "2: pop %rbx\n"
        "  ret\n");

static long raw(long nr, long a0, long a1, long a2) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a0), "S"(a1), "d"(a2) : "rcx", "r11", "memory");
    return r;
}

struct shared {
    volatile long calls; /* fuzz calls completed, all batches */
    volatile long batch_calls;
};

static struct shared *shm;
static uint64_t rng;
static int verbose;
static long my_pid, parent_pid;
static unsigned long saved_fs;
static sigjmp_buf jb;
static volatile int jb_armed;

/* Memory the arguments point at. */
static unsigned char *rwbuf;   /* 16 pages read-write, random bytes */
static unsigned char *guarded; /* one rw page followed by a PROT_NONE page */
static unsigned char *ropage;  /* read-only, random bytes */
static unsigned char *hole;    /* unmapped */
static unsigned char *strs;    /* path strings, rw */
static long str_off[32];
static int nstr;

static uint64_t next(void) {
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static uint64_t below(uint64_t n) { return n ? next() % n : 0; }

static void add_str(const char *s) {
    static long used;
    if (nstr >= 32)
        return;
    size_t n = strlen(s) + 1;
    memcpy(strs + used, s, n);
    str_off[nstr++] = used;
    used += n;
}

static const long small[] = {0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 63, 64, 100, 127, 128, 255, 256, 511, 4095, 4096, 4097, 65535, 65536};

static long gen_arg(void) {
    switch (below(20)) {
    case 0:
        return 0;
    case 1:
        return -1;
    case 2:
    case 3:
        return small[below(sizeof small / sizeof small[0])];
    case 4: { /* kernel, non-canonical and top-of-user addresses */
        static const unsigned long k[] = {
            0xffff888000000000UL, 0xffff888000001000UL, 0xffffffff81000000UL, 0xffffffffff600000UL,
            0xffffffffffffe000UL, 0x8000000000000000UL, 0x0000800000000000UL, 0x00007ffffffff000UL,
            0x00007fffffffefffUL, 0x00007ffffffe0000UL, 0x00007ffffffe0800UL, 0x00007ffffffef000UL,
            0x00007fffffffffffUL, 0xfffffffffffff000UL};
        unsigned long v = k[below(sizeof k / sizeof k[0])];
        if (below(3) == 0)
            v += below(PAGE) & ~7UL;
        return (long)v;
    }
    case 5:
    case 6:
        return (long)(rwbuf + (below(4) ? 0 : below(16 * PAGE)));
    case 7: /* end of a page followed by a guard page */
        return (long)(guarded + PAGE - below(64));
    case 8:
        return (long)(ropage + (below(2) ? 0 : below(PAGE)));
    case 9:
        return (long)(hole + below(PAGE));
    case 10:
    case 11:
        return (long)(strs + str_off[below(nstr)]);
    case 12: /* huge lengths */ {
        static const long h[] = {0x7fffffff, 0x80000000L, 0xffffffffL, 0x7fffffffffffffffL, (long)0x8000000000000000UL, 1L << 40, 1L << 32, -4096, -2};
        return h[below(sizeof h / sizeof h[0])];
    }
    case 13: /* fds */ {
        static const long f[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -100, 1023, 1024, 1 << 20};
        return f[below(sizeof f / sizeof f[0])];
    }
    case 14: /* sparse flag words */
        return (long)(next() & next() & next());
    case 15:
        return (long)(1UL << below(64));
    case 16: /* the stack and the code */
        return below(2) ? (long)&jb : (long)&gen_arg;
    case 17:
        return (long)(uint32_t)next();
    default:
        return (long)next();
    }
}

/* Syscalls a sandbox kernel serves first (files, memory, signals, processes, time): half
 * the calls pick from these, so the fuzzing is not mostly ENOSYS. */
static const short common[] = {
    0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  16,  17,  18,  19,  20,  21,  22,
    23,  24,  25,  26,  28,  32,  33,  34,  35,  36,  37,  38,  39,  40,  56,  57,  58,  59,  61,  62,  63,  72,
    73,  74,  76,  77,  78,  79,  80,  81,  82,  83,  84,  85,  86,  87,  88,  89,  90,  91,  92,  95,  96,  97,
    98,  99,  100, 102, 104, 109, 110, 111, 112, 121, 127, 128, 130, 131, 132, 137, 138, 157, 158, 160, 186, 200,
    202, 217, 218, 228, 230, 234, 235, 247, 257, 258, 259, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 273,
    280, 281, 285, 290, 291, 292, 293, 302, 316, 318, 319, 332, 334, 435, 436, 437, 439};

static long gen_nr(void) {
    uint64_t r = below(100);
    if (r < 50)
        return common[below(sizeof common / sizeof common[0])];
    if (r < 94)
        return (long)below(461);
    static const long odd[] = {461, 462, 500, 511, 512, 547, 548, 1000, 1023, 1024, 4096, 0x40000000L, 0x40000001L,
                               0x40000200L, -1, -2, 0x7fffffffL, 0xffffffffL, 0x100000000L, 0x100000027L, (long)0x8000000000000000UL};
    return odd[below(sizeof odd / sizeof odd[0])];
}

static void put(char **p, const char *s) {
    while (*s)
        *(*p)++ = *s++;
}

static void puthex(char **p, unsigned long v) {
    char t[17];
    int n = 0;
    do {
        t[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    *(*p)++ = '0';
    *(*p)++ = 'x';
    while (n)
        *(*p)++ = t[--n];
}

static void putdec(char **p, long v) {
    char t[24];
    int n = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    if (v < 0)
        *(*p)++ = '-';
    do {
        t[n++] = '0' + u % 10;
        u /= 10;
    } while (u);
    while (n)
        *(*p)++ = t[--n];
}

static void log_call(long b, long i, long nr, const long *a) {
    char line[512], *p = line;
    put(&p, "fuzz: b=");
    putdec(&p, b);
    put(&p, " i=");
    putdec(&p, i);
    put(&p, " nr=");
    putdec(&p, nr);
    put(&p, " a=");
    for (int k = 0; k < 6; k++) {
        if (k)
            *p++ = ',';
        puthex(&p, (unsigned long)a[k]);
    }
    *p++ = '\n';
    raw(SYS_write, LOGFD, (long)line, p - line);
}

static void on_signal(int sig) {
    (void)sig;
    /* A fuzzed arch_prctl may have moved %fs: put the thread pointer back before libc runs. */
    fuzz_syscall(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, (long)saved_fs, 0, 0, 0, 0);
    if (jb_armed)
        siglongjmp(jb, 1);
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    for (int s = 1; s < 65; s++) {
        if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD || (s >= 32 && s <= 34))
            continue;
        sigaction(s, &sa, NULL);
    }
}

static int is_pid_call(long nr) {
    switch (nr) {
    case SYS_kill:
    case SYS_tkill:
    case SYS_tgkill:
    case SYS_rt_sigqueueinfo:
    case SYS_rt_tgsigqueueinfo:
    case SYS_ptrace:
    case SYS_process_vm_readv:
    case SYS_process_vm_writev:
    case SYS_pidfd_open:
    case SYS_prlimit64:
    case SYS_kcmp:
    case SYS_sched_setaffinity:
    case SYS_sched_setscheduler:
    case SYS_sched_setparam:
    case SYS_setpriority:
    case SYS_ioprio_set:
    case SYS_process_madvise:
        return 1;
    }
    return 0;
}

static void fix_pid(long *v) {
    if ((int)*v <= 0 || (int)*v == parent_pid || *v == -1)
        *v = my_pid;
}

static void run_batch(uint64_t seed, long b, long n) {
    my_pid = getpid();
    setpgid(0, 0);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    rng = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)b * 0xbf58476d1ce4e5b9ULL + 1;
    for (int k = 0; k < 8; k++)
        next();
    rwbuf = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    guarded = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ropage = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strs = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *stack = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rwbuf == MAP_FAILED || guarded == MAP_FAILED || ropage == MAP_FAILED || strs == MAP_FAILED || stack == MAP_FAILED)
        _exit(4);
    for (unsigned long k = 0; k < 16 * PAGE; k += 8)
        *(uint64_t *)(rwbuf + k) = next();
    for (unsigned long k = 0; k < PAGE; k += 8)
        *(uint64_t *)(ropage + k) = next();
    hole = ropage + PAGE;
    munmap(hole, PAGE);
    mprotect(ropage, PAGE, PROT_READ);
    mprotect(guarded + PAGE, PAGE, PROT_NONE);
    memset(guarded, 'A', PAGE);
    add_str("/");
    add_str("/tmp");
    add_str("/tmp/vmmfz");
    add_str("vmmfz");
    add_str("/vmmfz.d/x");
    add_str("..");
    add_str(".");
    add_str("/proc/self/mem");
    add_str("/proc/self/maps");
    add_str("/proc/self/fd/0");
    add_str("/proc/1/environ");
    add_str("/proc/self/root/..");
    add_str("/dev/null");
    add_str("/dev/zero");
    add_str("/dev/kmsg");
    add_str("/dev/mem");
    add_str("/etc/hostname");
    add_str("/etc/mtab");
    add_str("/data/file");
    add_str("/data/loop");
    add_str("/data/abs");
    add_str("/data/sub");
    add_str("/proc/self/exe");
    add_str("");
    {
        static char longp[PAGE + 64];
        memset(longp, 'a', sizeof longp - 1);
        for (int k = 0; k < (int)sizeof longp - 1; k += 50)
            longp[k] = '/';
        memcpy(strs + 2 * PAGE, longp, PAGE + 63);
        str_off[nstr++] = 2 * PAGE;
    }
    stack_t ss = {.ss_sp = stack, .ss_size = 16 * PAGE, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    saved_fs = 0;
    fuzz_syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, (long)&saved_fs, 0, 0, 0, 0);
    install_handlers();
    sigset_t none;
    sigemptyset(&none);

    for (volatile long i = 0; i < n; i++) {
        volatile long nr = gen_nr();
        long a[6];
        for (int k = 0; k < 6; k++) {
            a[k] = gen_arg();
            if (a[k] == LOGFD)
                a[k] = LOGFD + 1;
        }
        if (nr == SYS_exit || nr == SYS_exit_group)
            continue;
        if (is_pid_call(nr)) {
            fix_pid(&a[0]);
            if (nr == SYS_tgkill || nr == SYS_rt_tgsigqueueinfo)
                a[1] = my_pid;
            if (nr == SYS_ptrace || nr == SYS_kcmp)
                fix_pid(&a[1]);
        }
        if (nr == SYS_close_range && (unsigned long)a[0] <= LOGFD)
            a[0] = LOGFD + 1;
        if (verbose)
            log_call(b, i, nr, a);
        if (sigsetjmp(jb, 1) == 0) {
            jb_armed = 1;
            struct itimerval it = {.it_interval = {0, 0}, .it_value = {0, 20000}};
            fuzz_syscall(SYS_setitimer, ITIMER_REAL, (long)&it, 0, 0, 0, 0);
            fuzz_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
            jb_armed = 0;
        }
        jb_armed = 0;
        if (nr == SYS_arch_prctl)
            fuzz_syscall(SYS_arch_prctl, 0x1002, (long)saved_fs, 0, 0, 0, 0);
        if (nr == SYS_rt_sigaction || nr == SYS_rt_sigprocmask || nr == SYS_sigaltstack || nr == SYS_rt_sigreturn ||
            nr == SYS_signalfd || nr == SYS_signalfd4) {
            sigaltstack(&ss, NULL);
            install_handlers();
            sigprocmask(SIG_SETMASK, &none, NULL);
        }
        shm->calls++;
        shm->batch_calls++;
    }
    _exit(0);
}

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fuzz SEED COUNT [-v] [-b FIRST_BATCH] [-n PER_BATCH]\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[1], NULL, 0);
    long count = strtol(argv[2], NULL, 0);
    long first = 0, per = 64;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            first = strtol(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            per = strtol(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "fuzz: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (per < 1)
        per = 1;
    if (verbose)
        dup2(2, LOGFD);
    else
        close(LOGFD);
    shm = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        perror("fuzz: mmap");
        return 3;
    }
    parent_pid = getpid();
    signal(SIGPIPE, SIG_IGN);
    long batches = 0, signalled = 0, killed = 0;
    /* The total lives in the parent's own memory: a batch's random calls may write anything
     * into the shared page (a read() into it, a stray pointer), so what a batch reports there
     * is clamped to what it was given. */
    long total = 0;
    for (long b = first; total < count; b++) {
        long left = count - total;
        long n = left < per ? left : per;
        shm->batch_calls = 0;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fuzz: fork");
            return 3;
        }
        if (pid == 0)
            run_batch(seed, b, n);
        batches++;
        long deadline = now_ms() + 1000 + n * 30;
        int status = 0, done = 0, was_killed = 0;
        while (!done) {
            /* Reap the batch and anything else that became ours (CLONE_PARENT children). */
            int st;
            pid_t r = waitpid(-1, &st, WNOHANG | WUNTRACED | __WALL);
            if (r == pid) {
                if (WIFSTOPPED(st)) {
                    kill(pid, SIGCONT);
                    continue;
                }
                status = st;
                done = 1;
                break;
            }
            if (r > 0)
                continue;
            if (now_ms() > deadline) {
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                was_killed = 1;
                deadline = now_ms() + 5000;
                if (waitpid(pid, &status, __WALL) == pid)
                    done = 1;
                break;
            }
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        if (!done) {
            fprintf(stderr, "fuzz: batch %ld pid %d cannot be reaped\n", b, pid);
            return 3;
        }
        if (was_killed) {
            killed++;
            if (verbose)
                fprintf(stderr, "fuzz: b=%ld killed after its deadline\n", b);
        } else if (WIFSIGNALED(status)) {
            signalled++;
        }
        /* A batch that made no progress at all (died in setup) still counts one call, so the
         * loop ends. */
        long made = shm->batch_calls;
        total += made < 1 ? 1 : made > n ? n : made;
        /* Stragglers of the batch's group. */
        kill(-pid, SIGKILL);
        while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
            ;
    }
    printf("fuzz: seed=%llu calls=%ld batches=%ld signalled=%ld killed=%ld\n", (unsigned long long)seed, total,
           batches, signalled, killed);
    return 0;
}
