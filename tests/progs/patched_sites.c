// Syscall sites of the form `mov $nr, %eax; syscall`, which the systrap platform rewrites into
// jumps to a trampoline after their first trap (guest-sentry/src/patch.rs). Each check runs a
// site many times — patched after the first — and must see what the real instruction does:
// the result in rax, rcx = the next instruction, r11 = rflags, every other register, the flags,
// the SSE registers and the red zone below rsp untouched; a jump straight at the old `syscall`
// instruction still makes the syscall in rax; a fork shares the patched code; a signal handler
// that clobbers SSE registers at a patched syscall leaves the interrupted code's intact; the
// app mapping over the page below its image (where systrap keeps its trampolines) breaks
// nothing.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

// Each site is preceded by a `nop`, so the byte before it is not a REX prefix.
__asm__(
    ".text\n"
    // long site_getpid(void)
    "  nop\n"
    ".globl site_getpid\n"
    "site_getpid:\n"
    "  mov $39, %eax\n"
    "site_getpid_syscall:\n"
    "  syscall\n"
    "  ret\n"
    // long direct_at_site(long nr): the site's `syscall` instruction with rax = nr.
    ".globl direct_at_site\n"
    "direct_at_site:\n"
    "  mov %rdi, %rax\n"
    "  jmp site_getpid_syscall\n"
    // long site_getppid(void): a second site, first reached in a forked child.
    "  nop\n"
    ".globl site_getppid\n"
    "site_getppid:\n"
    "  mov $110, %eax\n"
    "  syscall\n"
    "  ret\n"
    // int regs_check(void): 0 if a getpid site kept every register it must keep; else the
    // number of the first that changed.
    ".globl regs_check\n"
    "regs_check:\n"
    "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "  movabs $0x1111111111111111, %rbx\n"
    "  movabs $0x2222222222222222, %rbp\n"
    "  movabs $0x3333333333333333, %rdi\n"
    "  movabs $0x4444444444444444, %rsi\n"
    "  movabs $0x5555555555555555, %rdx\n"
    "  movabs $0x6666666666666666, %r8\n"
    "  movabs $0x7777777777777777, %r9\n"
    "  movabs $0x8888888888888888, %r10\n"
    "  movabs $0x9999999999999999, %r12\n"
    "  movabs $0xaaaaaaaaaaaaaaaa, %r13\n"
    "  movabs $0xbbbbbbbbbbbbbbbb, %r14\n"
    "  movabs $0xcccccccccccccccc, %r15\n"
    "  movabs $0x0123456789abcdef, %rax\n"
    "  movq %rax, %xmm0\n"
    "  movabs $0xfedcba9876543210, %rax\n"
    "  movq %rax, %xmm7\n"
    "  movq %rax, %xmm15\n"
    "  stc\n"
    "  nop\n"
    "  mov $39, %eax\n"
    "  syscall\n"
    "1:\n"
    "  mov $1, %eax\n jnc 9f\n"                   // CF kept
    "  mov $2, %eax\n test $1, %r11\n jz 9f\n"   // r11 = rflags (CF set)
    "  lea 1b(%rip), %rax\n cmp %rax, %rcx\n mov $3, %eax\n jne 9f\n"  // rcx = next rip
#define CHECK(reg, val, n)                                                                         \
    "  movabs $" #val ", %rax\n cmp %rax, " #reg "\n mov $" #n ", %eax\n jne 9f\n"
    CHECK(%rbx, 0x1111111111111111, 4)
    CHECK(%rbp, 0x2222222222222222, 5)
    CHECK(%rdi, 0x3333333333333333, 6)
    CHECK(%rsi, 0x4444444444444444, 7)
    CHECK(%rdx, 0x5555555555555555, 8)
    CHECK(%r8, 0x6666666666666666, 9)
    CHECK(%r9, 0x7777777777777777, 10)
    CHECK(%r10, 0x8888888888888888, 11)
    CHECK(%r12, 0x9999999999999999, 12)
    CHECK(%r13, 0xaaaaaaaaaaaaaaaa, 13)
    CHECK(%r14, 0xbbbbbbbbbbbbbbbb, 14)
    CHECK(%r15, 0xcccccccccccccccc, 15)
    "  movq %xmm0, %rdx\n movabs $0x0123456789abcdef, %rax\n cmp %rax, %rdx\n"
    "  mov $16, %eax\n jne 9f\n"
    "  movq %xmm7, %rdx\n movabs $0xfedcba9876543210, %rax\n cmp %rax, %rdx\n"
    "  mov $17, %eax\n jne 9f\n"
    "  movq %xmm15, %rdx\n movabs $0xfedcba9876543210, %rax\n cmp %rax, %rdx\n"
    "  mov $18, %eax\n jne 9f\n"
    "  xor %eax, %eax\n"
    "9:\n"
    "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
    "  ret\n"
    // int redzone_check(void): a leaf that keeps data below rsp across a site.
    ".globl redzone_check\n"
    "redzone_check:\n"
    "  movabs $0x0badc0ffee0ddf00, %rax\n"
    "  mov %rax, -8(%rsp)\n mov %rax, -16(%rsp)\n mov %rax, -64(%rsp)\n mov %rax, -128(%rsp)\n"
    "  nop\n"
    "  mov $39, %eax\n"
    "  syscall\n"
    "  movabs $0x0badc0ffee0ddf00, %rax\n"
    "  cmp %rax, -8(%rsp)\n jne 8f\n cmp %rax, -16(%rsp)\n jne 8f\n"
    "  cmp %rax, -64(%rsp)\n jne 8f\n cmp %rax, -128(%rsp)\n jne 8f\n"
    "  xor %eax, %eax\n ret\n"
    "8:\n"
    "  mov $1, %eax\n ret\n");

extern char __executable_start[];
long site_getpid(void);
long site_getppid(void);
long direct_at_site(long nr);
int regs_check(void);
int redzone_check(void);

static void fail(const char *what, long got, long want) {
    printf("FAIL %s: got %ld, want %ld\n", what, got, want);
    exit(1);
}

static volatile sig_atomic_t ticks;

static void on_alarm(int sig) {
    (void)sig;
    // Wreck the SSE registers the interrupted code relies on (regs_check's xmm0/7/15).
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n pxor %%xmm7, %%xmm7\n pcmpeqd %%xmm15, %%xmm15" ::
                         : "xmm0", "xmm7", "xmm15");
    ticks++;
}

int main(void) {
    long pid = syscall(SYS_getpid);
    for (int i = 0; i < 1000; i++) {
        long r = site_getpid();
        if (r != pid)
            fail("site_getpid", r, pid);
    }
    puts("site ok");

    for (int i = 0; i < 1000; i++) {
        int r = regs_check();
        if (r != 0)
            fail("regs_check register", r, 0);
    }
    puts("regs ok");

    for (int i = 0; i < 1000; i++) {
        if (redzone_check() != 0)
            fail("red zone", 1, 0);
    }
    puts("redzone ok");

    // The site is patched by now: jumping at its old `syscall` still makes the call in rax.
    long ppid = syscall(SYS_getppid);
    for (int i = 0; i < 100; i++) {
        long r = direct_at_site(SYS_getppid);
        if (r != ppid)
            fail("direct getppid", r, ppid);
        r = direct_at_site(SYS_getpid);
        if (r != pid)
            fail("direct getpid", r, pid);
    }
    puts("direct ok");

    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        long me = syscall(SYS_getpid);
        for (int i = 0; i < 100; i++) {
            if (site_getpid() != me || site_getppid() != pid)
                _exit(3);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("child", status, 0);
    // The parent's own copy of the code, untouched by the child's patches.
    for (int i = 0; i < 100; i++) {
        long r = site_getppid();
        if (r != ppid)
            fail("parent site_getppid", r, ppid);
        if (site_getpid() != pid)
            fail("parent site_getpid", 0, pid);
    }
    puts("fork ok");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (long i = 0; ticks < 50; i++) {
        int r = regs_check();
        if (r != 0)
            fail("regs_check with signals, register", r, 0);
        if (i > 50000000)
            fail("timer ticks", ticks, 50);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    puts("signals ok");

    // (A non-PIE image only: Linux refuses the page below a static-pie image, the sandbox
    // would not.)
    if ((unsigned long)__executable_start >= (1UL << 32)) {
        puts("remap ok");
        return 0;
    }
    char *below = (char *)(((unsigned long)__executable_start & ~4095UL) - 4096);
    char *m = mmap(below, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                   -1, 0);
    if (m != below)
        fail("mmap below the image", (long)m, (long)below);
    memset(m, 0xcc, 4096);
    for (int i = 0; i < 1000; i++) {
        if (site_getpid() != pid)
            fail("site_getpid after the remap", 0, pid);
        int r = regs_check();
        if (r != 0)
            fail("regs_check after the remap, register", r, 0);
    }
    munmap(m, 4096);
    for (int i = 0; i < 100; i++) {
        if (site_getpid() != pid)
            fail("site_getpid after the unmap", 0, pid);
    }
    puts("remap ok");
    return 0;
}
