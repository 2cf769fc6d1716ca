/* sec_systrap_hostile MODE...: a hostile app against the systrap platform's stub. Each MODE runs
 * in a child process; after the child is forked, the parent writes a fresh secret into pages the
 * child never shared, then lets the child attack. The child tries to get host mappings the
 * Sentry did not make (forged queue entries in the control page, jumps to every `syscall`
 * instruction of the stub code page with mmap arguments, forged events and frame pointers,
 * garbage in the control page) and then looks for the secret through them. It prints
 * `MAPPED ...` or `LEAK ...` if it got anywhere; the parent prints how each child ended and
 * `parent ok`. Natively the stub range is unmapped: each child just faults.
 *
 * Modes: queued huge garbage ucontext fpregs jump stubmaps */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STUB 0x7ffffffe0000UL
#define CTRL (STUB + 0x1000)
#define ALTSTACK (CTRL + 0x1000)
#define ALTSTACK_SIZE 0x10000UL
#define PROBE_ADDR 0x300000000UL
#define PROBE_LEN (256UL << 20)
#define M1 0x7365637265742121UL

static sigjmp_buf env;
static volatile int jumping;

static void on_fault(int sig) {
    (void)sig;
    if (jumping)
        siglongjmp(env, 1);
    _exit(100 + sig);
}

static void handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, 0);
}

/* Whether `p` can be read (a fault is caught). */
static int readable(const volatile uint64_t *p, uint64_t *out) {
    jumping = 1;
    if (sigsetjmp(env, 1)) {
        jumping = 0;
        return 0;
    }
    *out = *p;
    jumping = 0;
    return 1;
}

/* Looks at the probe range: anything readable there is a mapping the Sentry never made. */
static void probe(const char *what) {
    uint64_t v;
    if (!readable((const volatile uint64_t *)PROBE_ADDR, &v)) {
        printf("%s: nothing mapped\n", what);
        return;
    }
    printf("MAPPED %s: the probe range is readable\n", what);
    for (unsigned long off = 0; off < PROBE_LEN; off += 4096) {
        const volatile uint64_t *pg = (const volatile uint64_t *)(PROBE_ADDR + off);
        if (!readable(pg, &v))
            break;
        if (v == M1 && pg[1] == ~M1) {
            printf("LEAK %s: another process's secret %lx at memory file offset %#lx\n", what,
                   (unsigned long)pg[2], off);
            break;
        }
    }
}

/* Writes into the control page; returns 0 (after printing) when it is not there. */
static int poke(unsigned long addr, uint64_t value) {
    jumping = 1;
    if (sigsetjmp(env, 1)) {
        jumping = 0;
        printf("no control page\n");
        return 0;
    }
    *(volatile uint64_t *)addr = value;
    jumping = 0;
    return 1;
}

static void touch_fresh_page(void) {
    volatile char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        p[0] = 1;
        munmap((void *)p, 4096);
    }
}

/* The old layout's queue: count at 144, entries (nr, args[6]) from 256. */
static void mode_queued(void) {
    uint64_t e[7] = {9, PROBE_ADDR, PROBE_LEN, PROT_READ, MAP_SHARED | MAP_FIXED, 3, 0};
    for (int i = 0; i < 7; i++)
        if (!poke(CTRL + 256 + 8 * i, e[i]))
            return;
    poke(CTRL + 144, 1);
    touch_fresh_page();
    getpid();
    probe("forged queue entry");
}

static void mode_huge(void) {
    if (!poke(CTRL + 144, 0xffffffffffffffffUL))
        return;
    touch_fresh_page();
    printf("huge count: pid %d, still running\n", getpid() > 0);
}

static void mode_garbage(void) {
    for (unsigned long off = 8; off < 4096; off += 8)
        if (!poke(CTRL + off, 0xffffffffffffffffUL - off))
            return;
    touch_fresh_page();
    printf("garbage: still running\n");
    probe("garbage");
}

/* A forged event: ucontext pointer at the very top of the address range (checks that overflow
 * would pass), then state = EVENT while the Sentry waits for this stub. */
static void mode_ucontext(void) {
    /* Plain stores only from here to the busy loop: a syscall would rewrite the fields. */
    if (!poke(CTRL + 200, 0))
        return;
    volatile uint64_t *c = (volatile uint64_t *)CTRL;
    c[32 / 8] = 0xffffffffffffff00UL;
    c[24 / 8] = 39;
    *(volatile uint32_t *)(CTRL + 4) = SIGSYS;
    *(volatile uint32_t *)(CTRL + 12) = 0;
    *(volatile uint32_t *)CTRL = 1;
    for (volatile int i = 0; i < 10000000; i++)
        ;
    printf("ucontext: still running\n");
}

/* A forged event whose frame (in the signal stack) names an FPU area at the top of the
 * address range; the event is a fault at 0, so the Sentry delivers SIGSEGV and saves the FPU
 * state. */
static void mode_fpregs(void) {
    unsigned long uc = ALTSTACK + 0x4000;
    if (!poke(CTRL + 200, 0))
        return;
    *(volatile uint64_t *)(uc + 224) = 0xffffffffffffff80UL;
    *(volatile uint64_t *)(uc + 40 + 20 * 8) = 14; /* trapno: page fault */
    *(volatile uint64_t *)(uc + 40 + 19 * 8) = 4;  /* err: user read */
    *(volatile uint64_t *)(CTRL + 32) = uc;
    *(volatile uint64_t *)(CTRL + 16) = 0;
    *(volatile uint32_t *)(CTRL + 4) = SIGSEGV;
    *(volatile uint32_t *)(CTRL + 12) = 0;
    *(volatile uint32_t *)CTRL = 1;
    for (volatile int i = 0; i < 10000000; i++)
        ;
    printf("fpregs: still running\n");
}

/* Jumps to the syscall instruction at `target` asking for mmap(PROBE_ADDR, PROBE_LEN,
 * PROT_READ, MAP_SHARED|MAP_FIXED, 3 (the memory file), 0), with every register the stub
 * code might use as a pointer aimed at an unmapped page, so it faults right after. */
static void jump_mmap(unsigned long target) {
    register long rax __asm__("rax") = 9;
    register long rdi __asm__("rdi") = PROBE_ADDR;
    register long rsi __asm__("rsi") = PROBE_LEN;
    register long rdx __asm__("rdx") = PROT_READ;
    register long r10 __asm__("r10") = MAP_SHARED | MAP_FIXED;
    register long r8 __asm__("r8") = 3;
    register long r9 __asm__("r9") = 0;
    __asm__ volatile("mov $0x1000, %%r12\n\t"
                     "mov $0x1000, %%r13\n\t"
                     "mov $0x1000, %%r14\n\t"
                     "mov $0x1000, %%r15\n\t"
                     "mov $0x1000, %%rbx\n\t"
                     "jmp *%%rcx"
                     :
                     : "c"(target), "r"(rax), "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r9)
                     : "memory", "r12", "r13", "r14", "r15", "rbx");
}

static int jump_index = -1;

static void mode_jump(void) {
    const unsigned char *page = (const unsigned char *)STUB;
    uint64_t v;
    if (!readable((const volatile uint64_t *)page, &v)) {
        printf("no stub code\n");
        return;
    }
    int n = 0;
    for (int i = 0; i < 4095; i++) {
        if (page[i] != 0x0f || page[i + 1] != 0x05)
            continue;
        if (n++ != jump_index)
            continue;
        jumping = 1;
        if (!sigsetjmp(env, 1))
            jump_mmap(STUB + i);
        jumping = 0;
        char what[64];
        snprintf(what, sizeof what, "jump to syscall %d", jump_index);
        probe(what);
        return;
    }
    printf("jump: no syscall %d\n", jump_index);
}

/* The stub's pages through the Sentry: none of these may change them. */
static void mode_stubmaps(void) {
    unsigned long orders = CTRL + 0x12000;
    printf("mprotect orders rw: %d\n", mprotect((void *)orders, 4096, PROT_READ | PROT_WRITE) == 0);
    printf("mprotect code rw: %d\n", mprotect((void *)STUB, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) == 0);
    void *m = mmap((void *)orders, 4096, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap over orders: %d\n", m != MAP_FAILED);
    m = mmap((void *)STUB, 0x20000, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap over stub: %d\n", m != MAP_FAILED);
    munmap((void *)STUB, 0x20000);
    touch_fresh_page();
    printf("stubmaps: pid ok %d\n", getpid() > 0);
    probe("stubmaps");
}

static void run(const char *mode) {
    int ready[2];
    if (pipe(ready) != 0)
        return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(ready[1]);
        if (read(ready[0], &c, 1) != 1)
            _exit(3);
        handlers();
        if (!strcmp(mode, "queued"))
            mode_queued();
        else if (!strcmp(mode, "huge"))
            mode_huge();
        else if (!strcmp(mode, "garbage"))
            mode_garbage();
        else if (!strcmp(mode, "ucontext"))
            mode_ucontext();
        else if (!strcmp(mode, "fpregs"))
            mode_fpregs();
        else if (!strncmp(mode, "jump", 4)) {
            jump_index = atoi(mode + 4);
            mode_jump();
        } else if (!strcmp(mode, "stubmaps"))
            mode_stubmaps();
        fflush(stdout);
        _exit(0);
    }
    close(ready[0]);
    /* A secret in fresh pages of this process only, made after the fork. */
    size_t len = 16 * 4096;
    uint64_t *s = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t secret = ((uint64_t)time(0) * 2654435761u) ^ (uint64_t)getpid() << 40 ^ 0x5ec2e7;
    for (size_t off = 0; off < len; off += 4096) {
        s[off / 8] = M1;
        s[off / 8 + 1] = ~M1;
        s[off / 8 + 2] = secret;
    }
    if (write(ready[1], "x", 1) != 1)
        return;
    close(ready[1]);
    int status = 0;
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            goto reaped;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    printf("%s: child hung, killed\n", mode);
reaped:
    if (WIFEXITED(status))
        printf("%s: child exited %d\n", mode, WEXITSTATUS(status));
    else
        printf("%s: child killed by signal %d\n", mode, WTERMSIG(status));
    munmap(s, len);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        run(argv[i]);
    printf("parent ok\n");
    return 0;
}
