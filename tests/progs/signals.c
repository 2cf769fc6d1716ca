/* signals: handlers run with the right siginfo, masks defer delivery, SIGCHLD arrives,
 * sigsuspend waits for it, SA_RESETHAND resets, a SIGSEGV handler on an alternate stack can
 * recover with siglongjmp, and an unhandled SIGTERM kills. Output is stable for comparison. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got, got_code, got_chld, chld_status;
static volatile long got_pid_ok;
static sigjmp_buf env;
static char altstack[65536];

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got = sig;
    got_code = si->si_code;
    got_pid_ok = si->si_pid == getpid();
}

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    got_chld = si->si_code;
    chld_status = si->si_status;
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char here;
    int on_alt = &here >= altstack && &here < altstack + sizeof altstack;
    printf("segv handler: sig %d addr %p on altstack %d\n", sig, si->si_addr, on_alt);
    siglongjmp(env, 1);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "term")) {
        kill(getpid(), SIGTERM);
        puts("not reached");
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    kill(getpid(), SIGUSR1);
    printf("usr1: sig %d code %d pid ok %ld\n", (int)got, (int)got_code, got_pid_ok);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    got = 0;
    sigprocmask(SIG_BLOCK, &set, &old);
    kill(getpid(), SIGUSR1);
    printf("blocked: delivered %d\n", (int)got);
    sigset_t pend;
    sigpending(&pend);
    printf("pending has usr1: %d\n", sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: delivered %d\n", (int)got);

    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, NULL);
    sigprocmask(SIG_BLOCK, &(sigset_t){0}, NULL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    pid_t c = fork();
    if (c == 0)
        _exit(7);
    sigset_t wait_mask = old;
    sigdelset(&wait_mask, SIGCHLD);
    while (!got_chld)
        sigsuspend(&wait_mask);
    sigprocmask(SIG_SETMASK, &old, NULL);
    int st;
    printf("sigchld: code %d status %d waitpid ok %d\n", (int)got_chld, (int)chld_status,
           waitpid(c, &st, 0) == c && WEXITSTATUS(st) == 7);

    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR2, &sa, NULL);
    got = 0;
    raise(SIGUSR2);
    struct sigaction now;
    sigaction(SIGUSR2, NULL, &now);
    printf("resethand: delivered %d reset %d\n", (int)got, now.sa_handler == SIG_DFL);

    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    if (!sigsetjmp(env, 1)) {
        volatile int *volatile bad = (volatile int *)16;
        *bad = 1;
        puts("not reached");
    }
    puts("recovered from SIGSEGV");

    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGTERM, &sa, NULL);
    kill(getpid(), SIGTERM);
    puts("ignored SIGTERM");
    return 0;
}
