/* timers: alarm, setitimer(ITIMER_REAL) one-shot and periodic, getitimer, pause; an
 * unhandled SIGALRM kills ("die"). Stable output. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;
static void on_alrm(int sig) { (void)sig; ticks++; }

int main(int argc, char **argv) {
    struct itimerval it = {{0, 0}, {0, 20000}};
    if (argc > 1 && !strcmp(argv[1], "die")) {
        setitimer(ITIMER_REAL, &it, NULL);
        pause();
        puts("not reached");
        return 0;
    }
    printf("alarm first: %u\n", alarm(5));
    printf("alarm cancel: %u\n", alarm(0));
    signal(SIGALRM, on_alrm);
    setitimer(ITIMER_REAL, &it, NULL);
    int r = pause();
    printf("pause: %d eintr %d ticks %d\n", r, errno == EINTR, (int)ticks);
    struct itimerval per = {{0, 10000}, {0, 10000}}, now;
    ticks = 0;
    sigset_t none, alrm;
    sigemptyset(&none);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    /* SIGALRM stays blocked but inside sigsuspend: one tick per return, whatever the load. */
    sigprocmask(SIG_BLOCK, &alrm, NULL);
    setitimer(ITIMER_REAL, &per, NULL);
    while (ticks < 3)
        sigsuspend(&none);
    getitimer(ITIMER_REAL, &now);
    printf("periodic: ticks %d interval %ld us\n", (int)ticks, (long)now.it_interval.tv_usec);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigprocmask(SIG_UNBLOCK, &alrm, NULL);
    getitimer(ITIMER_REAL, &now);
    printf("disabled: %ld %ld\n", (long)now.it_value.tv_sec, (long)now.it_value.tv_usec);
    printf("bad which: %d\n", setitimer(99, &off, NULL));
    return 0;
}
