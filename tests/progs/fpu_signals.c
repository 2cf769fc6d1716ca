/* fpu_signals: signal handlers that wreck the SSE registers and MXCSR interrupt floating-point
 * work at arbitrary points (SIGALRM from a 1 ms interval timer, delivered through preemption
 * in the sandbox); the interrupted computation must still come out bit-for-bit as without
 * signals, because the kernel saves and restores the FPU state around the handler. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

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

int main(void) {
    double want = chunk();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wreck;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int chunks = 0, differ = 0;
    while ((ticks < 5 || chunks < 3) && chunks < 2000) {
        double got = chunk();
        differ += memcmp(&got, &want, sizeof got) != 0;
        chunks++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    unsigned int mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    printf("interrupted: %d\n", ticks >= 5);
    printf("chunks that differ: %d\n", differ);
    printf("mxcsr after: %#x\n", mxcsr & 0xffbf);
    return 0;
}
