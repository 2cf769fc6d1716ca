/* jobs: job-control stops. SIGSTOP and SIGTSTP stop a child and SIGCONT continues it; the
 * parent sees both with wait4 (WUNTRACED, WCONTINUED) and waitid (WSTOPPED, WCONTINUED,
 * WNOWAIT), and gets SIGCHLD with CLD_STOPPED / CLD_CONTINUED unless SA_NOCLDSTOP. A child
 * stopped in a blocking read goes on reading after SIGCONT; SIGTERM to a stopped child waits
 * for the SIGCONT, SIGKILL does not; kill(0, sig) reaches the caller's own group; a read
 * interrupted by a handler is restarted with SA_RESTART and fails with EINTR without it.
 * Stable output. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t chld_code, chld_count;

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    chld_code = si->si_code;
    chld_count++;
}

static void on_alrm(int sig) { (void)sig; }

static void settle(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static const char *code_name(int c) {
    switch (c) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    default: return "none";
    }
}

static void describe(const char *what, pid_t r, pid_t c, int st) {
    if (r != c) {
        printf("%s: returned %d (%s)\n", what, r == 0 ? 0 : -1, r == 0 ? "nothing" : strerror(errno));
        return;
    }
    if (WIFSTOPPED(st))
        printf("%s: stopped by %d\n", what, WSTOPSIG(st));
    else if (WIFCONTINUED(st))
        printf("%s: continued\n", what);
    else if (WIFSIGNALED(st))
        printf("%s: killed by %d\n", what, WTERMSIG(st));
    else
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
}

static pid_t spinner(void) {
    pid_t c = fork();
    if (c == 0) {
        for (;;)
            settle();
    }
    return c;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    int st;
    pid_t r;

    pid_t c = spinner();
    kill(c, SIGSTOP);
    r = waitpid(c, &st, WUNTRACED);
    describe("SIGSTOP, wait4 WUNTRACED", r, c, st);
    settle();
    printf("SIGCHLD: %s\n", code_name(chld_code));
    r = waitpid(c, &st, WNOHANG | WUNTRACED);
    describe("nothing more to report", r, c, st);
    kill(c, SIGCONT);
    r = waitpid(c, &st, WCONTINUED);
    describe("SIGCONT, wait4 WCONTINUED", r, c, st);
    settle();
    printf("SIGCHLD: %s\n", code_name(chld_code));

    // waitid: WSTOPPED with WNOWAIT leaves the event; then it is collected.
    kill(c, SIGSTOP);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, c, &si, WSTOPPED | WNOWAIT);
    printf("waitid WSTOPPED|WNOWAIT: %d pid ok %d code %s status %d\n", r, si.si_pid == c,
           code_name(si.si_code), si.si_status);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, c, &si, WSTOPPED);
    printf("waitid WSTOPPED: %d code %s status %d\n", r, code_name(si.si_code), si.si_status);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, c, &si, WSTOPPED | WNOHANG);
    printf("waitid again: %d pid %d\n", r, si.si_pid);
    kill(c, SIGCONT);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, c, &si, WCONTINUED);
    printf("waitid WCONTINUED: %d code %s status %d\n", r, code_name(si.si_code), si.si_status);

    // SIGTERM waits for the SIGCONT; SIGKILL does not.
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGTERM);
    settle();
    r = waitpid(c, &st, WNOHANG);
    describe("SIGTERM while stopped", r, c, st);
    kill(c, SIGCONT);
    r = waitpid(c, &st, 0);
    describe("then SIGCONT", r, c, st);
    c = spinner();
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGKILL);
    r = waitpid(c, &st, 0);
    describe("SIGKILL while stopped", r, c, st);

    // SIGTSTP to a child in its own (not orphaned) group; its blocking read goes on.
    int p[2];
    if (pipe(p) != 0)
        return 1;
    c = fork();
    if (c == 0) {
        close(p[1]);
        char buf[16];
        ssize_t n = read(p[0], buf, sizeof buf);
        _exit(n < 0 ? 100 + errno : (int)n);
    }
    close(p[0]);
    setpgid(c, c);
    settle();
    kill(-c, SIGTSTP);
    r = waitpid(c, &st, WUNTRACED);
    describe("SIGTSTP to the group", r, c, st);
    kill(c, SIGCONT);
    settle();
    if (write(p[1], "hello", 5) != 5)
        return 1;
    r = waitpid(c, &st, 0);
    describe("read across stop and continue", r, c, st);
    close(p[1]);

    // SA_NOCLDSTOP: no SIGCHLD for stops.
    sa.sa_flags |= SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    chld_count = 0;
    c = spinner();
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    waitpid(c, &st, WCONTINUED);
    settle();
    printf("SA_NOCLDSTOP: %d SIGCHLD\n", chld_count);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);

    // kill(0, sig): the caller's group (a child in a group of its own, lest the signal reach
    // whatever runs this test).
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        signal(SIGUSR1, SIG_IGN);
        _exit(kill(0, SIGUSR1) == 0 ? 7 : 8);
    }
    r = waitpid(c, &st, 0);
    describe("kill(0, SIGUSR1) in a child", r, c, st);

    for (int restart = 1; restart >= 0; restart--) {
        struct sigaction al;
        memset(&al, 0, sizeof al);
        al.sa_handler = on_alrm;
        al.sa_flags = restart ? SA_RESTART : 0;
        sigaction(SIGALRM, &al, NULL);
        if (pipe(p) != 0)
            return 1;
        c = fork();
        if (c == 0) {
            struct timespec ts = {0, 150 * 1000 * 1000};
            nanosleep(&ts, NULL);
            _exit(write(p[1], "x", 1) == 1 ? 0 : 1);
        }
        struct itimerval it = {{0, 0}, {0, 30 * 1000}};
        setitimer(ITIMER_REAL, &it, NULL);
        char ch;
        ssize_t n = read(p[0], &ch, 1);
        printf("read with a SIGALRM handler, SA_RESTART %d: %zd (%s)\n", restart, n,
               n < 0 ? strerror(errno) : "data");
        waitpid(c, &st, 0);
        close(p[0]);
        close(p[1]);
    }
    return 0;
}
