/* sec_abi_flags: the app's direction flag (DF) and alignment-check flag (AC) must not leak into
 * the kernel that serves its faults and signals (the Sentry assumes DF clear, as the C ABI
 * does: a page fault taken with DF set once made the kvm guest kernel copy backwards and
 * triple-fault). Each case sets the flag, takes a page fault or a trap, and checks the
 * outcome and what the handler saw; compared with a native run. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define DF 0x400UL
#define AC 0x40000UL

static volatile unsigned long handler_flags, frame_flags;

static unsigned long flags_now(void) {
    unsigned long f;
    __asm__ volatile("pushfq; pop %0" : "=r"(f));
    return f;
}

static void on_trap(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    handler_flags = flags_now();
    frame_flags = ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_EFL];
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* 1. A first-touch page fault (served by the kernel, no signal) with DF set. */
    for (int round = 0; round < 4; round++) {
        char *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        unsigned long after;
        __asm__ volatile("std\n\tmovb $7, (%1)\n\tmovb $9, 40000(%1)\n\tpushfq\n\tpop %0\n\tcld"
                         : "=r"(after)
                         : "r"(p)
                         : "memory");
        printf("fault with DF: values %d %d, DF kept %d\n", p[0], p[40000], !!(after & DF));
        munmap(p, 1 << 16);
    }
    /* 2. A trap (int3) with DF set: the handler runs with DF clear, the frame keeps it. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGTRAP, &sa, NULL);
    unsigned long after;
    __asm__ volatile("std\n\tint3\n\tpushfq\n\tpop %0\n\tcld" : "=r"(after) : : "memory");
    printf("int3 with DF: handler DF %d, frame DF %d, DF after return %d\n",
           !!(handler_flags & DF), !!(frame_flags & DF), !!(after & DF));
    /* 3. AC set (no alignment checks at CPL 3 unless the kernel enables CR0.AM, which Linux
     * does: misaligned accesses are then still allowed here since AC checking needs both). */
    char *q = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    __asm__ volatile("pushfq\n\torq $0x40000, (%%rsp)\n\tpopfq\n\tmovb $5, 20000(%0)\n\t"
                     "int3\n\tpushfq\n\tandq $~0x40000, (%%rsp)\n\tpopfq"
                     :
                     : "r"(q)
                     : "memory");
    printf("fault and trap with AC: value %d, handler AC %d, frame AC %d\n", q[20000],
           !!(handler_flags & AC), !!(frame_flags & AC));
    return 0;
}
