/* posix_timers: timer_create / timer_settime / timer_gettime / timer_getoverrun /
 * timer_delete through raw syscalls (the kernel's int ids and struct sigevent, the same under
 * every libc), and the C library's SIGEV_THREAD timers. Prints no times: only whether counts
 * and remaining times are within bounds, so the output is the same natively and sandboxed.
 * One case per run when given its name; all of them in order without arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

/* The kernel's struct sigevent (64 bytes). */
struct ksigevent {
    union {
        int sival_int;
        void *sival_ptr;
    } value;
    int signo;
    int notify;
    int tid;
    int pad[11];
};

#define K_SIGEV_SIGNAL 0
#define K_SIGEV_NONE 1
#define K_SIGEV_THREAD 2
#define K_SIGEV_THREAD_ID 4

static int k_create(clockid_t clock, struct ksigevent *ev, int *id) {
    return syscall(SYS_timer_create, clock, ev, id);
}
static int k_settime(int id, int flags, const struct itimerspec *n, struct itimerspec *o) {
    return syscall(SYS_timer_settime, id, flags, n, o);
}
static int k_gettime(int id, struct itimerspec *c) { return syscall(SYS_timer_gettime, id, c); }
static int k_getoverrun(int id) { return syscall(SYS_timer_getoverrun, id); }
static int k_delete(int id) { return syscall(SYS_timer_delete, id); }
static pid_t k_gettid(void) { return syscall(SYS_gettid); }


static long long ns(struct timespec ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }
static struct itimerspec its(long long value_ns, long long interval_ns) {
    struct itimerspec s = {{interval_ns / 1000000000, interval_ns % 1000000000},
                           {value_ns / 1000000000, value_ns % 1000000000}};
    return s;
}
static void sleep_ns(long long n) {
    struct timespec ts = {n / 1000000000, n % 1000000000};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}
#define MS 1000000LL

/* What the handlers saw (raw siginfo fields of the _timer view). */
static volatile sig_atomic_t hits, last_code, last_timerid, last_overrun, last_value, last_signo;
static void on_timer(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    int *p = (int *)si;
    hits++;
    last_signo = sig;
    last_code = si->si_code;
    last_timerid = p[4];
    last_overrun = p[5];
    last_value = p[6];
}
static void handle(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(sig, &sa, NULL);
}
/* Waits until `n` timer signals were handled. Signals are blocked while `hits` is checked
 * and let in only inside sigsuspend, so one that arrives between the check and the wait is
 * not lost (the wait would never end). */
static void wait_hits(int n) {
    sigset_t all, old, none;
    sigfillset(&all);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &all, &old);
    while (hits < n)
        sigsuspend(&none);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void case_default(void) {
    handle(SIGALRM);
    hits = 0;
    int id = -1;
    int r = k_create(CLOCK_MONOTONIC, NULL, &id);
    printf("default: create %s, first id %d\n", err(r), id);
    struct itimerspec s = its(5 * MS, 0);
    printf("default: settime %s\n", err(k_settime(id, 0, &s, NULL)));
    wait_hits(1);
    printf("default: signo %d code %d timerid ok %d value is id %d overrun %d\n", last_signo,
           last_code, last_timerid == id, last_value == id, last_overrun);
    struct itimerspec c;
    k_gettime(id, &c);
    printf("default: one-shot disarmed after firing %d\n", ns(c.it_value) == 0 && ns(c.it_interval) == 0);
    printf("default: getoverrun %d\n", k_getoverrun(id));
    const char *first = err(k_delete(id));
    printf("default: delete %s, again %s\n", first, err(k_delete(id)));
    signal(SIGALRM, SIG_DFL);
}

static void case_periodic(void) {
    int sig = SIGRTMIN + 1;
    handle(sig);
    hits = 0;
    struct ksigevent ev = {.value.sival_int = 1234, .signo = sig, .notify = K_SIGEV_SIGNAL};
    int id;
    printf("periodic: create %s\n", err(k_create(CLOCK_MONOTONIC, &ev, &id)));
    struct itimerspec s = its(5 * MS, 5 * MS);
    k_settime(id, 0, &s, NULL);
    wait_hits(5);
    printf("periodic: fired at least 5 times, value %d code %d timerid ok %d\n", (int)last_value,
           last_code, last_timerid == id);
    struct itimerspec c;
    k_gettime(id, &c);
    printf("periodic: remaining within interval %d, interval 5ms %d\n",
           ns(c.it_value) > 0 && ns(c.it_value) <= 5 * MS, ns(c.it_interval) == 5 * MS);
    struct itimerspec old;
    s = its(0, 0);
    printf("periodic: disarm %s\n", err(k_settime(id, 0, &s, &old)));
    printf("periodic: old value within interval %d, old interval 5ms %d\n",
           ns(old.it_value) > 0 && ns(old.it_value) <= 5 * MS, ns(old.it_interval) == 5 * MS);
    k_gettime(id, &c);
    printf("periodic: disarmed reads 0/0 %d\n", ns(c.it_value) == 0 && ns(c.it_interval) == 0);
    /* Armed again, then deleted: no signal after the delete. */
    s = its(3 * MS, 3 * MS);
    k_settime(id, 0, &s, NULL);
    int before = hits;
    wait_hits(before + 2);
    k_delete(id);
    sleep_ns(2 * MS);
    before = hits;
    sleep_ns(20 * MS);
    printf("periodic: no signal after delete %d\n", hits == before);
    signal(sig, SIG_DFL);
}

static void case_overrun(void) {
    int sig = SIGRTMIN + 2;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct ksigevent ev = {.value.sival_int = 77, .signo = sig, .notify = K_SIGEV_SIGNAL};
    int id;
    k_create(CLOCK_MONOTONIC, &ev, &id);
    struct itimerspec s = its(1 * MS, 1 * MS);
    k_settime(id, 0, &s, NULL);
    sleep_ns(40 * MS);
    sigset_t pend;
    sigpending(&pend);
    printf("overrun: pending while blocked %d\n", sigismember(&pend, sig));
    siginfo_t si;
    int got = sigwaitinfo(&set, &si);
    int *p = (int *)&si;
    int overrun = p[5];
    printf("overrun: took %d code %d value %d overrun >= 10 %d\n", got == sig, si.si_code, p[6],
           overrun >= 10 && overrun < 100000);
    printf("overrun: getoverrun is the signal's %d\n", k_getoverrun(id) == overrun);
    k_delete(id);
    /* The deleted timer may have fired again before the delete: its signal would still be
     * pending (Linux before 6.13 keeps it). Take it, so the one-shot's is the one waited for. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, &si, &zero) > 0)
        ;
    /* A one-shot timer fired once: no overrun. */
    k_create(CLOCK_MONOTONIC, &ev, &id);
    s = its(1 * MS, 0);
    k_settime(id, 0, &s, NULL);
    sigwaitinfo(&set, &si);
    printf("overrun: one-shot overrun %d getoverrun %d\n", p[5], k_getoverrun(id));
    k_delete(id);
    /* signalfd reports the timer's fields. */
    int sfd = signalfd(-1, &set, 0);
    k_create(CLOCK_MONOTONIC, &ev, &id);
    s = its(1 * MS, 0);
    k_settime(id, 0, &s, NULL);
    struct signalfd_siginfo ssi;
    int n = read(sfd, &ssi, sizeof ssi);
    printf("overrun: signalfd read %d code %d tid ok %d int %d overrun %u\n", n == (int)sizeof ssi,
           ssi.ssi_code, (int)ssi.ssi_tid == id, ssi.ssi_int, ssi.ssi_overrun);
    close(sfd);
    k_delete(id);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void case_gettime(void) {
    struct ksigevent ev = {.signo = SIGRTMIN + 4, .notify = K_SIGEV_SIGNAL};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGRTMIN + 4, &sa, NULL);
    int id;
    k_create(CLOCK_MONOTONIC, &ev, &id);
    struct itimerspec s = its(2000 * MS, 0), c, old;
    k_settime(id, 0, &s, NULL);
    k_gettime(id, &c);
    printf("gettime: relative 2s remaining in (1s,2s] %d interval 0 %d\n",
           ns(c.it_value) > 1000 * MS && ns(c.it_value) <= 2000 * MS, ns(c.it_interval) == 0);
    s = its(3000 * MS, 0);
    k_settime(id, 0, &s, &old);
    printf("gettime: old value in (1s,2s] %d\n",
           ns(old.it_value) > 1000 * MS && ns(old.it_value) <= 2000 * MS);
    k_delete(id);
    /* Absolute times on CLOCK_REALTIME. */
    k_create(CLOCK_REALTIME, &ev, &id);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s = its(ns(now) + 1000 * MS, 0);
    printf("gettime: abstime settime %s\n", err(k_settime(id, TIMER_ABSTIME, &s, NULL)));
    k_gettime(id, &c);
    printf("gettime: abstime remaining in (0.5s,1s] %d\n",
           ns(c.it_value) > 500 * MS && ns(c.it_value) <= 1000 * MS);
    k_delete(id);
    /* An absolute time already passed expires at once. */
    int sig = SIGRTMIN + 5;
    handle(sig);
    hits = 0;
    struct ksigevent ev5 = {.value.sival_int = 5, .signo = sig, .notify = K_SIGEV_SIGNAL};
    k_create(CLOCK_MONOTONIC, &ev5, &id);
    s = its(1, 0);
    k_settime(id, TIMER_ABSTIME, &s, NULL);
    wait_hits(1);
    printf("gettime: past abstime fired %d value %d\n", (int)hits, (int)last_value);
    k_delete(id);
    signal(sig, SIG_DFL);
    /* SIGEV_NONE: nothing sent, read forward. */
    struct ksigevent none = {.notify = K_SIGEV_NONE};
    printf("gettime: SIGEV_NONE create %s\n", err(k_create(CLOCK_MONOTONIC, &none, &id)));
    s = its(10 * MS, 10 * MS);
    k_settime(id, 0, &s, NULL);
    sleep_ns(35 * MS);
    k_gettime(id, &c);
    printf("gettime: SIGEV_NONE remaining within interval %d interval 10ms %d\n",
           ns(c.it_value) > 0 && ns(c.it_value) <= 10 * MS, ns(c.it_interval) == 10 * MS);
    s = its(5 * MS, 0);
    k_settime(id, 0, &s, NULL);
    sleep_ns(15 * MS);
    k_gettime(id, &c);
    printf("gettime: SIGEV_NONE one-shot expired reads 0 %d\n", ns(c.it_value) == 0);
    k_delete(id);
    /* CPU-time clocks take timers too. */
    printf("gettime: process cputime create %s\n",
           err(k_create(CLOCK_PROCESS_CPUTIME_ID, &none, &id)));
    k_delete(id);
    printf("gettime: thread cputime create %s\n",
           err(k_create(CLOCK_THREAD_CPUTIME_ID, &none, &id)));
    k_delete(id);
    printf("gettime: boottime create %s\n", err(k_create(CLOCK_BOOTTIME, &none, &id)));
    k_delete(id);
}

static void case_errors(void) {
    int id;
    struct ksigevent ev = {.signo = SIGUSR1, .notify = K_SIGEV_SIGNAL};
    printf("errors: bad clock %s\n", err(k_create(12345, &ev, &id)));
    printf("errors: monotonic raw %s\n", err(k_create(CLOCK_MONOTONIC_RAW, &ev, &id)));
    int r = k_create(CLOCK_REALTIME_ALARM, &ev, &id);
    int refused = r < 0 && (errno == EPERM || errno == EOPNOTSUPP);
    if (r == 0)
        k_delete(id);
    printf("errors: alarm clock refused or served %d\n", refused || r == 0);
    struct ksigevent bad = {.signo = SIGUSR1, .notify = 99};
    printf("errors: bad sigev_notify %s\n", err(k_create(CLOCK_MONOTONIC, &bad, &id)));
    bad.notify = K_SIGEV_THREAD_ID | K_SIGEV_NONE;
    bad.tid = k_gettid();
    printf("errors: SIGEV_THREAD_ID with SIGEV_NONE %s\n", err(k_create(CLOCK_MONOTONIC, &bad, &id)));
    bad.notify = K_SIGEV_THREAD_ID | K_SIGEV_THREAD;
    printf("errors: SIGEV_THREAD_ID with SIGEV_THREAD %s\n",
           err(k_create(CLOCK_MONOTONIC, &bad, &id)));
    bad.notify = K_SIGEV_THREAD_ID;
    bad.signo = 0;
    printf("errors: SIGEV_THREAD_ID signal 0 %s\n", err(k_create(CLOCK_MONOTONIC, &bad, &id)));
    bad.signo = SIGUSR1;
    bad.notify = K_SIGEV_SIGNAL;
    bad.signo = 0;
    printf("errors: signal 0 %s\n", err(k_create(CLOCK_MONOTONIC, &bad, &id)));
    bad.signo = 65;
    printf("errors: signal 65 %s\n", err(k_create(CLOCK_MONOTONIC, &bad, &id)));
    printf("errors: bad sevp %s\n", err(k_create(CLOCK_MONOTONIC, (void *)8, &id)));
    /* A tid of another process. */
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    struct ksigevent other = {.signo = SIGUSR1, .notify = K_SIGEV_SIGNAL | K_SIGEV_THREAD_ID,
                              .tid = child};
    printf("errors: thread of another process %s\n", err(k_create(CLOCK_MONOTONIC, &other, &id)));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    other.tid = k_gettid();
    r = k_create(CLOCK_MONOTONIC, &other, &id);
    printf("errors: own thread %s\n", err(r));
    struct itimerspec s = its(1 * MS, 0), c;
    printf("errors: settime NULL %s\n", err(k_settime(id, 0, NULL, NULL)));
    s.it_value.tv_nsec = 1000000000;
    printf("errors: settime nsec 1e9 %s\n", err(k_settime(id, 0, &s, NULL)));
    s = its(1 * MS, 0);
    s.it_interval.tv_sec = -1;
    printf("errors: settime negative interval %s\n", err(k_settime(id, 0, &s, NULL)));
    printf("errors: settime bad pointer %s\n", err(k_settime(id, 0, (void *)8, NULL)));
    k_delete(id);
    printf("errors: bad id settime %s\n", err(k_settime(9999, 0, &s, NULL)));
    printf("errors: bad id gettime %s\n", err(k_gettime(9999, &c)));
    printf("errors: bad id getoverrun %s\n", err(k_getoverrun(9999)));
    printf("errors: bad id delete %s\n", err(k_delete(9999)));
    printf("errors: negative id %s\n", err(k_delete(-1)));
    printf("errors: deleted id %s\n", err(k_gettime(id, &c)));
    /* The limit: few pending signals allowed, so few timers (in a child). */
    child = fork();
    if (child == 0) {
        struct rlimit rl = {8, 8};
        setrlimit(RLIMIT_SIGPENDING, &rl);
        int made = 0;
        struct ksigevent n = {.notify = K_SIGEV_NONE};
        while (made < 64 && k_create(CLOCK_MONOTONIC, &n, &id) == 0)
            made++;
        printf("errors: limit reached before 64 timers %d (%s)\n", made < 64 && made <= 8,
               err(-1));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
}

static void case_fork_exec(const char *self) {
    struct ksigevent none = {.notify = K_SIGEV_NONE};
    int id;
    k_create(CLOCK_MONOTONIC, &none, &id);
    struct itimerspec s = its(5000 * MS, 0), c;
    k_settime(id, 0, &s, NULL);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        printf("fork: child gettime %s\n", err(k_gettime(id, &c)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    printf("fork: parent still has it %s\n", err(k_gettime(id, &c)));
    /* A timer with the default action kills the process. */
    child = fork();
    if (child == 0) {
        int cid;
        k_create(CLOCK_MONOTONIC, NULL, &cid);
        struct itimerspec t = its(5 * MS, 0);
        k_settime(cid, 0, &t, NULL);
        for (;;)
            pause();
    }
    int st;
    waitpid(child, &st, 0);
    printf("fork: unhandled SIGALRM killed the child %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM);
    /* exec deletes the timers. */
    fflush(stdout);
    child = fork();
    if (child == 0) {
        char id_s[16];
        snprintf(id_s, sizeof id_s, "%d", id);
        execl(self, self, "after-exec", id_s, (char *)NULL);
        _exit(127);
    }
    waitpid(child, &st, 0);
    k_delete(id);
}

/* ---- threads: a timer per thread, taken by that thread. */
#define NTHREADS 3
static volatile int thread_hits[NTHREADS];
static volatile int thread_wrong;
static pid_t thread_tids[NTHREADS];
static void on_thread_timer(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    int *p = (int *)si;
    int idx = p[6];
    if (idx < 0 || idx >= NTHREADS || thread_tids[idx] != k_gettid())
        thread_wrong = 1;
    else
        thread_hits[idx]++;
}
static pthread_barrier_t barrier;
static void *thread_main(void *arg) {
    int idx = (int)(intptr_t)arg;
    thread_tids[idx] = k_gettid();
    struct ksigevent ev = {.value.sival_int = idx, .signo = SIGRTMIN + 6,
                           .notify = K_SIGEV_SIGNAL | K_SIGEV_THREAD_ID, .tid = k_gettid()};
    int id;
    if (k_create(CLOCK_MONOTONIC, &ev, &id) != 0)
        thread_wrong = 1;
    pthread_barrier_wait(&barrier);
    struct itimerspec s = its((2 + idx) * MS, (2 + idx) * MS);
    k_settime(id, 0, &s, NULL);
    sigset_t none;
    sigemptyset(&none);
    while (thread_hits[idx] < 4)
        sigsuspend(&none);
    s = its(0, 0);
    k_settime(id, 0, &s, NULL);
    pthread_barrier_wait(&barrier);
    k_delete(id);
    return NULL;
}

static volatile int other_hits;
static volatile pid_t other_taker;
static void on_other(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    (void)uc;
    other_taker = k_gettid();
    other_hits++;
}
static volatile int stop_waiter;
static pid_t waiter_tid;
static void *waiter_main(void *arg) {
    (void)arg;
    waiter_tid = k_gettid();
    sigset_t none;
    sigemptyset(&none);
    pthread_barrier_wait(&barrier);
    while (!stop_waiter)
        sigsuspend(&none);
    return NULL;
}

static void case_threads(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_thread_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN + 6, &sa, NULL);
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    /* The main thread takes part as thread 0. */
    for (int i = 1; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)i);
    thread_main((void *)0);
    for (int i = 1; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    int all = 1;
    for (int i = 0; i < NTHREADS; i++)
        all &= thread_hits[i] >= 4;
    printf("threads: each thread took its own timer's signals %d, none went astray %d\n", all,
           !thread_wrong);
    pthread_barrier_destroy(&barrier);

    /* A timer the main thread makes for another thread of the process goes to that thread. */
    sa.sa_sigaction = on_other;
    sigaction(SIGRTMIN + 7, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 7);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t w;
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    pthread_create(&w, NULL, waiter_main, NULL);
    pthread_barrier_wait(&barrier);
    sigprocmask(SIG_BLOCK, &set, NULL); /* the main thread does not take it */
    struct ksigevent ev = {.signo = SIGRTMIN + 7, .notify = K_SIGEV_SIGNAL | K_SIGEV_THREAD_ID,
                           .tid = waiter_tid};
    int id;
    printf("threads: timer for another thread %s\n", err(k_create(CLOCK_MONOTONIC, &ev, &id)));
    struct itimerspec s = its(2 * MS, 0);
    k_settime(id, 0, &s, NULL);
    while (!other_hits)
        sleep_ns(1 * MS);
    printf("threads: taken by that thread %d\n", other_taker == waiter_tid);
    k_delete(id);
    stop_waiter = 1;
    pthread_kill(w, SIGRTMIN + 7);
    pthread_join(w, NULL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    pthread_barrier_destroy(&barrier);
    signal(SIGRTMIN + 7, SIG_DFL);
}

/* An app that makes no syscalls is still interrupted when its timer is due (kvm preempts
 * only when the Sentry asks: the timer's deadline must be among those it asks for). */
static void case_spin(void) {
    int sig = SIGRTMIN + 8;
    handle(sig);
    hits = 0;
    struct ksigevent ev = {.signo = sig, .notify = K_SIGEV_SIGNAL};
    int id;
    k_create(CLOCK_MONOTONIC, &ev, &id);
    struct itimerspec s = its(2 * MS, 2 * MS);
    k_settime(id, 0, &s, NULL);
    for (unsigned long i = 0; hits < 3 && i < 40000000000UL; i++)
        __asm__ volatile("" ::: "memory");
    printf("spin: a spinning app took the timer's signals %d\n", hits >= 3);
    k_delete(id);
    signal(sig, SIG_DFL);
}

/* ---- the C library's SIGEV_THREAD. */
static volatile int callbacks, callback_value;
static void on_callback(union sigval v) {
    callback_value = v.sival_int;
    __atomic_add_fetch(&callbacks, 1, __ATOMIC_SEQ_CST);
}

static void case_sigev_thread(void) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_callback;
    ev.sigev_value.sival_int = 42;
    timer_t t;
    int r = timer_create(CLOCK_MONOTONIC, &ev, &t);
    printf("sigev_thread: create %s\n", err(r));
    if (r)
        return;
    struct itimerspec s = its(3 * MS, 3 * MS);
    timer_settime(t, 0, &s, NULL);
    for (int i = 0; i < 5000 && __atomic_load_n(&callbacks, __ATOMIC_SEQ_CST) < 3; i++)
        sleep_ns(1 * MS);
    printf("sigev_thread: at least 3 callbacks %d value %d\n",
           __atomic_load_n(&callbacks, __ATOMIC_SEQ_CST) >= 3, callback_value);
    struct itimerspec c;
    timer_gettime(t, &c);
    printf("sigev_thread: interval 3ms %d\n", ns(c.it_interval) == 3 * MS);
    printf("sigev_thread: delete %s\n", err(timer_delete(t)));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && !strcmp(argv[1], "after-exec")) {
        struct itimerspec c;
        printf("exec: timer gone after exec %s\n", err(k_gettime(atoi(argv[2]), &c)));
        return 0;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
#define CASE(name, call)                                                                      \
    if (!only || !strcmp(only, name))                                                          \
    call
    CASE("default", case_default());
    CASE("periodic", case_periodic());
    CASE("overrun", case_overrun());
    CASE("gettime", case_gettime());
    CASE("errors", case_errors());
    CASE("fork_exec", case_fork_exec(argv[0]));
    CASE("threads", case_threads());
    CASE("spin", case_spin());
    CASE("sigev_thread", case_sigev_thread());
    return 0;
}
