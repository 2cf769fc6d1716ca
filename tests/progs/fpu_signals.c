/* fpu_signals: signal handlers that wreck the SSE registers and MXCSR interrupt floating-point
 * work at arbitrary points (SIGALRM from a 1 ms interval timer, delivered through preemption
 * in the sandbox); the interrupted computation must still come out bit-for-bit as without
 * signals, because the kernel saves and restores the FPU state around the handler.
 *
 * Where the CPU has AVX, the same for the upper halves of the ymm registers (a frame that
 * carries only the 512-byte FXSAVE area loses them), and the frame's format as Linux writes
 * it: the whole XSAVE image with `_fpx_sw_bytes` and FP_XSTATE_MAGIC2, UC_FP_XSTATE, the
 * handler starting from the initial FPU state, and a handler's change to the frame's ymm
 * state being what the interrupted code resumes with. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;

static void wreck(int sig) {
    (void)sig;
    unsigned int rz = 0x7f80; /* round toward zero, all exceptions masked */
    __asm__ volatile("ldmxcsr %0" ::"m"(rz));
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\t"
                     "movaps %%xmm0, %%xmm1\n\tmovaps %%xmm0, %%xmm2\n\tmovaps %%xmm0, %%xmm3\n\t"
                     "movaps %%xmm0, %%xmm4\n\tmovaps %%xmm0, %%xmm5\n\tmovaps %%xmm0, %%xmm6\n\t"
                     "movaps %%xmm0, %%xmm7\n\tmovaps %%xmm0, %%xmm8\n\tmovaps %%xmm0, %%xmm9\n\t"
                     "movaps %%xmm0, %%xmm10\n\tmovaps %%xmm0, %%xmm11\n\tmovaps %%xmm0, %%xmm12\n\t"
                     "movaps %%xmm0, %%xmm13\n\tmovaps %%xmm0, %%xmm14\n\tmovaps %%xmm0, %%xmm15"
                     ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                     "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    ticks++;
}

/* Long enough to be interrupted, with its state in registers throughout. */
static volatile double seed_x = 0.1, seed_y = 0.3;

static double chunk(void) {
    double x = seed_x, y = seed_y; /* volatile: each call really computes */
    for (long i = 0; i < 2000000; i++) {
        x = x * 0.999999937 + y;
        y = y * 1.000000013 - x * 1e-9;
    }
    return x + y;
}

/* SIGALRM to `handler` every millisecond (on), or no more (off). */
static void ticking(void (*handler)(int), int on) {
    if (on) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
    }
    struct itimerval it = {{0, on ? 1000 : 0}, {0, on ? 1000 : 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* ------------------------------------------------------------------ AVX */

static int have_avx(void) {
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0; /* OSXSAVE, AVX */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6;
}

static uint64_t xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* The standard-format offset of the AVX component (CPUID 0xD.2 EBX). */
static unsigned avx_offset(void) {
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(2));
    return b;
}

static volatile sig_atomic_t avx_ticks;

static void wreck_avx(int sig) {
    (void)sig;
    __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
                     "vmovdqa %%ymm0, %%ymm1\n\tvmovdqa %%ymm0, %%ymm2\n\tvmovdqa %%ymm0, %%ymm3\n\t"
                     "vmovdqa %%ymm0, %%ymm4\n\tvmovdqa %%ymm0, %%ymm5\n\tvmovdqa %%ymm0, %%ymm6\n\t"
                     "vmovdqa %%ymm0, %%ymm7\n\tvmovdqa %%ymm0, %%ymm8\n\tvmovdqa %%ymm0, %%ymm9\n\t"
                     "vmovdqa %%ymm0, %%ymm10\n\tvmovdqa %%ymm0, %%ymm11\n\tvmovdqa %%ymm0, %%ymm12\n\t"
                     "vmovdqa %%ymm0, %%ymm13\n\tvmovdqa %%ymm0, %%ymm14\n\tvmovdqa %%ymm0, %%ymm15"
                     ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                     "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    avx_ticks++;
}

static uint8_t pattern[32] __attribute__((aligned(32)));

/* ymm8..ymm15 hold the pattern while a spin loop gets interrupted; returns how many of them
 * still hold it after. */
static int spin_with_ymm(long n) {
    uint8_t out[8][32] __attribute__((aligned(32)));
    __asm__ volatile(
        "vmovdqa (%2), %%ymm8\n\tvmovdqa %%ymm8, %%ymm9\n\tvmovdqa %%ymm8, %%ymm10\n\t"
        "vmovdqa %%ymm8, %%ymm11\n\tvmovdqa %%ymm8, %%ymm12\n\tvmovdqa %%ymm8, %%ymm13\n\t"
        "vmovdqa %%ymm8, %%ymm14\n\tvmovdqa %%ymm8, %%ymm15\n\t"
        "1: dec %0\n\tjnz 1b\n\t"
        "vmovdqa %%ymm8, 0(%1)\n\tvmovdqa %%ymm9, 32(%1)\n\tvmovdqa %%ymm10, 64(%1)\n\t"
        "vmovdqa %%ymm11, 96(%1)\n\tvmovdqa %%ymm12, 128(%1)\n\tvmovdqa %%ymm13, 160(%1)\n\t"
        "vmovdqa %%ymm14, 192(%1)\n\tvmovdqa %%ymm15, 224(%1)\n\tvzeroupper"
        : "+r"(n)
        : "r"(out), "r"(pattern)
        : "memory", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    int kept = 0;
    for (int i = 0; i < 8; i++) kept += memcmp(out[i], pattern, 32) == 0;
    return kept;
}

/* What the SIGUSR1 handler saw and did. */
static struct {
    int uc_fp_xstate, magic1, magic2, sizes, features_match, init_mxcsr, init_ymm;
} seen;
static uint8_t handler_ymm0[32] __attribute__((aligned(32)));

static void inspect(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    unsigned mx;
    __asm__ volatile("stmxcsr %0\n\tvmovdqu %%ymm0, %1" : "=m"(mx), "=m"(handler_ymm0));
    ucontext_t *uc = ctx;
    uint8_t *fp = (uint8_t *)uc->uc_mcontext.fpregs;
    uint32_t magic1, ext, size;
    uint64_t feats;
    memcpy(&magic1, fp + 464, 4);
    memcpy(&ext, fp + 468, 4);
    memcpy(&feats, fp + 472, 8);
    memcpy(&size, fp + 480, 4);
    seen.uc_fp_xstate = (uc->uc_flags & 1) != 0;
    seen.magic1 = magic1 == 0x46505853;
    seen.sizes = ext == size + 4 && size >= 576 + 256;
    uint32_t magic2 = 0;
    if (seen.magic1 && seen.sizes) memcpy(&magic2, fp + size, 4);
    seen.magic2 = magic2 == 0x46505845;
    seen.features_match = (feats & 7) == (xcr0() & 7);
    seen.init_mxcsr = (mx & 0xffbf) == 0x1f80;
    int zero = 1;
    for (int i = 0; i < 32; i++) zero &= handler_ymm0[i] == 0;
    seen.init_ymm = zero;
    /* Change what the interrupted code resumes with: ymm8 = 0x5a.. (both halves), and say
     * the AVX component is present. */
    if (seen.magic1 && seen.sizes) {
        unsigned off = avx_offset();
        memset(fp + 160 + 8 * 16, 0x5a, 16);
        memset(fp + off + 8 * 16, 0x5a, 16);
        fp[512] |= 4;
    }
}

/* Loads ymm8 with the pattern and MXCSR with round-down, raises SIGUSR1 with a raw syscall
 * (delivered on its way back), and returns ymm8 and MXCSR as the handler left them. */
static void raise_with_ymm(uint8_t out[32], unsigned *mx_after) {
    unsigned down = 0x3f80, mx;
    long pid = getpid();
    __asm__ volatile("ldmxcsr %3\n\tvmovdqa (%2), %%ymm8\n\t"
                     "mov %4, %%rdi\n\tmov %5, %%esi\n\tmov %6, %%eax\n\tsyscall\n\t"
                     "vmovdqu %%ymm8, %0\n\tstmxcsr %1\n\tvzeroupper"
                     : "=m"(*(uint8_t(*)[32])out), "=m"(mx)
                     : "r"(pattern), "m"(down), "r"(pid), "r"(SIGUSR1), "i"(SYS_kill)
                     : "rax", "rdi", "rsi", "rcx", "r11", "memory", "xmm8");
    unsigned dflt = 0x1f80;
    __asm__ volatile("ldmxcsr %0" ::"m"(dflt));
    *mx_after = mx;
}

static void avx_cases(void) {
    if (!have_avx()) {
        printf("avx: unavailable\n");
        return;
    }
    for (int i = 0; i < 32; i++) pattern[i] = (uint8_t)(i * 7 + 3);
    ticking(wreck_avx, 1);
    int spins = 0, lost = 0;
    while ((avx_ticks < 5 || spins < 3) && spins < 2000) {
        lost += 8 - spin_with_ymm(20000000);
        spins++;
    }
    ticking(wreck_avx, 0);
    printf("avx interrupted: %d\n", avx_ticks >= 5);
    printf("ymm registers that lost their value: %d\n", lost);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = inspect;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    uint8_t after[32];
    unsigned mx_after;
    raise_with_ymm(after, &mx_after);
    printf("frame: UC_FP_XSTATE %d magic1 %d sizes %d magic2 %d features %d\n", seen.uc_fp_xstate,
           seen.magic1, seen.sizes, seen.magic2, seen.features_match);
    printf("handler starts with init mxcsr %d, zero ymm0 %d\n", seen.init_mxcsr, seen.init_ymm);
    int changed = 1;
    for (int i = 0; i < 32; i++) changed &= after[i] == 0x5a;
    printf("resumed with the frame's ymm8 %d, the interrupted mxcsr %d\n", changed,
           (mx_after & 0xffbf) == 0x3f80);
}

int main(int argc, char **argv) {
    /* "probe": only say whether AVX is usable; "noavx": leave the AVX cases out. */
    if (argc > 1 && strcmp(argv[1], "probe") == 0) {
        printf("avx %d\n", have_avx());
        return 0;
    }
    int avx = !(argc > 1 && strcmp(argv[1], "noavx") == 0);
    double want = chunk();
    ticking(wreck, 1);
    int chunks = 0, differ = 0;
    while ((ticks < 5 || chunks < 3) && chunks < 2000) {
        double got = chunk();
        differ += memcmp(&got, &want, sizeof got) != 0;
        chunks++;
    }
    ticking(wreck, 0);
    unsigned int mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    printf("interrupted: %d\n", ticks >= 5);
    printf("chunks that differ: %d\n", differ);
    printf("mxcsr after: %#x\n", mxcsr & 0xffbf);
    if (avx) avx_cases();
    return 0;
}
