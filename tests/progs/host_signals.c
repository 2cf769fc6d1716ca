/* host_signals: signals sent from outside (a terminal's Ctrl-C, `kill` of the sandbox)
 * reach the program. The test sends SIGINT/SIGTERM after each "ready" line.
 *   handler: SIGINT while blocked in pause(), then while spinning without syscalls
 *            (needs preemption), then while blocked reading stdin (EINTR).
 *   default: SIGINT with the default action kills the program.
 *   term:    SIGTERM reaches the program's handler. Stable output. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_sig(int sig) { got = sig; }

static void ready(const char *what) {
    printf("ready %s\n", what);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "handler";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig; /* no SA_RESTART: a blocked read fails with EINTR */
    if (!strcmp(mode, "default")) {
        ready("default");
        for (;;)
            pause();
    }
    if (!strcmp(mode, "term")) {
        sigaction(SIGTERM, &sa, NULL);
        ready("term");
        while (!got)
            pause();
        printf("got signal %d\n", got);
        return 0;
    }
    sigaction(SIGINT, &sa, NULL);
    ready("pause");
    while (!got)
        pause();
    printf("got signal %d in pause\n", got);
    got = 0;
    ready("spin");
    while (!got) {
        /* no syscalls: only preemption gets the Sentry in */
    }
    printf("got signal %d while spinning\n", got);
    got = 0;
    ready("read");
    char c;
    ssize_t n = read(0, &c, 1);
    printf("read: %zd %s, signal %d\n", n, n < 0 && errno == EINTR ? "EINTR" : "?", got);
    return 0;
}
